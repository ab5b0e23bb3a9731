"""Fixtures for the client tests.

``sidecar`` runs the real ``pdp serve`` as a subprocess once per session, on
examples/policies.yaml. The silent servers accept connections and never
answer, to show that deadlines hold. ``connect`` builds the sync or the async
client, so one test covers both.
"""

from __future__ import annotations

import inspect
import socket
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from pdp_client import AsyncClient, Client

from tests._process import PdpProcess

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = REPO / "examples" / "policies.yaml"
STARTUP_TIMEOUT = 20.0

AnyClient = Client | AsyncClient
Connect = Callable[..., AnyClient]
T = TypeVar("T")


async def resolve(value: T | Awaitable[T]) -> T:
    """The result of a sync call, or of an async one once awaited."""
    if inspect.isawaitable(value):
        return cast(T, await value)
    return value


async def call(client: AnyClient, method: str, *args: Any, **kwargs: Any) -> Any:
    """``client.method(*args, **kwargs)``, awaited when the client is async."""
    return await resolve(getattr(client, method)(*args, **kwargs))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sidecar: runs against a real pdp sidecar subprocess (pytest -m sidecar)"
    )


@dataclass
class Sidecar:
    """A running ``pdp serve``; ``log`` collects its stderr lines."""

    target: str
    process: PdpProcess

    @property
    def log(self) -> list[str]:
        return self.process.log

    def stop(self) -> None:
        self.process.stop()


def run_pdp_serve(listen: str, state: Path, snapshot: Path = SNAPSHOT) -> Sidecar:
    """Starts ``pdp serve`` and waits for its "listening on" line; fails the
    tests (never skips them) when it does not come."""
    args = ["serve", "--snapshot", str(snapshot), "--listen", listen, "--state", str(state)]
    try:
        process = PdpProcess(args, timeout=STARTUP_TIMEOUT)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    return Sidecar(target=process.address, process=process)


@pytest.fixture(scope="session")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    state = tmp_path_factory.mktemp("sidecar") / "state.db"
    running = run_pdp_serve("127.0.0.1:0", state)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def unix_sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    # A socket path must stay under ~100 bytes, which a pytest tmp path may not.
    with tempfile.TemporaryDirectory(prefix="pdp-") as directory:
        state = tmp_path_factory.mktemp("unix-sidecar") / "state.db"
        running = run_pdp_serve(f"unix:{directory}/pdp.sock", state)
        yield running
        running.stop()


class SilentServer:
    """Accepts connections and never sends a byte: a sidecar that hangs."""

    def __init__(self, family: socket.AddressFamily, address: str | tuple[str, int]) -> None:
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.bind(address)
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)
        self._thread.start()
        bound = self._listener.getsockname()
        self.target = f"unix:{bound}" if family == socket.AF_UNIX else f"{bound[0]}:{bound[1]}"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(connection)

    @property
    def connections(self) -> int:
        return len(self._held)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        for connection in self._held:
            connection.close()
        self._listener.close()


@pytest.fixture
def silent_tcp() -> Iterator[SilentServer]:
    server = SilentServer(socket.AF_INET, ("127.0.0.1", 0))
    yield server
    server.close()


@pytest.fixture
def silent_unix() -> Iterator[SilentServer]:
    with tempfile.TemporaryDirectory(prefix="pdp-") as directory:
        server = SilentServer(socket.AF_UNIX, f"{directory}/silent.sock")
        yield server
        server.close()


@pytest.fixture
def refused_target() -> str:
    """A local port nothing listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"127.0.0.1:{port}"


@pytest.fixture(params=["sync", "async"])
async def connect(request: pytest.FixtureRequest) -> AsyncIterator[Connect]:
    """``connect(target, **options)`` builds a ``Client`` or an
    ``AsyncClient``, closed after the test."""
    made: list[AnyClient] = []

    def build(target: str, **options: Any) -> AnyClient:
        client: AnyClient = (
            Client(target, **options) if request.param == "sync" else AsyncClient(target, **options)
        )
        made.append(client)
        return client

    yield build
    for client in made:
        if isinstance(client, AsyncClient):
            await client.close()
        else:
            client.close()
