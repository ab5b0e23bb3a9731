"""A control plane started with a narrower ``--outbound-allow`` than the one
its URLs were stored under names, in one warning at start, each stored
webhook URL and custom_validator policy URL the current list refuses (the
write-time check, without DNS), and nothing when the list allows them all."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pdp.control import PostgresLocation
from pdp.outbound import OutboundPolicy
from tests._postgres import PostgresServer
from tests.conftest import new_postgres_db
from tests.control._harness import ControlPlaneHarness, ControlPlaneProcess
from tests.control._webhooks import register
from tests.server._validators import SECRET


def refused_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "pdp.control"
        and r.levelno == logging.WARNING
        and "--outbound-allow refuses" in r.getMessage()
    ]


async def store_urls(control: ControlPlaneHarness) -> tuple[str, str, str]:
    """A loopback webhook (with a token in its query), a public one, and a
    custom_validator policy on a private address: ids of each."""
    async with control.client() as client:
        loopback = await register(
            client, "https://127.0.0.1:9/hook?token=s3cret", ["policy.violated"]
        )
        public = await register(client, "https://hooks.example.com/in", ["policy.violated"])
        response = await client.post(
            "/policies",
            json={
                "name": "Entitlements",
                "policyType": "custom_validator",
                "enforcementMode": "block",
                "ruleDefinition": {"url": "https://10.1.2.3:8443/check", "secret": SECRET},
            },
        )
        assert response.status_code == 201, response.text
    return str(loopback["id"]), str(public["id"]), str(response.json()["id"])


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | PostgresLocation:
    if request.param == "sqlite":
        return tmp_path / "control.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return new_postgres_db(server)


async def test_a_narrower_list_at_start_names_each_refused_stored_url(
    any_db: Path | PostgresLocation, caplog: pytest.LogCaptureFixture
) -> None:
    db = any_db
    async with ControlPlaneHarness(db) as control:  # the default list allows all three
        loopback, public, policy = await store_urls(control)
    assert refused_warnings(caplog) == []

    caplog.clear()
    narrower = OutboundPolicy.allowing(["public"])
    with caplog.at_level(logging.WARNING, logger="pdp.control"):
        async with ControlPlaneHarness(db, outbound=narrower) as control, control.client() as c:
            assert (await c.get("/webhooks")).status_code == 200  # still serving
    [warning] = refused_warnings(caplog)
    assert "refuses 2 stored URL(s)" in warning
    assert f"webhook {loopback} (https://127.0.0.1:9/hook): 127.0.0.1 is a loopback" in warning
    assert f"policy {policy} 'Entitlements' (https://10.1.2.3:8443/check): 10.1.2.3 is" in warning
    assert public not in warning  # a name is checked when it is resolved, not here
    assert "s3cret" not in warning  # a query may carry a secret

    caplog.clear()
    async with ControlPlaneHarness(
        db, outbound=OutboundPolicy.allowing(["loopback", "private", "public"])
    ):
        pass
    assert refused_warnings(caplog) == []


@pytest.mark.timeout(60)
async def test_pdp_control_logs_the_refused_urls_when_it_starts(tmp_path: Path) -> None:
    db = tmp_path / "control.db"
    async with ControlPlaneHarness(db) as control:
        loopback, _, policy = await store_urls(control)
    process = ControlPlaneProcess(db, extra=["--outbound-allow", "public"])
    try:
        async with process.client() as client:
            assert (await client.get("/webhooks")).status_code == 200
    finally:
        process.stop()
    log = "".join(process.log)  # the warning comes before "listening on"
    assert log.count("--outbound-allow refuses 2 stored URL(s)") == 1
    assert f"webhook {loopback} (https://127.0.0.1:9/hook)" in log
    assert f"policy {policy} 'Entitlements' (https://10.1.2.3:8443/check)" in log
