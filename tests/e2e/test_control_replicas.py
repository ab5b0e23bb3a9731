"""Several control planes on one PostgreSQL: a write on one wakes the
sidecars long-polling any of them (LISTEN/NOTIFY), revisions stay one
sequence, sidecars fail over from a replica killed with SIGKILL, and a
PostgreSQL restart is ridden out with a clear status meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from pdp.control import API_KEY_HEADER, PostgresLocation
from pdp.v1 import policy_decision_service_pb2 as pb
from tests._postgres import PostgresServer
from tests.conftest import StartSidecar, new_postgres_db
from tests.control._harness import ControlPlaneHarness, ControlPlaneProcess
from tests.control._helpers import REFERENCE_POLICIES
from tests.e2e.test_control_plane_sidecars import PROMPT, _is, seconds_until


@pytest.fixture
def shared_db(postgres_server: PostgresServer) -> PostgresLocation:
    return new_postgres_db(postgres_server)


@pytest.fixture
async def replicas(shared_db: PostgresLocation) -> AsyncIterator[list[ControlPlaneHarness]]:
    """Two control planes (in this process) on one PostgreSQL database,
    sharing the first one's API key."""
    first = await ControlPlaneHarness(shared_db).start()
    second = ControlPlaneHarness(shared_db)
    await second.start()
    second.api_key = first.api_key
    try:
        yield [first, second]
    finally:
        await second.stop()
        await first.stop()


async def test_a_write_on_one_replica_wakes_long_polls_on_the_other(
    replicas: list[ControlPlaneHarness],
) -> None:
    a, b = replicas
    async with a.client() as on_a, b.client() as on_b:
        for round_number in range(5):
            revision = round_number
            poll = asyncio.ensure_future(
                on_b.get(
                    "/snapshot", params={"wait": 10}, headers={"If-None-Match": f'"{revision}"'}
                )
            )
            await asyncio.sleep(0.05)  # the poll is held by b
            assert not poll.done()
            created = await on_a.post("/agents", json={"name": f"agent-{round_number}"})
            assert created.status_code == 201, created.text
            written = time.perf_counter()
            answer = await poll
            woke = time.perf_counter() - written
            assert answer.status_code == 200
            assert answer.headers["ETag"] == f'"{revision + 1}"'
            assert f"agent-{round_number}" in answer.text
            assert woke < PROMPT  # a generous bound; bench/ measures p50/p99


async def test_revisions_stay_one_sequence_across_replicas(
    replicas: list[ControlPlaneHarness],
) -> None:
    a, b = replicas
    async with a.client() as on_a, b.client() as on_b:
        answers = await asyncio.gather(
            *(
                (on_a if i % 2 else on_b).post("/agents", json={"name": f"agent-{i}"})
                for i in range(24)
            )
        )
        assert [r.status_code for r in answers] == [201] * 24, [r.text for r in answers]
        revisions = sorted(r.json()["revision"] for r in answers)
        assert revisions == list(range(1, 25))  # every write its own revision, none twice
        # A name taken on one replica is taken on the other.
        again = await on_a.post("/agents", json={"name": "agent-1"})
        assert again.status_code == 409
        for client in (on_a, on_b):
            # Each replica answers with everything, whichever wrote it.
            await _until_revision(client, 24)
            document = (await client.get("/snapshot")).json()
            assert len(document["agents"]) == 24


async def _until_revision(client: httpx.AsyncClient, revision: int) -> None:
    async def reached() -> bool:
        return bool((await client.get("/snapshot")).json()["revision"] == revision)

    await seconds_until(reached)


async def test_a_candidate_published_on_one_replica_is_served_by_the_other(
    replicas: list[ControlPlaneHarness],
) -> None:
    a, b = replicas
    policy = {**REFERENCE_POLICIES[0]}
    async with a.client() as on_a, b.client() as on_b:
        assert (await on_b.get("/snapshot/candidate")).status_code == 404
        published = await on_a.post("/snapshot/candidate", json={"policies": [policy]})
        assert published.status_code == 201, published.text

        async def served() -> bool:
            return (await on_b.get("/snapshot/candidate")).status_code == 200

        await seconds_until(served)
        names = [p["name"] for p in (await on_b.get("/snapshot/candidate")).json()["policies"]]
        assert names == [policy["name"]]
        # Promoted on b: the published snapshot on a has it, the candidate is gone.
        assert (await on_b.post("/snapshot/candidate/promote")).status_code == 200
        await _until_revision(on_a, 1)
        assert [p["name"] for p in (await on_a.get("/snapshot")).json()["policies"]] == names

        async def gone() -> bool:
            return (await on_a.get("/snapshot/candidate")).status_code == 404

        await seconds_until(gone)


async def test_pause_reaches_sidecars_following_either_replica(
    replicas: list[ControlPlaneHarness], start_sidecar: StartSidecar
) -> None:
    a, b = replicas
    async with a.client() as on_a:
        (await on_a.post("/agents", json={"name": "probe"})).raise_for_status()
        sidecars = [
            await start_sidecar(source=cp.snapshot_url, api_key=a.api_key, name=f"s{i}")
            for i, cp in enumerate((a, b))
        ]
        for s in sidecars:
            await seconds_until(lambda s=s: _is(s, "probe", "hi", pb.DECISION_ALLOW))
        times = []
        for _ in range(5):
            for action, want in (
                ("pause", pb.DECISION_AGENT_PAUSED),
                ("resume", pb.DECISION_ALLOW),
            ):
                t0 = time.perf_counter()
                body = {"reason": "drill"} if action == "pause" else None
                (await on_a.patch(f"/agents/probe/{action}", json=body)).raise_for_status()
                for s in sidecars:
                    await seconds_until(lambda s=s, w=want: _is(s, "probe", "hi", w))
                    times.append(time.perf_counter() - t0)
        assert max(times) < PROMPT, times


