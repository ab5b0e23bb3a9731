"""A real HTTPS server on loopback, for tests of the calls pdp makes
(custom validators, webhook deliveries).

- :class:`Certificates` (from ``tests/_tls.py``): a CA and a server
  certificate for 127.0.0.1, ::1 and localhost, made by the test with the
  ``cryptography`` package; the client trusts ``ca_file``.
- :class:`HttpsServer`: an HTTP/1.1 server (keep-alive, Content-Length or
  chunked bodies) on ``127.0.0.1:0`` in its own thread and event loop, so a
  hanging answer never touches the test's loop. Every request is recorded
  (:class:`RecordedRequest`); every answer is scripted by a responder:

      with HttpsServer(reply_json({"allow": True})) as server:
          call(server.url, ca_file=server.ca_file)
          assert server.requests[0].json()["agent"] == ...

  A responder is any callable taking the request and returning an action:
  :class:`Reply` (status, body, content type), :class:`Hang` (never answer,
  until :meth:`HttpsServer.release` or stop), :class:`Delay` (answer late),
  :class:`Drop` (close the connection without answering) or :class:`Raw`
  (bytes written as they are: malformed or unusual answers). Helpers build
  the usual scripts: :func:`reply_json`, :func:`fail_times`,
  :func:`scripted`.

The server can be stopped and started again on the same port (a receiver
that is down for a while), and ``tls=False`` serves plain HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any

from tests._tls import Certificates, test_certificates

__all__ = [
    "Action",
    "Certificates",
    "Delay",
    "Drop",
    "Hang",
    "HttpsServer",
    "Raw",
    "RecordedRequest",
    "Reply",
    "Responder",
    "fail_times",
    "reply_json",
    "scripted",
    "test_certificates",
]

_MAX_HEAD = 64 * 1024


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it. ``headers`` has lower-case
    names (the last value of a repeated header); ``connection`` numbers the
    connection it came on, from 1."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes
    connection: int
    received_at: float  # time.monotonic()

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer with ``status``, ``body`` (bytes, or str as UTF-8) and
    ``content_type``; ``headers`` are added as given."""

    status: int = 200
    body: bytes | str = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hang:
    """Never answer: the request waits until :meth:`HttpsServer.release`
    (then the connection closes) or until the server stops."""


@dataclass(frozen=True, slots=True)
class Delay:
    """Answer ``then`` after ``seconds``."""

    seconds: float
    then: Action


@dataclass(frozen=True, slots=True)
class Drop:
    """Close the connection without answering."""


@dataclass(frozen=True, slots=True)
class Raw:
    """Write ``data`` as the whole answer, then close the connection if
    ``close``."""

    data: bytes
    close: bool = False


Action = Reply | Hang | Delay | Drop | Raw
Responder = Callable[[RecordedRequest], Action | Awaitable[Action]]


