"""A candidate snapshot end to end, with real processes and real SQLite: a
`pdp control` publishes a candidate, `pdp serve` following it shadows the
candidate on live traffic and counts the differences in its metrics, and a
promotion makes the candidate the snapshot every sidecar enforces."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import grpc
import httpx
import pytest

from pdp.v1 import policy_decision_service_pb2 as pb
from pdp.v1 import policy_decision_service_pb2_grpc as pb_grpc
from tests._process import PdpProcess
from tests.conftest import SidecarProcess
from tests.control._harness import cli_create_key
from tests.control._helpers import REFERENCE_POLICIES
from tests.observe._scrape import scrape, value

PII = REFERENCE_POLICIES[1]


def _metrics_url(proc: PdpProcess, within: float = 10.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for line in list(proc.log):
            found = re.search(r"serving metrics at (\S+)", line)
            if found:
                return found.group(1)
        time.sleep(0.02)
    raise AssertionError("no metrics URL logged:\n" + "".join(proc.log))


async def _until(check: object, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within the time allowed")


@pytest.mark.timeout(180)  # several pdp processes: slow to start on a loaded machine
async def test_a_candidate_is_shadowed_then_promoted(tmp_path: Path) -> None:
    db = tmp_path / "control.db"
    key = cli_create_key(db)
    control = PdpProcess(
        ["control", "--listen", "127.0.0.1:0", "--db", str(db), "--metrics-listen", "127.0.0.1:0"],
        listening=r"listening on (http://\S+)",
    )
    sidecar: SidecarProcess | None = None
    try:
        api = httpx.AsyncClient(
            base_url=f"{control.address}/api/v1", headers={"X-API-Key": key}, timeout=30
        )
        async with api:
            assert (await api.post("/agents", json={"name": "my-chatbot"})).status_code == 201
            assert (await api.post("/policies", json=PII)).status_code == 201
            sidecar = SidecarProcess(
                [
                    "--snapshot",
                    f"{control.address}/api/v1/snapshot",
                    "--api-key",
                    key,
                    "--listen",
                    "127.0.0.1:0",
                    "--state",
                    str(tmp_path / "state.db"),
                    "--metrics-listen",
                    "127.0.0.1:0",
                ]
            )
            sidecar_metrics = _metrics_url(sidecar)
            strict = PII | {"enforcementMode": "block"}
            published = await api.post(
                "/snapshot/candidate", json={"changes": [{"op": "put", "policy": strict}]}
            )
            assert published.status_code == 201

            async def shadowing() -> bool:
                samples = await scrape(sidecar_metrics)
                return value(samples, "pdp_shadow_candidate_revision") == 3

            await _until(shadowing)
            async with grpc.aio.insecure_channel(sidecar.address) as channel:
                stub = pb_grpc.PolicyDecisionServiceStub(channel)
                request = pb.EnforceRequest(agent_id="my-chatbot", input="SSN 123-45-6789")
                answer = await stub.Enforce(request)
                assert answer.decision == pb.DECISION_ALLOW  # the active snapshot decides

                async def counted() -> bool:
                    samples = await scrape(sidecar_metrics)
                    return (
                        value(
                            samples,
                            "pdp_shadow_differences_total",
                            active_decision="ALLOW",
                            candidate_decision="BLOCK",
                        )
                        == 1
                    )

                await _until(counted)
                assert any("shadow difference" in line for line in sidecar.log)
                assert not any("123-45-6789" in line for line in sidecar.log)

                diff = (await api.get("/snapshot/candidate/diff")).json()
                assert diff["diff"]["changed"] == ["PII Protection"]
                assert (await api.post("/snapshot/candidate/promote")).status_code == 200

                async def enforced() -> bool:
                    answer = await stub.Enforce(request)
                    return bool(answer.decision == pb.DECISION_BLOCK)

                await _until(enforced)

                async def stopped_shadowing() -> bool:
                    samples = await scrape(sidecar_metrics)
                    return value(samples, "pdp_shadow_candidate_revision") is None

                await _until(stopped_shadowing)
            control_samples = await scrape(_metrics_url(control))
            assert value(control_samples, "pdp_snapshot_revision") == 3
            assert value(control_samples, "pdp_snapshot_candidate") == 0
            assert (
                value(
                    control_samples,
                    "pdp_control_requests_total",
                    route="/api/v1/snapshot/candidate/promote",
                    method="POST",
                    status="200",
                )
                == 1
            )
    finally:
        if sidecar is not None:
            assert sidecar.stop() == 0
        assert control.stop() == 0
