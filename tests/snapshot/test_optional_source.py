"""An optional HTTP source (a control plane's candidate snapshot): a 404 is
"no document", long-polled by its ETag, and never a busy loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from pdp.snapshot import HttpSource, NoDocument, Update
from tests._wait import until


async def _server(
    etag: str | None,
) -> tuple[asyncio.Server, list[tuple[float, bytes]], set[asyncio.StreamWriter]]:
    seen: list[tuple[float, bytes]] = []  # (when it arrived, the request's head)
    # Connections still open when the test ends (a poll cut off mid-request)
    # are closed by the test: Server.close() leaves them to the garbage
    # collector, which would warn in whichever test runs next.
    open_writers: set[asyncio.StreamWriter] = set()

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append((time.monotonic(), head))
            tag = f"ETag: {etag}\r\n" if etag else ""
            answer = (
                f"HTTP/1.1 404 Not Found\r\n{tag}Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            writer.write(answer.encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            open_writers.discard(writer)
            writer.close()

    return await asyncio.start_server(respond, "127.0.0.1", 0), seen, open_writers


async def _follow(
    etag: str | None, done: Callable[[list[Update], list[tuple[float, bytes]]], bool]
) -> tuple[list[Update], list[tuple[float, bytes]]]:
    """Follows the server until ``done(updates, requests seen)``."""
    server, seen, open_writers = await _server(etag)
    port = server.sockets[0].getsockname()[1]
    source = HttpSource(f"http://127.0.0.1:{port}/candidate", wait=0.1, optional=True)
    updates: list[Update] = []

    async def report(update: Update) -> None:
        updates.append(update)

    task = asyncio.create_task(source.run(report))
    try:
        await until(lambda: done(updates, seen), what="the source's requests")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await source.aclose()
        server.close()
        for writer in list(open_writers):
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await server.wait_closed()
    return updates, seen


async def test_a_404_is_no_document_and_is_long_polled_by_its_etag() -> None:
    updates, seen = await _follow('"4.1"', lambda _, seen: len(seen) >= 2)
    assert updates and all(isinstance(u, NoDocument) for u in updates)
    last = seen[-1][1]
    assert b'If-None-Match: "4.1"' in last and b"wait=0.1" in last


async def test_a_404_without_an_etag_is_asked_again_only_later() -> None:
    updates, seen = await _follow(None, lambda _, seen: len(seen) >= 2)
    assert isinstance(updates[0], NoDocument)
    # Not at once: after the source's longest backoff (0.5 s). A lower bound,
    # which a loaded machine only makes longer.
    assert seen[1][0] - seen[0][0] >= 0.45
