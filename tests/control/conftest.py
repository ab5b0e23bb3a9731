"""Fixtures: a real control plane (uvicorn on an ephemeral port, a real
SQLite file) and a client with its API key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.control._harness import ControlPlaneHarness


@pytest.fixture
async def control_plane(tmp_path: Path) -> AsyncIterator[ControlPlaneHarness]:
    """A running control plane on ``tmp_path / "control.db"`` with an API key."""
    harness = ControlPlaneHarness(tmp_path / "control.db")
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


@pytest.fixture
async def client(control_plane: ControlPlaneHarness) -> AsyncIterator[httpx.AsyncClient]:
    async with control_plane.client() as c:
        yield c
