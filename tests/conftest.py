"""Fixtures that start real sidecars: in-process (grpc.aio on an ephemeral
port, a real SQLite file) or as a `pdp serve` subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml

from pdp.control import PostgresLocation, parse_db_location
from pdp.engine import Clock
from pdp.server import ServeOptions, Sidecar
from pdp.state import StateError, StateInUseError, lock_state_file
from pdp.v1 import policy_decision_service_pb2_grpc as pb_grpc
from tests._postgres import PASSWORD, PostgresServer, postgres_or_skip
from tests._process import PdpProcess
from tests._redis import RedisServer, redis_or_skip
from tests.control._harness import ControlDb, ControlPlaneHarness

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_SNAPSHOT = REPO / "examples" / "policies.yaml"


def example_document() -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE_SNAPSHOT.read_text())
    assert isinstance(doc, dict)
    return doc


def write_atomically(path: Path, content: str | Mapping[str, Any]) -> None:
    """Writes like an editor does: a temporary file renamed over the target."""
    text = content if isinstance(content, str) else yaml.safe_dump(dict(content), sort_keys=False)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class RunningSidecar:
    def __init__(self, sidecar: Sidecar, snapshot_path: Path, state_path: Path | str) -> None:
        self.sidecar = sidecar
        self.snapshot_path = snapshot_path
        self.state_path = state_path
        self.channel = grpc.aio.insecure_channel(sidecar.address)
        self.stub = pb_grpc.PolicyDecisionServiceStub(self.channel)

    @property
    def address(self) -> str:
        return self.sidecar.address

    @property
    def revision(self) -> int:
        active = self.sidecar.holder.active
        return -1 if active is None else active.snapshot.revision

    async def write_snapshot(self, content: str | Mapping[str, Any]) -> None:
        write_atomically(self.snapshot_path, content)

    async def wait_for(self, predicate: Callable[[], bool], within: float = 15.0) -> float:
        """Seconds until ``predicate`` holds; fails after ``within`` seconds
        (generous: a reload on a loaded 2-core machine can take a second)."""
        start = time.monotonic()
        while not predicate():
            if time.monotonic() - start > within:
                pytest.fail(f"condition not met within {within}s")
            await asyncio.sleep(0.01)
        return time.monotonic() - start

    async def close(self) -> None:
        try:
            await self.channel.close(grace=None)
        finally:
            await self.sidecar.stop(grace=1.0)


StartSidecar = Callable[..., Awaitable[RunningSidecar]]


def _free_directory(tmp_path: Path) -> str:
    for index in range(1, 100):
        name = "sidecar" if index == 1 else f"sidecar-{index}"
        try:
            locks = [lock_state_file(str(tmp_path / name / f)) for f in ("state.db", "local.db")]
        except StateInUseError:
            continue
        except StateError:  # the directory does not exist yet: free
            return name
        for lock in locks:
            if lock is not None:
                lock.release()
        return name
    raise AssertionError("too many sidecars running in one test")


@pytest.fixture
async def start_sidecar(tmp_path: Path) -> AsyncIterator[StartSidecar]:
    """Starts in-process sidecars; each gets its own snapshot file and state.
    Every one is stopped after the test, even when stopping another fails."""
    running = contextlib.AsyncExitStack()

    async def start(
        snapshot: str | Mapping[str, Any] | None = None,
        *,
        state: Path | str | None = None,
        snapshot_path: Path | None = None,
        source: str | None = None,
        name: str | None = None,
        clock: Clock | None = None,
        **options: Any,
    ) -> RunningSidecar:
        """``source`` (a control plane's snapshot URL) replaces the file;
        ``state`` is a SQLite file or a Redis URL (then the decision log goes
        to the sidecar's directory); ``clock`` goes to the Sidecar, other
        options to ServeOptions. Without a ``name``, a sidecar gets the
        directory "sidecar", or "sidecar-2", ... while another running
        sidecar holds the state there (one sidecar per state file)."""
        directory = tmp_path / (name or _free_directory(tmp_path))
        directory.mkdir(exist_ok=True)
        snapshot_path = snapshot_path or directory / "policies.yaml"
        if snapshot is not None:
            write_atomically(snapshot_path, snapshot)
        state_path = state or directory / "state.db"
        options.setdefault("local_state", str(directory / "local.db"))
        opts = ServeOptions(
            snapshot=source or str(snapshot_path),
            listen=options.pop("listen", "127.0.0.1:0"),
            state=str(state_path),
            poll_interval=options.pop("poll_interval", 0.05),
            **options,
        )
        sidecar = Sidecar(opts, clock=clock)
        await sidecar.start()
        handle = RunningSidecar(sidecar, snapshot_path, state_path)
        running.push_async_callback(handle.close)
        return handle

    async with running:
        yield start


@pytest.fixture
async def example_sidecar(start_sidecar: StartSidecar) -> RunningSidecar:
    return await start_sidecar(EXAMPLE_SNAPSHOT.read_text())


class SidecarProcess(PdpProcess):
    """`pdp serve ARGS` as a child process."""

    def __init__(self, args: list[str]) -> None:
        super().__init__(["serve", *args])


@pytest.fixture
def spawn_sidecar() -> Iterator[Callable[..., SidecarProcess]]:
    procs: list[SidecarProcess] = []

    def spawn(*args: str) -> SidecarProcess:
        proc = SidecarProcess(list(args))
        procs.append(proc)
        return proc

    yield spawn
    for p in procs:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Tests marked control_databases run once per control-plane backend.
    if "control_db" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "control_databases"
    ):
        metafunc.parametrize("control_db", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def postgres_session() -> Iterator[PostgresServer]:
    """One real PostgreSQL cluster for the session, on a free loopback port."""
    server = postgres_or_skip()
    yield server
    server.remove()


@pytest.fixture
def postgres_server(postgres_session: PostgresServer) -> Iterator[PostgresServer]:
    """The session's PostgreSQL (started again if a test stopped it); the
    databases a test made are dropped after it."""
    if postgres_session.proc is None:
        postgres_session.start()
    yield postgres_session
    postgres_session.drop_created()


def new_postgres_db(server: PostgresServer) -> PostgresLocation:
    """A new empty database on ``server``, with the password to reach it."""
    location = parse_db_location(server.new_database())
    assert isinstance(location, PostgresLocation)
    return PostgresLocation(
        location.host, location.port, location.database, location.user, password=PASSWORD
    )


@pytest.fixture
def control_db(request: pytest.FixtureRequest, tmp_path: Path) -> ControlDb:
    """The control plane's database: ``tmp_path / "control.db"``, or a new
    PostgreSQL database in tests marked ``control_databases``."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return new_postgres_db(request.getfixturevalue("postgres_server"))
    return tmp_path / "control.db"


@pytest.fixture
async def control_plane(control_db: ControlDb) -> AsyncIterator[ControlPlaneHarness]:
    """A running control plane (uvicorn in this loop, on an ephemeral port)
    on ``control_db``, with an API key."""
    harness = ControlPlaneHarness(control_db)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


@pytest.fixture
async def client(control_plane: ControlPlaneHarness) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for the control plane's /api/v1 with the API key set."""
    async with control_plane.client() as c:
        yield c


@pytest.fixture(scope="session")
def redis_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session, on a free loopback port."""
    server = redis_or_skip(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_server(redis_session: RedisServer) -> RedisServer:
    """The session's Redis, emptied (and started again if a test stopped it)."""
    if redis_session.proc is None:
        redis_session.start()
    redis_session.flush()
    return redis_session
