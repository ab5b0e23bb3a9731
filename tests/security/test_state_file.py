"""One sidecar per state file: a second ``pdp serve`` pointed at a state file
in use fails at start, naming the file, instead of serving beside the first
and overwriting its last good snapshot. ``pdp serve --workers N`` (workers
sharing one file by design) still starts, and its file is protected too."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from pdp.server import ServeOptions, Sidecar
from pdp.state import StateInUseError
from tests._process import run_pdp
from tests._redis import RedisServer
from tests.conftest import EXAMPLE_SNAPSHOT, SidecarProcess, StartSidecar


def _second_serve(*args: str) -> tuple[int, str]:
    """``pdp serve ARGS`` that is expected to stop at once."""
    result = run_pdp("serve", "--snapshot", str(EXAMPLE_SNAPSHOT), "--listen", "127.0.0.1:0", *args)
    return result.returncode, result.stderr


def _last_good_revision(state: Path) -> int | None:
    with sqlite3.connect(state) as connection:
        row = connection.execute("SELECT revision FROM last_good_snapshot").fetchone()
    return None if row is None else int(row[0])


async def test_a_second_sidecar_on_a_state_file_in_use_fails_at_start(
    spawn_sidecar: Callable[..., SidecarProcess], tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    first = spawn_sidecar(
        "--snapshot", str(EXAMPLE_SNAPSHOT), "--listen", "127.0.0.1:0", "--state", str(state)
    )
    code, log = _second_serve("--state", str(state))
    assert code == 1, log
    assert f"the state file {str(state)!r} is in use by another sidecar" in log
    assert f"(by process {first.proc.pid})" in log
    assert first.proc.poll() is None  # the first keeps serving
    assert first.stop() == 0
    # Free again once the first has stopped (and after a kill -9: the kernel
    # drops the lock with the process).
    again = spawn_sidecar(
        "--snapshot", str(EXAMPLE_SNAPSHOT), "--listen", "127.0.0.1:0", "--state", str(state)
    )
    again.kill()
    third = spawn_sidecar(
        "--snapshot", str(EXAMPLE_SNAPSHOT), "--listen", "127.0.0.1:0", "--state", str(state)
    )
    assert third.stop() == 0


async def test_the_refused_sidecar_leaves_the_other_s_state_alone(
    start_sidecar: StartSidecar, tmp_path: Path
) -> None:
    running = await start_sidecar(EXAMPLE_SNAPSHOT.read_text())
    state = Path(running.state_path)
    await running.wait_for(lambda: _has_last_good(state))
    before = _last_good_revision(state)
    other = tmp_path / "other.yaml"
    other.write_text("revision: 99\npolicies: []\n")
    with pytest.raises(StateInUseError, match="in use by another sidecar"):
        await Sidecar(
            ServeOptions(snapshot=str(other), listen="127.0.0.1:0", state=str(state))
        ).start()
    assert _last_good_revision(state) == before != 99


def _has_last_good(state: Path | str) -> bool:
    try:
        return _last_good_revision(Path(state)) is not None
    except sqlite3.Error:
        return False


async def test_workers_share_their_file_and_keep_other_sidecars_off_it(
    spawn_sidecar: Callable[..., SidecarProcess], redis_server: RedisServer, tmp_path: Path
) -> None:
    local = tmp_path / "local.db"
    workers = spawn_sidecar(
        "--snapshot", str(EXAMPLE_SNAPSHOT), "--listen", "127.0.0.1:0", "--workers", "2",
        "--state", redis_server.url, "--local-state", str(local),
    )  # fmt: skip
    code, log = _second_serve("--state", redis_server.url, "--local-state", str(local))
    assert code == 1, log
    assert "is in use by another sidecar" in log
    # Another sidecar on the same Redis with its own local file is fine.
    beside = spawn_sidecar(
        "--snapshot", str(EXAMPLE_SNAPSHOT), "--listen", "127.0.0.1:0",
        "--state", redis_server.url, "--local-state", str(tmp_path / "beside.db"),
    )  # fmt: skip
    assert beside.stop() == 0
    assert workers.stop() == 0
