"""The layers of ARCHITECTURE.md: dependencies point down only, and the
engine stays pure (no asyncio, grpc, sqlite, wire types)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pdp"

# What each layer may import from pdp.
ALLOWED: dict[str, set[str]] = {
    "engine": set(),
    "state": {"engine"},
    "snapshot": {"engine"},
    "server": {"engine", "snapshot", "state", "v1", "observe", "outbound"},
    "control": {"engine", "state", "observe", "outbound"},
    "policytest": {"engine"},
    "observe": set(),
    "outbound": set(),
    "embedded": {"server"},
}
ENGINE_FORBIDDEN = {"asyncio", "grpc", "sqlite3", "aiosqlite", "socket", "httpx", "subprocess"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_is_below(layer: str) -> None:
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for name in imports_of(path):
            if name == "pdp" or name.startswith("pdp."):
                used = name.split(".")[1] if "." in name else ""
                assert used in ALLOWED[layer] | {layer}, f"{path.name} imports {name}"


def test_engine_is_pure() -> None:
    for path in sorted((PACKAGE / "engine").rglob("*.py")):
        for name in imports_of(path):
            assert name.split(".")[0] not in ENGINE_FORBIDDEN, f"{path.name} imports {name}"


def test_client_does_not_import_the_server() -> None:
    client = PACKAGE.parent / "clients" / "python" / "pdp_client"
    for path in sorted(client.rglob("*.py")):
        for name in imports_of(path):
            assert name != "pdp" and not name.startswith("pdp."), f"{path} imports {name}"


def test_the_control_plane_reaches_its_database_through_the_backends() -> None:
    """Only the backends import a database driver: every other module's SQL
    runs on SQLite and PostgreSQL alike (see pdp/control/_schema.py)."""
    owners = {"asyncpg": {"_postgres.py"}, "aiosqlite": {"_backend.py"}, "sqlite3": {"_backend.py"}}
    for path in sorted((PACKAGE / "control").rglob("*.py")):
        for name in imports_of(path):
            driver = name.split(".")[0]
            if driver in owners:
                assert path.name in owners[driver], f"{path.name} imports {name}"
