"""Limits where input enters: slow clients cannot hold the control plane's
connections, a flood of bad requests does not flood the log, snapshot
sources read only regular files and never past the document limit, and
pattern and agent lists are bounded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pdp.engine import MAX_DOCUMENT_BYTES, SnapshotError, compile_snapshot
from pdp.snapshot import FileSource, HttpSource, NewDocument, Unreachable
from pdp.v1 import policy_decision_service_pb2 as pb
from tests.conftest import StartSidecar
from tests.control._harness import ControlPlaneProcess, cli_create_key
from tests.security.test_kill_switch import seconds_until_decision

SLOW_CLIENTS = 1000


@pytest.fixture
def many_files() -> Iterator[None]:
    """Room in this process for the slow clients' sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * SLOW_CLIENTS
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"open files are limited to {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class SlowClients:
    """SLOW_CLIENTS sockets that each send a request's headers a byte at a
    time, never finishing them (slowloris)."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.closed_by_server = 0
        self._task: asyncio.Task[None] | None = None
        self._watches: list[asyncio.Future[None]] = []

    async def open(self, host: str, port: int, count: int) -> None:
        for _ in range(count):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /api/v1/snapshot HTTP/1.1\r\nHost: x\r\n")
            self.writers.append(writer)
            self._watches.append(asyncio.ensure_future(self._watch(reader)))
        self._task = asyncio.ensure_future(self._trickle())

    async def _watch(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            await reader.read()  # returns when the server closes
        self.closed_by_server += 1

    async def _trickle(self) -> None:
        while True:
            for writer in self.writers:
                if not writer.is_closing():
                    with contextlib.suppress(OSError):
                        writer.write(b"X")
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        for task in [self._task, *self._watches]:
            if task is not None:
                task.cancel()
        for writer in self.writers:
            writer.close()


@pytest.fixture
async def slow_clients() -> AsyncIterator[SlowClients]:
    clients = SlowClients()
    yield clients
    await clients.close()


class LimitedControlPlane(ControlPlaneProcess):
    """``pdp control`` allowed 512 open files and 300 connections."""

    def __init__(self, db: Path) -> None:
        key = cli_create_key(db)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
        try:
            super().__init__(db, api_key=key, extra=["--max-connections", "300"])
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.timeout(120)
async def test_a_thousand_slow_clients_do_not_stop_the_snapshot_feed(
    tmp_path: Path, many_files: None, slow_clients: SlowClients, start_sidecar: StartSidecar
) -> None:
    cp = LimitedControlPlane(tmp_path / "control.db")
    try:
        async with cp.client() as client:
            (await client.post("/agents", json={"name": "probe"})).raise_for_status()
            sidecar = await start_sidecar(source=cp.snapshot_url, api_key=cp.api_key)
            host, port = cp.base_url.removeprefix("http://").rsplit(":", 1)

            await slow_clients.open(host, int(port), SLOW_CLIENTS)
            # More slow clients than the control plane has files for: without
            # limits it could accept no one else; with them, the slow give way.
            async with httpx.AsyncClient(base_url=cp.base_url, timeout=10) as fresh:
                assert (await fresh.get("/healthz")).status_code == 200
            (await client.patch("/agents/probe/pause", json={"reason": "x"})).raise_for_status()
            await seconds_until_decision(sidecar, "probe", pb.DECISION_AGENT_PAUSED, within=10.0)
            (await client.patch("/agents/probe/resume")).raise_for_status()
            await seconds_until_decision(sidecar, "probe", pb.DECISION_ALLOW, within=10.0)
            # Most slow clients were shown the door: displaced by newer
            # connections, or too slow to finish their headers in 10 s.
            deadline = time.monotonic() + 20
            while slow_clients.closed_by_server < SLOW_CLIENTS - 300:
                assert time.monotonic() < deadline, slow_clients.closed_by_server
                await asyncio.sleep(0.1)
    finally:
        cp.stop()


async def test_a_flood_of_bad_requests_writes_a_few_log_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.control._harness import ControlPlaneHarness

    caplog.set_level(logging.INFO)
    async with ControlPlaneHarness(tmp_path / "control.db") as cp, cp.client() as client:
        host, port = cp.base_url.removeprefix("http://").rsplit(":", 1)
        caplog.clear()
        for i in range(100):
            # A string no UTF-8 document can hold, deep in a policy.
            body = (
                f'{{"name": "p{i}", "policyType": "injection_scan", "enforcementMode": "block",'
                ' "ruleDefinition": {"patterns": ["a\\ud800b"]}}'
            )
            response = await client.post(
                "/policies", content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 400, response.text
            assert response.json()["error"]["field"] == "ruleDefinition.patterns[0]"
            # And requests that are not HTTP at all.
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"\x16\x03\x01 not http\r\n\r\n")
            await reader.read()
            writer.close()
        assert (await client.get("/snapshot")).json()["policies"] == []
    records = [r for r in caplog.records if r.name.startswith(("pdp", "uvicorn"))]
    logged = "\n".join(r.getMessage() for r in records)
    assert len(records) < 30 and len(logged) < 5000, logged[:2000]
    assert not any(r.exc_info for r in records)


async def test_a_snapshot_path_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "policies.yaml"
    os.mkfifo(fifo)
    # Unblocks a reader that opened the FIFO anyway, whatever happens.
    keeper = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        update = await asyncio.wait_for(FileSource(fifo).fetch(), 5)
        assert isinstance(update, Unreachable)
        assert "not a regular file (a FIFO)" in update.reason
    finally:
        os.close(keeper)


async def test_a_snapshot_file_is_read_at_most_one_byte_past_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as file:
        file.truncate(4 * MAX_DOCUMENT_BYTES)  # sparse: no disk used
    update = await FileSource(path).fetch()
    assert isinstance(update, NewDocument) and len(update.data) == MAX_DOCUMENT_BYTES + 1


class EndlessBody:
    """An HTTP server whose snapshot body never ends; counts what it sent."""

    def __init__(self) -> None:
        self.sent = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b'HTTP/1.1 200 OK\r\nETag: "1"\r\nContent-Length: 1000000000000\r\n\r\n')
            chunk = b" " * (1 << 20)
            while self.sent < 16 * MAX_DOCUMENT_BYTES:
                writer.write(chunk)
                await writer.drain()
                self.sent += len(chunk)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client stopped reading, as it should
        finally:
            self.writers.discard(writer)
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/api/v1/snapshot"

    async def __aexit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()  # Server.close() leaves open connections to the gc
        await self.server.wait_closed()


async def test_a_snapshot_body_is_read_at_most_one_byte_past_the_limit() -> None:
    endless = EndlessBody()
    async with endless as url:
        source = HttpSource(url)
        try:
            update = await source.fetch()
        finally:
            await source.aclose()
    assert isinstance(update, NewDocument) and len(update.data) == MAX_DOCUMENT_BYTES + 1
    assert endless.sent < 2 * MAX_DOCUMENT_BYTES  # it stopped reading, not the server


def _policy(**rule: Any) -> dict[str, Any]:
    return {
        "name": "p",
        "policyType": "injection_scan",
        "enforcementMode": "block",
        "ruleDefinition": rule,
    }


def _errors(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SnapshotError) as caught:
        compile_snapshot(document)
    return {e.path: e.message for e in caught.value.errors}


def test_pattern_lists_have_a_size_cap() -> None:
    literal = _errors(
        {"policies": [_policy(patterns=[f"{i:04} " + "y" * 200 for i in range(6000)])]}
    )
    assert "at most 1048576 are allowed" in literal["policies[0].ruleDefinition.patterns"]
    regexes = _errors({"policies": [_policy(regex_patterns=[f"a{i}" for i in range(10_001)])]})
    assert "at most 10000 are allowed" in regexes["policies[0].ruleDefinition.regex_patterns"]


def test_an_agent_named_twice_in_a_policy_is_refused() -> None:
    policy = _policy(patterns=["x"])
    policy["appliesToAgents"] = ["bot"] * 5000
    errors = _errors({"agents": [{"id": "bot"}], "policies": [policy]})
    assert errors == {"policies[0].appliesToAgents": "lists 5000 items; at most 1000 are allowed"}
    policy["appliesToAgents"] = ["bot", "other", "bot"]
    errors = _errors({"agents": [{"id": "bot"}, {"id": "other"}], "policies": [policy]})
    assert errors == {
        "policies[0].appliesToAgents[2]": "'bot' is listed twice (also at "
        "policies[0].appliesToAgents[0])"
    }


async def test_the_control_plane_refuses_an_agent_named_twice(client: httpx.AsyncClient) -> None:
    (await client.post("/agents", json={"name": "bot"})).raise_for_status()
    policy = _policy(patterns=["x"])
    policy["appliesToAgents"] = ["bot"] * 5000
    response = await client.post("/policies", json=policy)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "appliesToAgents"
