"""A real PostgreSQL server for the tests: a private cluster (``initdb``)
on a free loopback port, started with the binaries of Debian's
``postgresql`` package (/usr/lib/postgresql/*/bin).

PostgreSQL refuses to run as root: as root, the cluster belongs to the
``postgres`` user (the package creates it) and its processes run as that
user; otherwise as the current user. Passwords are required (scram-sha-256)
so that a wrong one is refused as in production.

In CI (``CI`` set) a server that cannot start fails the tests that need it;
elsewhere they are skipped with the reason."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

__all__ = ["PASSWORD", "USER", "PostgresServer", "postgres_or_skip"]

USER = "pdp"
PASSWORD = "pdp-test-password"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed (apt-get install postgresql): "
            "no /usr/lib/postgresql/*/bin/initdb"
        )
    return Path(found[-1]).parent


class PostgresServer:
    """One private cluster; :meth:`stop` (SIGKILL to the postmaster, or a
    fast shutdown) and :meth:`start` again keep its data."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.created: list[str] = []
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root needs the 'postgres' user (the postgresql package "
                    "creates it): PostgreSQL refuses to run as root"
                ) from None
            self._as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        # Under /tmp (not pytest's root-only temporary folder): as root, the
        # cluster's owner must be able to reach it.
        self.directory = Path(tempfile.mkdtemp(prefix="pdp-postgres-"))
        self.data = self.directory / "data"
        if self._as:
            os.chown(self.directory, self._as["user"], self._as["group"])
        self._init()

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            args, capture_output=True, text=True, timeout=120, cwd=self.directory, **self._as
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stderr.strip()[-2000:]}")

    def _init(self) -> None:
        pwfile = self.directory / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as:
            os.chown(pwfile, self._as["user"], self._as["group"])
        self._run(
            str(self.bin / "initdb"),
            "-D", str(self.data),
            "-U", USER,
            "--pwfile", str(pwfile),
            "--auth", "scram-sha-256",
            "-E", "UTF8",
            "--locale", "C",
            "--no-sync",
        )  # fmt: skip
        pwfile.unlink()

    @property
    def dsn_base(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}"

    def url(self, database: str) -> str:
        return f"{self.dsn_base}/{database}"

    def start(self) -> None:
        args = [
            str(self.bin / "postgres"),
            "-D", str(self.data),
            "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={self.directory}",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ]  # fmt: skip
        log = open(self.directory / "postgres.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, **self._as
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                text = (self.directory / "postgres.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n{text}")
            result = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                timeout=10,
            )
            if result.returncode == 0:
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"postgres did not answer on port {self.port} within 30 s")

    def stop(self, *, kill: bool = False) -> None:
        """A fast shutdown (SIGINT), or SIGKILL with ``kill``: the server
        recovers from its write-ahead log at the next start."""
        if kill and self.proc is not None and self.proc.poll() is None:
            # Each CREATE DATABASE logs a copy of the template: without a
            # checkpoint first, the next start replays every database a long
            # session made, which is the suite's history, not the test's.
            self.psql("CHECKPOINT")
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.send_signal(2)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if kill:
            # The postmaster's children notice it is gone and exit; wait for
            # them so that the next start finds the shared memory free.
            pid_file = self.data / "postmaster.pid"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self._port_open():
                time.sleep(0.05)
            if pid_file.exists():
                pid_file.unlink(missing_ok=True)

    def _port_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def psql(self, sql: str, database: str = "postgres") -> str:
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        result = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER,
             "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def new_database(self) -> str:
        """A new empty database; returns its URL (no password in it)."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.psql(f"CREATE DATABASE {name}")
        self.created.append(name)
        return self.url(name)

    def drop_created(self) -> None:
        """Drops the databases made since the last call (their connections
        closed by force): the cluster stays small over a long session."""
        names, self.created = self.created, []
        if self.proc is None:
            return
        for name in names:
            self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def postgres_or_skip() -> PostgresServer:
    """A started server; in CI a failure to start fails, elsewhere it skips."""
    try:
        server = PostgresServer()
        server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is needed in CI and could not start: {exc}")
        pytest.skip(f"no PostgreSQL here ({exc}); CI installs postgresql")
    return server
