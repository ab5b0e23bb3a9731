"""API-key roles: admin does everything, reviewer reads and decides
approvals, sidecar reads the snapshot and posts events; a key made before
roles existed keeps working as admin; a route without declared roles
cannot be served."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from fastapi import APIRouter

from pdp.control import Role
from pdp.control._roles import check_declared, roles
from pdp.control._store import MIGRATIONS
from tests.control._harness import ControlPlaneHarness, cli_create_key, pdp_control
from tests.control._helpers import REFERENCE_POLICIES, error_of


async def test_each_role_reaches_only_its_routes(control_plane: ControlPlaneHarness) -> None:
    reviewer = await control_plane.create_key("alice", "reviewer")
    sidecar = await control_plane.create_key("edge-1", "sidecar")
    async with control_plane.client() as admin:
        assert (await admin.post("/policies", json=REFERENCE_POLICIES[0])).status_code == 201
    async with control_plane.client(reviewer) as client:
        assert (await client.get("/policies")).status_code == 200
        assert (await client.get("/agents")).status_code == 200
        assert (await client.get("/snapshot")).status_code == 200
        error = error_of(await client.post("/policies", json=REFERENCE_POLICIES[1]), 403)
        assert error["code"] == "role_not_allowed"
        assert "role admin" in error["message"] and "'alice' has role reviewer" in error["message"]
        error_of(await client.patch("/agents/nobody/pause", json={}), 403)
    async with control_plane.client(sidecar) as client:
        assert (await client.get("/snapshot")).status_code == 200
        error = error_of(await client.get("/policies"), 403)
        assert "admin or reviewer" in error["message"], error
        error_of(await client.delete(f"/policies/{REFERENCE_POLICIES[0]['name']}"), 403)
    async with control_plane.client() as admin:
        # Nothing the refused requests asked for happened.
        policies = (await admin.get("/policies")).json()["policies"]
        assert [p["name"] for p in policies] == [REFERENCE_POLICIES[0]["name"]]


async def test_a_key_made_before_roles_keeps_working_as_admin(tmp_path: Path) -> None:
    db = tmp_path / "control.db"
    with sqlite3.connect(db) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        secret = "pdp_" + "k" * 43
        conn.execute(
            "INSERT INTO api_keys (id, name, prefix, key_sha256, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                "1",
                "old",
                secret[:12],
                hashlib.sha256(secret.encode()).hexdigest(),
                "2025-01-01T00:00:00Z",
            ),
        )
    async with ControlPlaneHarness(db) as control_plane, control_plane.client(secret) as client:
        assert (await client.post("/policies", json=REFERENCE_POLICIES[0])).status_code == 201
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT role FROM api_keys WHERE id = '1'").fetchone() == ("admin",)


def test_create_key_takes_a_role(tmp_path: Path) -> None:
    db = tmp_path / "control.db"
    result = pdp_control("create-key", "--db", str(db), "--name", "bob", "--role", "reviewer")
    assert result.returncode == 0, result.stderr
    assert "role reviewer" in result.stdout.splitlines()[0]
    cli_create_key(db, "default")  # no --role: admin
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT name, role FROM api_keys").fetchall())
    assert rows == {"bob": "reviewer", "default": "admin"}
    refused = pdp_control("create-key", "--db", str(db), "--name", "x", "--role", "root")
    assert refused.returncode == 2 and "--role" in refused.stderr


def test_a_route_without_roles_is_refused_at_start() -> None:
    router = APIRouter(prefix="/api/v1")

    @router.get("/open")
    async def open_route() -> None: ...

    @router.get("/closed", dependencies=[roles(Role.REVIEWER)])
    async def closed_route() -> None: ...

    with pytest.raises(TypeError, match="/api/v1/open") as raised:
        check_declared(router.routes, "/api/v1")
    assert "/closed" not in str(raised.value)
