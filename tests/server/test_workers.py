"""``pdp serve --workers 2``: two sidecar processes on one port sharing
Redis state. Calls on many connections spread over both and the budget
holds across them; a new snapshot (a pause) reaches every worker; SIGTERM
stops them all gracefully."""

from __future__ import annotations

import asyncio
import copy
import signal
from pathlib import Path

import grpc

from pdp.v1 import policy_decision_service_pb2 as pb
from pdp.v1 import policy_decision_service_pb2_grpc as pb_grpc
from tests._redis import RedisServer
from tests.conftest import SidecarProcess, write_atomically
from tests.server.test_budgets import BUDGETED

CHANNELS = 8


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


async def test_two_workers_share_one_port_one_budget_and_one_snapshot(
    spawn_sidecar: object, redis_server: RedisServer, tmp_path: Path
) -> None:
    snapshot = tmp_path / "policies.yaml"
    write_atomically(snapshot, BUDGETED)
    proc = SidecarProcess(
        [
            "--snapshot", str(snapshot), "--listen", "127.0.0.1:0", "--workers", "2",
            "--state", redis_server.url, "--local-state", str(tmp_path / "local.db"),
            "--poll-interval", "0.05",
        ]
    )  # fmt: skip
    try:
        assert "(2 workers)" in "".join(proc.log) or await _logged(proc, "(2 workers)")
        assert len([p for p in children(proc.proc.pid) if _is_worker(p)]) == 2
        channels = [
            grpc.aio.insecure_channel(proc.address, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(CHANNELS)
        ]
        stubs = [pb_grpc.PolicyDecisionServiceStub(channel) for channel in channels]

        async def call(index: int) -> pb.EnforceResponse:
            request = pb.EnforceRequest(
                agent_id="chatbot", input="hi", estimated_cost_usd=0.5, request_id=f"c-{index}"
            )
            answer: pb.EnforceResponse = await stubs[index % CHANNELS].Enforce(request)
            return answer

        answers = await asyncio.gather(*(call(index) for index in range(200)))
        assert sum(a.decision == pb.DECISION_ALLOW for a in answers) == 20

        paused = copy.deepcopy(BUDGETED)
        paused["revision"] = 2
        paused["agents"][0]["paused"] = True
        write_atomically(snapshot, paused)
        for _ in range(200):
            seen = await asyncio.gather(*(call(10_000 + i) for i in range(CHANNELS * 2)))
            if all(a.decision == pb.DECISION_AGENT_PAUSED for a in seen):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the pause did not reach every worker within 10 s")
        for channel in channels:
            await channel.close(None)

        assert proc.stop(signal.SIGTERM) == 0
        assert "shutting down 2 workers" in "".join(proc.log)
    finally:
        proc.kill()


def _is_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


async def _logged(proc: SidecarProcess, text: str) -> bool:
    for _ in range(200):
        if text in "".join(proc.log):
            return True
        await asyncio.sleep(0.05)
    return False
