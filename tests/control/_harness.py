"""Real control planes for tests, importable from any test package:

- :class:`ControlPlaneHarness`: uvicorn in this process on an ephemeral port,
  with a real SQLite file (or a real PostgreSQL database) and an API key
  created in it;
- :class:`ControlPlaneProcess`: ``pdp control`` as a child process, its API
  key made by ``pdp control create-key``.

Both expose ``base_url``, ``snapshot_url`` and ``api_key``. The database is
a SQLite path or a :class:`~pdp.control.PostgresLocation` (with its password:
child processes get it through ``PDP_DB_PASSWORD``, never the command line)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from pdp.control import (
    API_KEY_HEADER,
    DB_PASSWORD_ENV,
    ControlOptions,
    ControlPlane,
    ControlServer,
    Event,
    PostgresLocation,
    Role,
    SideTransaction,
    create_api_key,
)
from tests._process import PdpProcess, run_pdp

__all__ = [
    "ControlDb",
    "ControlPlaneHarness",
    "ControlPlaneProcess",
    "cli_create_key",
    "db_argument",
    "pdp_control",
]

ControlDb = Path | PostgresLocation


def db_argument(db: ControlDb) -> tuple[str, dict[str, str]]:
    """``--db``'s value for ``db`` and the environment that goes with it."""
    if isinstance(db, PostgresLocation):
        return str(db), {DB_PASSWORD_ENV: db.password or ""}
    return str(db), {}


class ControlPlaneHarness:
    """``async with ControlPlaneHarness(db_path) as cp:`` or start()/stop()."""

    def __init__(self, db: ControlDb, *, key_name: str = "tests", **options: Any) -> None:
        self.db = db
        self.key_name = key_name
        self.options = options
        self.server: ControlServer | None = None
        self.api_key = ""

    async def start(self) -> ControlPlaneHarness:
        server = ControlServer(ControlOptions(db=self.db, port=0, **self.options))
        await server.start()
        self.server = server
        try:
            self.api_key = (await create_api_key(self.control.store, self.key_name)).secret
        except BaseException:
            await self.stop()  # nobody else would: the caller never got it
            raise
        return self

    @property
    def db_path(self) -> Path:
        """The SQLite file (for tests that read it directly)."""
        assert isinstance(self.db, Path), "not a SQLite control plane"
        return self.db

    async def rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read of the running control plane's database, in either backend."""
        return await self.control.store.fetchall(sql, parameters)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def restart(self) -> None:
        """Stops and starts again on the same database, keeping the API key."""
        key = self.api_key
        await self.stop()
        server = ControlServer(ControlOptions(db=self.db, port=0, **self.options))
        await server.start()
        self.server, self.api_key = server, key

    @property
    def base_url(self) -> str:
        assert self.server is not None, "not started"
        return self.server.base_url

    @property
    def control(self) -> ControlPlane:
        assert self.server is not None and self.server.control is not None, "not started"
        return self.server.control

    def record(self, event_type: str) -> list[Event]:
        """Every event of ``event_type`` the running control plane handles
        from now on (a handler registered on its event registry)."""
        seen: list[Event] = []

        async def handler(tx: SideTransaction, event: Event) -> None:
            seen.append(event)

        self.control.events.on_event(event_type, handler)
        return seen

    async def create_key(self, name: str, role: str = "admin") -> str:
        """A new API key for ``name`` with ``role``; returns the key."""
        return (await create_api_key(self.control.store, name, role=Role(role))).secret

    @property
    def snapshot_url(self) -> str:
        return f"{self.base_url}/api/v1/snapshot"

    @property
    def headers(self) -> dict[str, str]:
        return {API_KEY_HEADER: self.api_key}

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """A client for ``/api/v1`` with the API key set (``key``, or the harness's)."""
        return httpx.AsyncClient(
            base_url=f"{self.base_url}/api/v1",
            headers={API_KEY_HEADER: key or self.api_key},
            timeout=kwargs.pop("timeout", 30.0),
            **kwargs,
        )

    async def __aenter__(self) -> ControlPlaneHarness:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def pdp_control(
    *args: str, timeout: float = 60.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_pdp("control", *args, timeout=timeout, env=env)


def cli_create_key(db_path: ControlDb, name: str = "tests", *extra: str) -> str:
    """``pdp control create-key``; the key is the last line of its output."""
    db, env = db_argument(db_path)
    result = pdp_control("create-key", "--db", db, "--name", name, *extra, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


class ControlPlaneProcess(PdpProcess):
    """``pdp control --listen 127.0.0.1:0 --db PATH [EXTRA...]`` as a child
    process."""

    def __init__(
        self, db_path: ControlDb, *, api_key: str | None = None, extra: Sequence[str] = ()
    ) -> None:
        self.db_path = db_path
        self.api_key = api_key if api_key is not None else cli_create_key(db_path)
        db, env = db_argument(db_path)
        super().__init__(
            ["control", "--listen", "127.0.0.1:0", "--db", db, *extra],
            listening=r"listening on (https?://\S+)",
            env=env,
        )
        self.base_url = self.address

    @property
    def snapshot_url(self) -> str:
        return f"{self.base_url}/api/v1/snapshot"

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"{self.base_url}/api/v1",
            headers={API_KEY_HEADER: self.api_key},
            timeout=kwargs.pop("timeout", 30.0),
            **kwargs,
        )
