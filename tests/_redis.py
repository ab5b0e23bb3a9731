"""A real ``redis-server`` for the tests: started on a free loopback port in
a temporary directory, with its append-only file so that a restart keeps
what was written (as a production server does).

In CI (``CI`` set) a server that cannot start fails the tests that need
it; elsewhere they are skipped with the reason."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

__all__ = ["RedisServer", "redis_or_skip"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process; :meth:`stop` and :meth:`start` again keep
    its data (append-only file, fsync on every write)."""

    def __init__(
        self, directory: Path, password: str | None = None, tls: tuple[Path, Path] | None = None
    ) -> None:
        """``tls``: the server's certificate chain and key files (PEM): it
        then listens with TLS only."""
        self.directory = directory
        self.port = _free_port()
        self.password = password
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        args = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        if self.password is not None:
            args += ["--requirepass", self.password]
        if self.tls is not None:
            chain, key = self.tls
            args[args.index("--port") + 1] = "0"
            args += ["--tls-port", str(self.port), "--tls-cert-file", str(chain)]
            args += ["--tls-key-file", str(key), "--tls-auth-clients", "no"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    if self.tls is not None:
                        return  # it accepts: the TLS handshake is the client's to make
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64):
                        return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within 10 s")

    def stop(self) -> None:
        """Kills the server (SIGKILL: what it wrote is in its append-only file)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def flush(self) -> None:
        args = ["redis-cli", "-p", str(self.port), "FLUSHALL"]
        env = {**os.environ}
        if self.password is not None:
            env["REDISCLI_AUTH"] = self.password
        subprocess.run(args, check=True, capture_output=True, env=env, timeout=10)


def redis_or_skip(
    directory: Path, password: str | None = None, tls: tuple[Path, Path] | None = None
) -> RedisServer:
    """A started server; in CI a failure to start fails, elsewhere it skips."""
    server = RedisServer(directory, password, tls)
    try:
        server.start()
    except RuntimeError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is needed in CI and could not start: {exc}")
        pytest.skip(f"no Redis server here ({exc}); CI installs redis-server")
    return server
