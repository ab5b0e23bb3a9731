"""The usage backends the contract suite (test_usage_contract.py) runs
against. A backend opens a usage port on its storage; opening again after
closing is a restart of the process that holds it. A new backend (Redis)
joins by adding its class to BACKENDS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from pdp.engine import Clock, UsagePort
from pdp.state import Database, SqliteUsage

__all__ = ["BACKENDS", "UsageBackend"]


class UsageBackend(Protocol):
    async def open(self, clock: Clock) -> UsagePort:
        """A usage port on this backend's storage, its background work started."""
        ...

    async def close(self, usage: UsagePort) -> None:
        """Closes a port ``open`` returned, as a clean shutdown does."""
        ...

    async def close_all(self) -> None:
        """Closes every port still open."""
        ...


class SqliteBackend:
    """A SQLite state database in a file of the test's directory."""

    def __init__(self, directory: Path) -> None:
        self._path = directory / "state.db"
        self._open: list[tuple[SqliteUsage, Database]] = []

    async def open(self, clock: Clock) -> UsagePort:
        db = await Database.open(self._path)
        usage = await SqliteUsage.open(db, clock=clock)
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


BACKENDS: dict[str, Callable[[Path], UsageBackend]] = {"sqlite": SqliteBackend}
