"""An approval as a deployment lives it, every part its own process: `pdp
control`, `pdp serve` following it with a sidecar key, an agent using the
Python SDK and a reviewer using the REST API with a reviewer key. The
sidecar is killed with SIGKILL and the control plane restarted while the
approval is pending; the approval survives both, and the approved call goes
through once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pdp_client import Client, Decision, EnforceResult, PolicyBlockedError

from tests._process import PdpProcess
from tests.control._harness import ControlPlaneProcess, cli_create_key

POLICY = {
    "name": "No Shell In Production",
    "policyType": "expression",
    "enforcementMode": "require_approval",
    "ruleDefinition": {
        "expression": 'request.tool == "shell" && request.metadata["env"] == "prod"'
    },
}


def api(base_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=f"{base_url}/api/v1", headers={"X-API-Key": key}, timeout=30)


def serve(control: ControlPlaneProcess, key: str, state: Path) -> PdpProcess:
    return PdpProcess(
        ["serve", "--snapshot", control.snapshot_url, "--api-key", key,
         "--state", str(state), "--listen", "127.0.0.1:0"],
    )  # fmt: skip


def held_call(
    pdp: Client, approval_id: str | None = None, wait: float | None = None
) -> EnforceResult:
    return pdp.enforce_policy(
        "my-chatbot",
        "restart the api",
        tool="shell",
        metadata={"env": "prod"},
        approval_id=approval_id,
        wait_for_approval=wait,
    )


def eventually(check: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within:g}s")
        time.sleep(0.05)


@pytest.mark.timeout(180)  # several pdp processes: slow to start on a loaded machine
def test_an_approval_survives_sigkill_of_the_sidecar_and_a_control_plane_restart(
    tmp_path: Path,
) -> None:
    db, state = tmp_path / "control.db", tmp_path / "edge.db"
    control = ControlPlaneProcess(db)
    sidecar_key = cli_create_key(db, "edge-1", "--role", "sidecar")
    reviewer_key = cli_create_key(db, "alice", "--role", "reviewer")
    sidecar: PdpProcess | None = None
    try:
        with api(control.base_url, control.api_key) as admin:
            admin.post("/agents", json={"name": "my-chatbot"}).raise_for_status()
            admin.post("/policies", json=POLICY).raise_for_status()
        sidecar = serve(control, sidecar_key, state)
        with Client(sidecar.address, timeout=5) as pdp:
            eventually(lambda: held_call(pdp).decision == Decision.PENDING_APPROVAL)
            held = held_call(pdp)
        approval_id = held.approval_id
        assert approval_id is not None

        def reported() -> bool:
            with api(control.base_url, reviewer_key) as reviewer:
                listed = reviewer.get("/approvals", params={"status": "pending"}).json()
            return approval_id in [a["id"] for a in listed["approvals"]]

        eventually(reported)
        sidecar.kill()  # SIGKILL: no shutdown at all
        control.stop()
        control = ControlPlaneProcess(db, api_key=control.api_key)
        with api(control.base_url, reviewer_key) as reviewer:
            decided = reviewer.post(f"/approvals/{approval_id}/approve", json={"comment": "go"})
            assert decided.status_code == 200, decided.text
            assert decided.json()["reviewer"] == "alice"

        sidecar = serve(control, sidecar_key, state)
        with Client(sidecar.address, timeout=5) as pdp:
            result = held_call(pdp, approval_id, wait=20)
            assert result.decision == Decision.ALLOW
            with pytest.raises(PolicyBlockedError) as used:
                held_call(pdp, approval_id)
            assert "already used" in used.value.violations[0].message
        with api(control.base_url, reviewer_key) as reviewer:
            stored = reviewer.get(f"/approvals/{approval_id}").json()
        assert stored["consumedAt"] is not None
    finally:
        if sidecar is not None:
            sidecar.stop()
        control.stop()