async def test_a_sidecar_starts_on_the_replica_that_answers(
    control_plane: ControlPlaneHarness, start_sidecar: StartSidecar
) -> None:
    async with control_plane.client() as client:
        (await client.post("/agents", json={"name": "probe"})).raise_for_status()
    # The first URL refuses connections (nothing listens on port 9).
    source = f"http://127.0.0.1:9/api/v1/snapshot,{control_plane.snapshot_url}"
    sidecar = await start_sidecar(source=source, api_key=control_plane.api_key, name="second")
    await seconds_until(lambda: _is(sidecar, "probe", "hi", pb.DECISION_ALLOW))
    async with control_plane.client() as client:
        await client.patch("/agents/probe/pause", json={"reason": "x"})
    await seconds_until(lambda: _is(sidecar, "probe", "hi", pb.DECISION_AGENT_PAUSED))


@pytest.mark.timeout(180)
async def test_sidecars_fail_over_from_a_replica_killed_during_writes(
    shared_db: PostgresLocation, start_sidecar: StartSidecar
) -> None:
    first = ControlPlaneProcess(shared_db)
    second = ControlPlaneProcess(shared_db, api_key=first.api_key)
    try:
        source = f"{first.snapshot_url},{second.snapshot_url}"
        headers = {API_KEY_HEADER: first.api_key}
        async with (
            httpx.AsyncClient(base_url=f"{first.base_url}/api/v1", headers=headers) as on_first,
            httpx.AsyncClient(base_url=f"{second.base_url}/api/v1", headers=headers) as on_second,
        ):
            (await on_first.post("/agents", json={"name": "probe"})).raise_for_status()
            sidecar = await start_sidecar(source=source, api_key=first.api_key, name="failover")
            await seconds_until(lambda: _is(sidecar, "probe", "hi", pb.DECISION_ALLOW))

            written: list[str] = []

            async def keep_writing() -> None:
                for i in range(10_000):
                    try:
                        r = await on_first.post("/agents", json={"name": f"w{i}"})
                    except httpx.HTTPError:
                        return  # the replica is gone
                    assert r.status_code == 201, r.text
                    written.append(f"w{i}")

            writer = asyncio.ensure_future(keep_writing())
            await seconds_until(lambda: _true(len(written) >= 3), 30.0)
            first.kill()  # SIGKILL, mid-write
            await writer
            # The sidecar keeps deciding on its last good snapshot...
            assert await _is(sidecar, "probe", "hi", pb.DECISION_ALLOW)
            # ...and follows the surviving replica: what it publishes arrives.
            paused = await on_second.patch("/agents/probe/pause", json={"reason": "after kill"})
            paused.raise_for_status()
            await seconds_until(lambda: _is(sidecar, "probe", "hi", pb.DECISION_AGENT_PAUSED))
            status = await sidecar.stub.AgentStatus(pb.AgentStatusRequest(agent_id="probe"))
            assert status.state.paused_reason == "after kill"
            # Nothing committed before the kill is lost: the survivor has it all.
            document = (await on_second.get("/snapshot")).json()
            names = {agent["name"] for agent in document["agents"]}
            assert set(written) <= names
            assert document["revision"] >= len(written) + 2
    finally:
        first.kill()
        second.stop()


async def _true(value: bool) -> bool:
    return value


async def test_a_postgresql_restart_is_ridden_out(
    postgres_server: PostgresServer, shared_db: PostgresLocation, start_sidecar: StartSidecar
) -> None:
    async with (
        ControlPlaneHarness(shared_db) as cp,
        cp.client() as client,
        httpx.AsyncClient(base_url=cp.base_url) as anonymous,
    ):
        (await client.post("/agents", json={"name": "probe"})).raise_for_status()
        sidecar = await start_sidecar(source=cp.snapshot_url, api_key=cp.api_key, name="pg")
        await seconds_until(lambda: _is(sidecar, "probe", "hi", pb.DECISION_ALLOW))

        postgres_server.stop(kill=True)
        try:

            async def unhealthy() -> bool:
                return (await anonymous.get("/healthz")).status_code == 503

            await seconds_until(unhealthy, 10.0)
            health = (await anonymous.get("/healthz")).json()
            assert health["status"] == "unavailable"
            assert "unreachable" in health["detail"] and "postgresql://" in health["detail"]
            # Reads of what the control plane holds keep working; writes
            # say why they cannot be made; sidecars keep deciding.
            assert (await client.get("/snapshot")).status_code == 200
            refused = await client.patch("/agents/probe/pause", json={"reason": "down"})
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "database_unavailable"
            assert await _is(sidecar, "probe", "hi", pb.DECISION_ALLOW)
        finally:
            postgres_server.start()

        async def healthy() -> bool:
            return (await anonymous.get("/healthz")).status_code == 200

        await seconds_until(healthy, 30.0)

        async def pause_accepted() -> bool:
            r = await client.patch("/agents/probe/pause", json={"reason": "back"})
            return r.status_code == 200

        # Recovery is what is asserted, not its speed: a loaded CI machine
        # restarts PostgreSQL and refills the pool slowly.
        await seconds_until(pause_accepted, 30.0)
        await seconds_until(lambda: _is(sidecar, "probe", "hi", pb.DECISION_AGENT_PAUSED), 15.0)
