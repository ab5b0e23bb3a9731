"""`pdp control` as a user runs it: a child process on a real port, API keys
from `pdp control create-key`, a database that survives restarts and never
holds a raw key."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import httpx
import pytest

from pdp.control._store import MIGRATIONS
from tests.control._harness import ControlPlaneProcess, cli_create_key, pdp_control
from tests.control._helpers import REFERENCE_POLICIES

# Several `pdp` processes per test: 25-42 s each on a loaded machine.
pytestmark = pytest.mark.timeout(180)


def api(proc: ControlPlaneProcess, key: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=f"{proc.base_url}/api/v1",
        headers={"X-API-Key": key or proc.api_key},
        timeout=30.0,
    )


def test_create_key_prints_the_key_alone_on_the_last_line(tmp_path: Path) -> None:
    db = tmp_path / "control.db"
    result = pdp_control("create-key", "--db", str(db), "--name", "ci")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.rstrip("\n").split("\n")
    key = lines[-1]
    assert key.startswith("pdp_") and len(key) >= 40 and " " not in key
    assert "'ci'" in lines[0]
    # The database was created and migrated by the command.
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_serves_restarts_and_keeps_everything(tmp_path: Path) -> None:
    db = tmp_path / "control.db"
    proc = ControlPlaneProcess(db)
    try:
        assert proc.base_url.startswith("http://127.0.0.1:") and not proc.base_url.endswith(":0")
        with api(proc) as client:
            for body in REFERENCE_POLICIES:
                assert client.post("/policies", json=body).status_code == 201
            assert client.post("/agents", json={"name": "agent-a"}).status_code == 201
            assert client.post("/agents", json={"name": "agent-b"}).status_code == 201
            grant = {"targetAgentId": "agent-b", "allowedActions": ["execute"]}
            assert client.post("/agents/agent-a/grants", json=grant).status_code == 201
            assert client.patch("/agents/agent-b/pause", json={"reason": "r"}).status_code == 200
            before = client.get("/snapshot")
            policies = client.get("/policies").json()
            agents = client.get("/agents").json()
            grants = client.get("/agents/agent-a/grants").json()
    finally:
        assert proc.stop() == 0
    assert any("shutting down" in line for line in proc.log)

    again = ControlPlaneProcess(db, api_key=proc.api_key)
    try:
        with api(again) as client:
            after = client.get("/snapshot")
            assert after.headers["ETag"] == before.headers["ETag"] == '"8"'
            assert after.json() == before.json()
            assert client.get("/policies").json() == policies
            assert client.get("/agents").json() == agents
            assert client.get("/agents/agent-a/grants").json() == grants
            # Writes go on from the stored revision.
            assert client.patch("/agents/agent-b/resume").status_code == 200
            assert client.get("/snapshot").headers["ETag"] == '"9"'
    finally:
        assert again.stop() == 0


def test_keys_are_stored_only_as_hashes(tmp_path: Path) -> None:
    db = tmp_path / "control.db"
    keys = [cli_create_key(db, f"key-{i}") for i in range(3)]
    proc = ControlPlaneProcess(db, api_key=keys[0])
    try:
        with api(proc) as client:
            assert client.get("/snapshot").status_code == 200
        stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(db.name))
        for key in keys:
            assert key.encode() not in stored
            assert key[4:].encode() not in stored  # nor its random part
        with sqlite3.connect(db) as conn:
            hashes = {row[0] for row in conn.execute("SELECT key_sha256 FROM api_keys")}
        assert hashes == {hashlib.sha256(k.encode()).hexdigest() for k in keys}
    finally:
        proc.stop()


def test_revoked_key_is_refused_by_a_running_control_plane(tmp_path: Path) -> None:
    db = tmp_path / "control.db"
    proc = ControlPlaneProcess(db)
    try:
        other = cli_create_key(db, "temporary")
        with api(proc, other) as client:
            assert client.get("/agents").status_code == 200
            result = pdp_control("revoke-key", "--db", str(db), "--name", "temporary")
            assert result.returncode == 0, result.stderr
            response = client.get("/agents")
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "api_key_revoked"
        with api(proc) as client:
            assert client.get("/agents").status_code == 200
            # Keys made and revoked from another process published nothing.
            assert client.get("/snapshot").headers["ETag"] == '"0"'
    finally:
        proc.stop()


def test_one_control_plane_per_database(tmp_path: Path) -> None:
    db = tmp_path / "control.db"
    proc = ControlPlaneProcess(db)
    try:
        result = pdp_control("--listen", "127.0.0.1:0", "--db", str(db), timeout=30)
        assert result.returncode == 1
        assert "another control plane is already using" in result.stderr
    finally:
        proc.stop()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    db = str(tmp_path / "control.db")
    result = pdp_control("create-key", "--db", db, "--name", "x", "--expires-at", "tomorrow")
    assert result.returncode == 2 and "--expires-at" in result.stderr
    result = pdp_control(
        "create-key", "--db", db, "--name", "x", "--expires-at", "2020-01-01T00:00:00Z"
    )
    assert result.returncode == 2 and "passed" in result.stderr
    result = pdp_control("--listen", "localhost", "--db", db)
    assert result.returncode == 2 and "--listen" in result.stderr
    result = pdp_control("create-key", "--db", str(tmp_path / "missing" / "c.db"), "--name", "x")
    assert result.returncode == 1 and "does not exist" in result.stderr
