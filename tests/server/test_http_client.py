"""The sidecar's HTTP/1.1 client for validator calls, against a real server
answering what real servers answer (chunked bodies, interim answers,
closed keep-alive connections) and what broken ones answer."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import pytest

from pdp.server._errors import HttpCallError
from pdp.server._http_client import HttpPool
from tests._https import Delay, Drop, Hang, HttpsServer, Raw, Reply, scripted, test_certificates

BODY = b'{"q": 1}'
HEADERS = {"Content-Type": "application/json"}
OK = Reply(200, b'{"allow": true}')


@pytest.fixture
async def server() -> AsyncIterator[HttpsServer]:
    async with HttpsServer(OK) as running:
        yield running


def pool_for(server: HttpsServer, max_connections: int = 4) -> HttpPool:
    return HttpPool(
        f"{server.url}/check?x=1", test_certificates().client_context(), max_connections
    )


async def post(pool: HttpPool, limit: int = 65536) -> tuple[int, bytes]:
    response = await pool.post(BODY, HEADERS, limit)
    return response.status, response.body


async def test_a_post_carries_its_body_host_and_target(server: HttpsServer) -> None:
    pool = pool_for(server)
    assert await post(pool) == (200, b'{"allow": true}')
    (request,) = server.requests
    assert (request.method, request.target, request.body) == ("POST", "/check?x=1", BODY)
    assert request.headers["host"] == server.url.removeprefix("https://")
    assert request.headers["content-length"] == str(len(BODY))
    pool.close()


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", b"hello"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n",
            b"abcde",
        ),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok"),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", b""),
    ],
    ids=["chunked", "chunk extensions and trailers", "100 continue", "empty body"],
)
async def test_answers_servers_give(server: HttpsServer, raw: bytes, body: bytes) -> None:
    server.respond_with(Raw(raw))
    pool = pool_for(server)
    assert await post(pool) == (200, body)
    assert await post(pool) == (200, body)
    assert server.connections == 1  # kept alive
    pool.close()


async def test_a_body_to_the_end_of_the_connection_and_connection_close(
    server: HttpsServer,
) -> None:
    server.respond_with(Raw(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", close=True))
    pool = pool_for(server)
    assert await post(pool) == (200, b"until the end")
    server.respond_with(Reply(200, b"{}", headers={"Connection": "close"}))
    assert await post(pool) == (200, b"{}")
    assert await post(pool) == (200, b"{}")
    assert server.connections == 3  # none of those connections could be reused
    pool.close()


async def test_a_kept_connection_the_server_closed_is_replaced_once(server: HttpsServer) -> None:
    server.respond_with(scripted([OK, Drop()], then=OK))
    pool = pool_for(server)
    assert await post(pool) == (200, b'{"allow": true}')
    assert await post(pool) == (200, b'{"allow": true}')  # dropped on the kept one, then anew
    assert (len(server.requests), server.connections) == (3, 2)
    server.respond_with(Drop())
    with pytest.raises(HttpCallError, match="closed the connection without an answer"):
        await post(pool)  # a new connection dropped too: no second retry
    pool.close()


BROKEN = {
    "not http": (b"SSH-2.0-OpenSSH\r\n\r\n", "not HTTP/1.1"),
    "status out of range": (b"HTTP/1.1 999 Odd\r\n\r\n", "status 999"),
    "header without colon": (b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n", "malformed header"),
    "bad length": (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
    "bad chunk size": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunked"),
    "too long": (b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n", "more than 65536 bytes"),
    "chunks too long": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11171\r\n" + b"x" * 70001,
        "more than 65536 bytes",
    ),
    "huge head": (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 20000 + b"\r\n\r\n", "head larger"),
    "cut body": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "middle of its answer"),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
async def test_broken_answers_are_named(server: HttpsServer, case: str) -> None:
    raw, reason = BROKEN[case]
    server.respond_with(Raw(raw, close=True))
    pool = pool_for(server)
    with pytest.raises(HttpCallError, match=reason):
        await post(pool)
    pool.close()


async def test_at_most_max_connections_calls_at_once(server: HttpsServer) -> None:
    server.respond_with(Delay(0.05, OK))
    pool = pool_for(server, max_connections=2)
    answers = await asyncio.gather(*(post(pool) for _ in range(6)))
    assert all(status == 200 for status, _ in answers)
    assert server.connections == 2
    pool.close()


async def test_a_call_cut_short_leaves_no_connection_behind(server: HttpsServer) -> None:
    server.respond_with(Hang())
    pool = pool_for(server)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await post(pool)
    server.respond_with(OK)
    assert await post(pool) == (200, b'{"allow": true}')
    assert server.connections == 2
    server.release()
    pool.close()


async def test_connection_and_tls_failures_are_named(server: HttpsServer) -> None:
    with pytest.raises(HttpCallError, match="TLS certificate not trusted"):
        await post(HttpPool(server.url, ssl.create_default_context(), 1))
    closed = HttpsServer()
    with closed:
        url = closed.url
    with pytest.raises(HttpCallError, match="cannot connect"):
        await post(HttpPool(url, test_certificates().client_context(), 1))
