"""A small HTTP/1.1 client for the sidecar's calls to custom validators: one
POST with a JSON body, one answer read whole, over a pool of keep-alive
connections (TLS or, for loopback in development, plain).

It is here because a general client costs about ten times the CPU per call
(measured: ~0.9 ms against ~0.1 ms on the reference machine), and a
validator call sits on the Enforce path. It does only what that needs:
``Content-Length`` or chunked answers, ``Connection: close``, no redirects,
no proxies. Connections go only where the outbound policy allows, to the
address it checked (``pdp.outbound``). The caller bounds each call with its own deadline (cancelling
it closes the connection it was on)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from pdp.outbound import OutboundPolicy, OutboundRefusedError, open_connection

from ._errors import HttpCallError

__all__ = ["HttpPool", "HttpResponse"]

_MAX_HEAD_BYTES = 16 * 1024
_IDLE_SECONDS = 30.0  # an idle connection older than this is closed, not reused


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]  # lower-case names; the last of a repeated header
    body: bytes


class _Connection:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        return (
            not self.reader.at_eof()
            and not self.writer.transport.is_closing()
            and now - self.idle_since < _IDLE_SECONDS
        )

    def close(self) -> None:
        self.writer.transport.abort()  # no goodbye: the peer may be the reason we leave


class HttpPool:
    """Connections to the origin of ``url``; at most ``max_connections`` calls
    at once (the others wait their turn). ``tls`` is None for plain http;
    ``outbound`` says which addresses of the host may be reached."""

    def __init__(
        self,
        url: str,
        tls: ssl.SSLContext | None,
        max_connections: int,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._host_header = parts.netloc  # a URL with credentials does not compile
        self._tls = tls
        self._outbound = outbound or OutboundPolicy()
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._closed = False

    async def post(
        self, body: bytes, headers: Mapping[str, str], max_answer_bytes: int
    ) -> HttpResponse:
        """POSTs ``body`` to the URL; the answer whole. HttpCallError says
        what went wrong (connection, protocol, an answer too large)."""
        head = self._head(len(body), headers)
        async with self._slots:
            loop = asyncio.get_running_loop()
            connection, reused = self._take_idle(loop.time()), True
            if connection is None:
                connection, reused = await self._connect(), False
            try:
                try:
                    response, keep = await _exchange(connection, head + body, max_answer_bytes)
                except HttpCallError as exc:
                    # An idle connection the server had closed: once more, on a new one.
                    if not (reused and exc.before_answer):
                        raise
                    connection.close()
                    connection = await self._connect()
                    response, keep = await _exchange(connection, head + body, max_answer_bytes)
            except BaseException:
                connection.close()  # a call cut short leaves the connection mid-exchange
                raise
            if keep and not self._closed:
                connection.idle_since = loop.time()
                self._idle.append(connection)
            else:
                connection.close()
            return response

    def close(self) -> None:
        self._closed = True
        for connection in self._idle:
            connection.close()
        self._idle.clear()

    def _head(self, length: int, headers: Mapping[str, str]) -> bytes:
        lines = [
            f"POST {self.target} HTTP/1.1",
            f"Host: {self._host_header}",
            f"Content-Length: {length}",
        ]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _take_idle(self, now: float) -> _Connection | None:
        idle = self._idle
        while idle:
            connection = idle.pop()  # the most recent: the least likely to be closed
            if connection.usable(now):
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await open_connection(
                self._outbound, self.host, self.port, tls=self._tls, limit=_MAX_HEAD_BYTES
            )
        except OutboundRefusedError as exc:
            raise HttpCallError(f"refused by the outbound policy: {exc.reason}") from None
        except ssl.SSLCertVerificationError as exc:
            raise HttpCallError(f"TLS certificate not trusted: {exc.verify_message}") from None
        except ssl.SSLError as exc:
            raise HttpCallError(f"TLS handshake failed: {exc.reason or exc}") from None
        except OSError as exc:
            raise HttpCallError(f"cannot connect: {exc.strerror or exc}") from None
        return _Connection(reader, writer)


async def _exchange(
    connection: _Connection, request: bytes, max_answer_bytes: int
) -> tuple[HttpResponse, bool]:
    """Sends ``request`` and reads the answer; whether the connection may
    carry another call."""
    reader, writer = connection.reader, connection.writer
    try:
        writer.write(request)
        await writer.drain()
        status, headers = await _read_head(reader)
        while 100 <= status < 200:  # interim answers (100 Continue) precede the real one
            status, headers = await _read_head(reader)
    except asyncio.IncompleteReadError as exc:
        raise HttpCallError(
            "closed the connection without an answer", before_answer=not exc.partial
        ) from None
    except (ConnectionError, BrokenPipeError) as exc:
        raise HttpCallError(f"connection lost: {exc.strerror or exc}", before_answer=True) from None
    except asyncio.LimitOverrunError:
        raise HttpCallError(f"answered a head larger than {_MAX_HEAD_BYTES} bytes") from None
    except ssl.SSLError as exc:
        raise HttpCallError(f"TLS error: {exc.reason or exc}") from None
    try:
        body, keep = await _read_body(reader, headers, max_answer_bytes)
    except asyncio.IncompleteReadError:
        raise HttpCallError("closed the connection in the middle of its answer") from None
    except asyncio.LimitOverrunError:
        raise HttpCallError("answered a malformed chunked body") from None
    except (ConnectionError, ssl.SSLError) as exc:
        raise HttpCallError(f"connection lost in the middle of the answer: {exc}") from None
    keep = keep and headers.get("connection", "").lower() != "close"
    return HttpResponse(status, headers, body), keep


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HttpCallError(f"answered something that is not HTTP/1.1: {lines[0][:80]!r}")
    status = int(parts[1])
    if not 100 <= status <= 599:
        raise HttpCallError(f"answered the status {status}, which HTTP does not have")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise HttpCallError(f"answered a malformed header line: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return status, headers


async def _read_body(
    reader: asyncio.StreamReader, headers: Mapping[str, str], limit: int
) -> tuple[bytes, bool]:
    """The body, and whether the connection stays usable after it."""
    too_large = HttpCallError(f"answered more than {limit} bytes")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        size_total = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HttpCallError("answered a malformed chunked body") from None
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, ignored
                    pass
                return b"".join(chunks), True
            size_total += size
            if size_total > limit:
                raise too_large
            chunks.append(await reader.readexactly(size))
            if await reader.readexactly(2) != b"\r\n":
                raise HttpCallError("answered a malformed chunked body")
    length_text = headers.get("content-length")
    if length_text is not None:
        if not length_text.isdigit():
            raise HttpCallError(f"answered a malformed Content-Length: {length_text[:40]!r}")
        length = int(length_text)
        if length > limit:
            raise too_large
        return await reader.readexactly(length), True
    # Neither: the body runs to the end of the connection.
    body = await reader.read(limit + 1)
    while len(body) <= limit and not reader.at_eof():
        more = await reader.read(limit + 1 - len(body))
        if not more:
            break
        body += more
    if len(body) > limit:
        raise too_large
    return body, False
