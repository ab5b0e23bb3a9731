"""Transport security and secrets: the control plane serves TLS that
sidecars verify, API keys come from a file (read again when the key is
refused) and never appear in the process list, and the API description is
served without a CDN, behind a key, or not at all."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pdp.control import create_api_key, revoke_api_keys
from pdp.v1 import policy_decision_service_pb2 as pb
from tests._tls import Certificates
from tests.conftest import SidecarProcess, StartSidecar
from tests.control._harness import ControlPlaneHarness, ControlPlaneProcess
from tests.security.test_kill_switch import seconds_until_decision


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return Certificates.create(tmp_path / "tls")


@pytest.fixture
def tls_control_plane(tmp_path: Path, certificates: Certificates) -> Iterator[ControlPlaneProcess]:
    cp = ControlPlaneProcess(
        tmp_path / "control.db",
        extra=["--tls-cert", str(certificates.cert_file), "--tls-key", str(certificates.key_file)],
    )
    yield cp
    cp.stop()


async def test_sidecars_follow_a_tls_control_plane_they_verify(
    tls_control_plane: ControlPlaneProcess,
    certificates: Certificates,
    start_sidecar: StartSidecar,
) -> None:
    cp = tls_control_plane
    assert cp.base_url.startswith("https://")
    async with cp.client(verify=certificates.client_context()) as client:
        (await client.post("/agents", json={"name": "probe"})).raise_for_status()
        sidecar = await start_sidecar(
            source=cp.snapshot_url, api_key=cp.api_key, ca_file=str(certificates.ca_file)
        )
        await seconds_until_decision(sidecar, "probe", pb.DECISION_ALLOW, within=15)
        (await client.patch("/agents/probe/pause", json={"reason": "x"})).raise_for_status()
        await seconds_until_decision(sidecar, "probe", pb.DECISION_AGENT_PAUSED, within=15)

    # A sidecar that does not trust the control plane's CA gets nothing.
    doubting = await start_sidecar(source=cp.snapshot_url, api_key=cp.api_key, name="doubting")
    assert doubting.sidecar.holder.active is None
    assert "CERTIFICATE_VERIFY_FAILED" in str(doubting.sidecar.holder.unreachable)
    # And plain http is not served on the TLS port.
    with pytest.raises(httpx.HTTPError):
        async with httpx.AsyncClient() as plain:
            await plain.get(cp.base_url.replace("https://", "http://") + "/healthz")


def _command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


async def test_a_key_file_keeps_the_key_out_of_the_process_list(
    tmp_path: Path, control_plane: ControlPlaneHarness, spawn_sidecar: Callable[..., SidecarProcess]
) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text(control_plane.api_key + "\n")  # as a Secret or an editor leaves it
    async with control_plane.client() as client:
        (await client.post("/agents", json={"name": "probe"})).raise_for_status()
    sidecar = await asyncio.to_thread(
        spawn_sidecar,
        "--snapshot", control_plane.snapshot_url,
        "--api-key-file", str(key_file),
        "--listen", "127.0.0.1:0",
        "--state", str(tmp_path / "state.db"),
    )  # fmt: skip
    assert control_plane.api_key not in _command_line(sidecar.proc.pid)
    assert any("revision 1" in line and "active" in line for line in sidecar.log), sidecar.log

    visible = await asyncio.to_thread(
        spawn_sidecar,
        "--snapshot", control_plane.snapshot_url,
        "--api-key", control_plane.api_key,
        "--listen", "127.0.0.1:0",
        "--state", str(tmp_path / "state2.db"),
    )  # fmt: skip
    assert any("--api-key puts the key in the process list" in line for line in visible.log)


async def test_a_rotated_key_file_is_read_again(
    tmp_path: Path, control_plane: ControlPlaneHarness, start_sidecar: StartSidecar
) -> None:
    server = control_plane.server
    assert server is not None and server.control is not None
    store = server.control.store
    old = await create_api_key(store, "sidecar-v1")
    key_file = tmp_path / "api-key"
    key_file.write_text(old.secret)
    async with control_plane.client() as client:
        (await client.post("/agents", json={"name": "probe"})).raise_for_status()
        sidecar = await start_sidecar(
            source=control_plane.snapshot_url, api_key_file=str(key_file), max_staleness=60.0
        )
        holder = sidecar.sidecar.holder

        # The key is revoked and the Secret holds a new one: the sidecar
        # reads it when the control plane refuses the old one.
        await revoke_api_keys(store, name="sidecar-v1")
        key_file.write_text((await create_api_key(store, "sidecar-v2")).secret)
        (await client.patch("/agents/probe/pause", json={"reason": "x"})).raise_for_status()
        await seconds_until_decision(sidecar, "probe", pb.DECISION_AGENT_PAUSED, within=10)
        # The pause may arrive on a long poll sent with the old key before it
        # was revoked; the next poll is refused and the key file read again.
        # A change made after the pause is seen can only arrive on a request
        # that carries the new key, and that answer clears the refusal.
        (await client.patch("/agents/probe/resume")).raise_for_status()
        await seconds_until_decision(sidecar, "probe", pb.DECISION_ALLOW, within=10)
        assert holder.last_rejection is None


async def test_a_key_file_that_cannot_be_read_stops_the_start(tmp_path: Path) -> None:
    from tests._process import run_pdp

    done = await asyncio.to_thread(
        run_pdp,
        "serve", "--snapshot", "http://127.0.0.1:9/api/v1/snapshot",
        "--api-key-file", str(tmp_path / "missing"),
        "--state", str(tmp_path / "state.db"),
    )  # fmt: skip
    assert done.returncode == 1
    assert "cannot read API key file" in done.stderr


_ASSET = re.compile(r'(?:src|href)="([^"]+)"')


async def test_the_swagger_page_needs_nothing_from_the_internet(
    control_plane: ControlPlaneHarness,
) -> None:
    async with httpx.AsyncClient(base_url=control_plane.base_url) as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        assets = _ASSET.findall(page.text)
        assert assets and all(a.startswith("/docs/") for a in assets), assets
        for asset in assets:
            response = await http.get(asset)
            assert response.status_code == 200 and len(response.content) > 0, asset
        assert "SwaggerUIBundle" in (await http.get("/docs/swagger-ui-bundle.js")).text
        assert (await http.get("/openapi.json")).json()["info"]["title"] == "pdp control plane"
        assert (await http.get("/redoc")).status_code == 404  # it would load from a CDN


@pytest.mark.parametrize("docs", ["key", "off"])
async def test_the_api_description_can_be_kept_behind_a_key_or_off(
    tmp_path: Path, docs: str
) -> None:
    async with (
        ControlPlaneHarness(tmp_path / "control.db", docs=docs) as cp,
        httpx.AsyncClient(base_url=cp.base_url) as http,
    ):
        keyed = {"X-API-Key": cp.api_key}
        if docs == "off":
            for path in ("/docs", "/openapi.json", "/docs/swagger-ui-bundle.js"):
                assert (await http.get(path, headers=keyed)).status_code == 404, path
        else:
            assert (await http.get("/openapi.json")).status_code == 401
            assert (await http.get("/openapi.json", headers=keyed)).status_code == 200
            # The page holds nothing about the API; it asks for the key.
            assert "prompt(" in (await http.get("/docs")).text
        assert (await http.get("/healthz")).status_code == 200
