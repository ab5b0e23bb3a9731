"""Liveness and readiness of a real ``pdp serve`` process following a real
``pdp control`` process that is stopped and started again: liveness stays
SERVING throughout (a liveness probe never restarts a sidecar that waits for
its control plane); readiness goes NOT_SERVING once the snapshot is stale
and is SERVING again within a second of the control plane's return."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pdp.server import LIVENESS_SERVICE
from tests.conftest import SidecarProcess
from tests.control._harness import ControlPlaneProcess

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
READINESS = ("", "pdp.v1.PolicyDecisionService")


async def status(stub: health_pb2_grpc.HealthStub, service: str) -> int:
    answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
    return int(answer.status)


@pytest.mark.timeout(300)  # two control plane starts and a sidecar's, as processes
async def test_liveness_stays_serving_and_readiness_recovers_within_a_second(
    tmp_path: Path,
) -> None:
    db = tmp_path / "control.db"
    control = ControlPlaneProcess(db)
    port = control.base_url.rsplit(":", 1)[1]
    key_file = tmp_path / "key"
    key_file.write_text(control.api_key)
    async with control.client() as api:
        (await api.post("/agents", json={"name": "bot"})).raise_for_status()
    # A 9 s staleness limit holds each long poll for 3 s: readiness back
    # sooner than that was not held as a long poll.
    sidecar = SidecarProcess(
        [
            "--snapshot", control.snapshot_url, "--api-key-file", str(key_file),
            "--listen", "127.0.0.1:0", "--state", str(tmp_path / "state.db"),
            "--max-staleness", "9",
        ]
    )  # fmt: skip
    try:
        async with grpc.aio.insecure_channel(sidecar.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for service in (*READINESS, LIVENESS_SERVICE):
                assert await status(stub, service) == SERVING, service

            assert control.stop() == 0
            seen_live = []

            async def stale() -> bool:
                seen_live.append(await status(stub, LIVENESS_SERVICE))
                return bool(await status(stub, "") == NOT_SERVING)

            deadline = time.monotonic() + 30
            while not await stale():
                assert time.monotonic() < deadline, "readiness never went NOT_SERVING"
                await asyncio.sleep(0.1)
            assert await status(stub, READINESS[1]) == NOT_SERVING
            assert set(seen_live) == {SERVING}  # liveness never wavered
            await asyncio.sleep(1.0)  # the sidecar's retries are now at their slowest

            control = ControlPlaneProcess(
                db, api_key=control.api_key, extra=["--listen", f"127.0.0.1:{port}"]
            )
            back = time.monotonic()
            ready: list[float] = []

            async def recovered() -> bool:
                if await status(stub, "") == SERVING:
                    ready.append(time.monotonic() - back)
                    return True
                return False

            while not await recovered():
                assert time.monotonic() - back < 15, "readiness did not recover"
                await asyncio.sleep(0.02)
            # Retries are at most 0.5 s apart and the first answer after a
            # failure is not held: about a second on a quiet machine (README,
            # Probes); under the 3 s hold on a loaded one.
            assert ready[0] < 2.5, f"ready {ready[0]:.2f}s after the control plane returned"
            assert await status(stub, LIVENESS_SERVICE) == SERVING
    finally:
        sidecar.stop()
        control.stop()