def reply_json(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    """A JSON answer."""
    return Reply(status, json.dumps(value).encode(), "application/json", headers or {})


def _constant(action: Action) -> Responder:
    return lambda _request: action


def scripted(actions: Iterable[Action], then: Action) -> Responder:
    """Answers the first requests with ``actions`` in turn, every later one
    with ``then``."""
    queue = list(actions)
    lock = threading.Lock()

    def respond(_request: RecordedRequest) -> Action:
        with lock:
            return queue.pop(0) if queue else then

    return respond


def fail_times(n: int, failure: Action | None = None, then: Action | None = None) -> Responder:
    """Answers the first ``n`` requests with ``failure`` (default a 500),
    then ``then`` (default a 200 with an empty JSON object)."""
    return scripted(
        [failure or Reply(500, b'{"error": "scripted failure"}')] * n,
        then or reply_json({}),
    )


class HttpsServer:
    """See the module docstring. ``responder`` is an :data:`Action` (the
    same answer every time) or a :data:`Responder`; it runs on the server's
    thread."""

    def __init__(
        self,
        responder: Responder | Action = Reply(200, b"{}"),
        *,
        tls: bool = True,
        certificates: Certificates | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._responder = self._as_responder(responder)
        self.tls = tls
        self.certificates = certificates or (test_certificates() if tls else None)
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._arrived = threading.Condition(self._lock)
        self._connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        # Every connection's socket transport from the moment it is accepted,
        # before any TLS handshake: a stop closes them all, so none is left
        # for the garbage collector to report during a later test.
        self._transports: weakref.WeakSet[asyncio.Transport] = weakref.WeakSet()
        self._release: asyncio.Event | None = None
        self._tls_context: ssl.SSLContext | None = None

    # Addresses ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT`` (``http://`` without TLS), no slash."""
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def ca_file(self) -> str:
        """The CA file a client must trust (TLS only)."""
        if self.certificates is None:
            raise RuntimeError("a plain HTTP server has no CA file")
        return str(self.certificates.ca_file)

    # What arrived ------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def connections(self) -> int:
        """Connections accepted so far (TLS handshakes that completed)."""
        with self._lock:
            return self._connections

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Blocks until ``n`` requests have arrived; AssertionError after
        ``timeout`` seconds. For synchronous tests; async ones use
        :meth:`received`."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._requests) >= n, timeout):
                raise AssertionError(
                    f"{len(self._requests)} requests arrived within {timeout}s, expected {n}"
                )
            return list(self._requests)

    async def received(self, n: int, within: float = 10.0) -> list[RecordedRequest]:
        """Waits, without blocking the event loop, until ``n`` requests have
        arrived; AssertionError after ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            found = self.requests
            if len(found) >= n:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(found)} requests arrived within {within}s, expected {n}"
                )
            await asyncio.sleep(0.005)

    def clear(self) -> None:
        """Forgets the requests recorded so far."""
        with self._lock:
            self._requests.clear()

    # Behaviour ---------------------------------------------------------------

    def respond_with(self, responder: Responder | Action) -> None:
        """Answers later requests with ``responder``."""
        self._responder = self._as_responder(responder)

    def release(self) -> None:
        """Ends every request hanging now (their connections close)."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._release_hanging)

    def _release_hanging(self) -> None:
        # Requests hanging now wait on this event; later ones on a new one.
        released, self._release = self._release, asyncio.Event()
        if released is not None:
            released.set()

    # Lifecycle ---------------------------------------------------------------

    def start(self) -> HttpsServer:
        """Listens (again, on the same port after a stop); returns self."""
        if self._thread is not None:
            raise RuntimeError("already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="https-test-server", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self._listen(), loop).result(timeout=10)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops listening, closes every connection (hanging requests end
        unanswered) and ends the server's thread. The port is kept for a
        later :meth:`start`."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> HttpsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> HttpsServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # The server's thread -----------------------------------------------------

    @staticmethod
    def _as_responder(responder: Responder | Action) -> Responder:
        if isinstance(responder, Reply | Hang | Delay | Drop | Raw):
            return _constant(responder)
        return responder

    async def _listen(self) -> None:
        self._release = asyncio.Event()
        self._tls_context = (
            self.certificates.server_context() if self.certificates and self.tls else None
        )
        loop = asyncio.get_running_loop()

        def protocol() -> _TrackedProtocol:
            reader = asyncio.StreamReader(limit=_MAX_HEAD)
            return _TrackedProtocol(reader, self._serve_connection, self._transports)

        # TLS is started by each connection's handler (not by the server),
        # so that a connection is tracked before its handshake.
        self._server = await loop.create_server(protocol, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        server = self._server
        if server is not None:
            server.close()
        # Connections accepted just now are set up over the next loop turns.
        for _ in range(3):
            await asyncio.sleep(0)
        for transport in list(self._transports):
            transport.abort()  # no TLS goodbye: the peer may never answer one
        current = asyncio.current_task()
        rest = [task for task in asyncio.all_tasks() if task is not current]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        self._server = None

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            if self._tls_context is not None:
                await writer.start_tls(self._tls_context)
            with self._lock:
                self._connections += 1
                number = self._connections
            while await self._serve_request(reader, writer, number):
                pass
        except (OSError, EOFError, ssl.SSLError, asyncio.IncompleteReadError, ValueError):
            pass  # the client went away or sent what this server does not read
        except asyncio.CancelledError:
            # The server stops. Ending normally: Python 3.11's stream callback
            # reports a cancelled connection task as an error.
            pass
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()
            # A peer that never answers the TLS goodbye does not hold the server.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            writer.transport.abort()

    async def _serve_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: int
    ) -> bool:
        """Serves one request; False when the connection is to close."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            return False  # closed between requests
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await _read_body(reader, headers)
        request = RecordedRequest(method, target, headers, body, connection, time.monotonic())
        with self._arrived:
            self._requests.append(request)
            self._arrived.notify_all()
        action = self._responder(request)
        if not isinstance(action, Reply | Hang | Delay | Drop | Raw):
            action = await action
        while isinstance(action, Delay):
            await asyncio.sleep(action.seconds)
            action = action.then
        if isinstance(action, Hang):
            release = self._release
            assert release is not None
            await release.wait()
            return False
        if isinstance(action, Drop):
            return False
        if isinstance(action, Raw):
            writer.write(action.data)
            await writer.drain()
            return not action.close
        writer.write(_response(action))
        await writer.drain()
        return headers.get("connection", "").lower() != "close"


async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers are sent to this server
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0"))
    return await reader.readexactly(length) if length else b""


def _response(reply: Reply) -> bytes:
    body = reply.body.encode() if isinstance(reply.body, str) else reply.body
    try:
        reason = HTTPStatus(reply.status).phrase
    except ValueError:
        reason = "Status"
    head = [f"HTTP/1.1 {reply.status} {reason}", f"Content-Length: {len(body)}"]
    if reply.content_type:
        head.append(f"Content-Type: {reply.content_type}")
    head.extend(f"{name}: {value}" for name, value in reply.headers.items())
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class _TrackedProtocol(asyncio.StreamReaderProtocol):
    """A stream protocol that adds its transport to ``transports`` when the
    connection is made."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        connected: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
        transports: weakref.WeakSet[asyncio.Transport],
    ) -> None:
        super().__init__(reader, connected)
        self._tracked = transports

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.Transport):
            self._tracked.add(transport)
        super().connection_made(transport)
