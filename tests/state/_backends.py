"""The usage backends the contract suite (test_usage_contract.py) runs
against. A backend opens a usage port on its storage; opening again after
closing is a restart of the process that holds it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pytest

from pdp.engine import Clock, UsagePort
from pdp.state import Database, SqliteUsage
from pdp.state._location import RedisLocation, parse_state_location
from pdp.state._redis_usage import RedisUsage
from tests._redis import RedisServer

__all__ = ["BACKENDS", "UsageBackend"]


class UsageBackend(Protocol):
    async def open(self, clock: Clock, **options: float) -> UsagePort:
        """A usage port on this backend's storage, its background work
        started; ``options`` go to the port's ``open``."""
        ...

    async def close(self, usage: UsagePort) -> None:
        """Closes a port ``open`` returned, as a clean shutdown does."""
        ...

    async def close_all(self) -> None:
        """Closes every port still open."""
        ...


class SqliteBackend:
    """A SQLite state database in a file of the test's directory."""

    def __init__(self, request: pytest.FixtureRequest, directory: Path) -> None:
        self._path = directory / "state.db"
        self._open: list[tuple[SqliteUsage, Database]] = []

    async def open(self, clock: Clock, **options: float) -> UsagePort:
        db = await Database.open(self._path)
        usage = await SqliteUsage.open(db, clock=clock, **options)  # type: ignore[arg-type]
        usage.start()
        self._open.append((usage, db))
        return usage

    async def close(self, usage: UsagePort) -> None:
        for index, (port, db) in enumerate(self._open):
            if port is usage:
                del self._open[index]
                await port.close()
                await db.close()
                return
        raise AssertionError("not a port of this backend, or closed already")

    async def close_all(self) -> None:
        while self._open:
            await self.close(self._open[-1][0])


class RedisBackend:
    """A real redis-server (the session's, emptied for the test)."""

    def __init__(self, request: pytest.FixtureRequest, directory: Path) -> None:
        server: RedisServer = request.getfixturevalue("redis_server")
        location = parse_state_location(server.url)
        assert isinstance(location, RedisLocation)
        self._location = location
        self._open: list[RedisUsage] = []

    async def open(self, clock: Clock, **options: float) -> UsagePort:
        usage = await RedisUsage.open(self._location, clock=clock, **options)  # type: ignore[arg-type]
        usage.start()
        self._open.append(usage)
        return usage

    async def close(self, usage: UsagePort) -> None:
        for index, port in enumerate(self._open):
            if port is usage:
                del self._open[index]
                await port.close()
                return
        raise AssertionError("not a port of this backend, or closed already")

    async def close_all(self) -> None:
        while self._open:
            await self.close(self._open[-1])


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], UsageBackend]] = {
    "redis": RedisBackend,
    "sqlite": SqliteBackend,
}
