"""The loopback HTTPS server the validator and webhook tests talk to: what
those tests rely on it for (TLS trusted through its CA only, recording,
scripted answers, hanging, restarting on its port)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests._https import (
    Delay,
    Drop,
    Hang,
    HttpsServer,
    Reply,
    fail_times,
    reply_json,
    test_certificates,
)


def test_serves_tls_trusted_through_its_ca_and_records_requests() -> None:
    with (
        HttpsServer(reply_json({"allow": True})) as server,
        httpx.Client(verify=test_certificates().client_context()) as client,
    ):
        assert server.url.startswith("https://127.0.0.1:")
        answer = client.post(f"{server.url}/check", json={"n": 1}, headers={"X-Test": "yes"})
        client.post(f"{server.url}/check", content=b"second")
        assert answer.status_code == 200
        assert answer.json() == {"allow": True}
        first, second = server.wait_for_requests(2)
    assert (first.method, first.target, first.json()) == ("POST", "/check", {"n": 1})
    assert first.headers["x-test"] == "yes"
    assert second.body == b"second"
    assert first.connection == second.connection == 1  # keep-alive
    assert server.connections == 1


def test_a_client_without_its_ca_refuses_the_certificate() -> None:
    with HttpsServer() as server, httpx.Client() as client, pytest.raises(httpx.ConnectError):
        client.get(server.url)


def test_fail_times_then_succeeds() -> None:
    with HttpsServer(fail_times(2)) as server, httpx.Client(verify=False) as client:
        codes = [client.post(server.url, content=b"x").status_code for _ in range(3)]
    assert codes == [500, 500, 200]


def test_reply_status_body_and_content_type_as_scripted() -> None:
    with (
        HttpsServer(Reply(503, "down", "text/plain", {"Retry-After": "1"})) as server,
        httpx.Client(verify=False) as client,
    ):
        answer = client.get(server.url)
    assert answer.status_code == 503
    assert answer.text == "down"
    assert answer.headers["content-type"] == "text/plain"
    assert answer.headers["retry-after"] == "1"


def test_drop_closes_without_an_answer() -> None:
    with (
        HttpsServer(Drop()) as server,
        httpx.Client(verify=False) as client,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        client.get(server.url)


async def test_hang_until_released_and_delay() -> None:
    async with (
        HttpsServer(Hang()) as server,
        httpx.AsyncClient(verify=False) as client,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await client.get(server.url, timeout=0.2)
        hanging = asyncio.create_task(client.get(server.url, timeout=5))
        await server.received(2)
        server.release()
        with pytest.raises(httpx.RemoteProtocolError):
            await hanging
        server.respond_with(Delay(0.2, Reply(204)))
        started = time.monotonic()
        answer = await client.get(server.url, timeout=5)
        assert answer.status_code == 204
        assert time.monotonic() - started >= 0.2


def test_restarts_on_the_same_port_and_serves_plain_http() -> None:
    server = HttpsServer(Reply(200, b"ok"), tls=False)
    with server, httpx.Client() as client:
        url = server.url
        assert url.startswith("http://")
        assert client.get(url).text == "ok"
    with httpx.Client() as client:
        with pytest.raises(httpx.ConnectError):
            client.get(url)
        with server:
            assert server.url == url
            assert client.get(url).text == "ok"
