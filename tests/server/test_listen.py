"""Both servers bind what the one listen-address parser reads, IPv6 in
brackets included, and report the address with the port they got."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdp.server import ServeOptions, Sidecar
from pdp.v1 import policy_decision_service_pb2 as pb
from tests.conftest import StartSidecar, example_document
from tests.control._harness import ControlPlaneHarness


async def test_a_sidecar_listens_on_ipv6_loopback(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(example_document(), listen="[::1]:0")
    host, _, port = sidecar.address.rpartition(":")
    assert host == "[::1]" and int(port) > 0
    resp = await sidecar.stub.Enforce(pb.EnforceRequest(agent_id="my-chatbot", input="hello"))
    assert resp.decision == pb.DECISION_ALLOW


async def test_a_control_plane_listens_on_ipv6_loopback(tmp_path: Path) -> None:
    async with ControlPlaneHarness(tmp_path / "control.db", host="::1") as control_plane:
        assert control_plane.base_url.startswith("http://[::1]:")
        async with control_plane.client() as client:
            assert (await client.get("/snapshot")).status_code == 200


async def test_a_bad_listen_address_in_code_fails_to_start(tmp_path: Path) -> None:
    options = ServeOptions(
        snapshot=str(tmp_path / "p.yaml"), listen="::1:50051", state=str(tmp_path / "s.db")
    )
    with pytest.raises(OSError, match="in brackets"):
        await Sidecar(options).start()
