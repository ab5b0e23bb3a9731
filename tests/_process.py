"""A `pdp` command as a child process, read until its log says where it
listens."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time

__all__ = ["PdpProcess"]


class PdpProcess:
    """``python -m pdp ARGS``; ``address`` is what follows "listening on" in
    its log (``listening`` narrows the match)."""

    def __init__(self, args: list[str], *, listening: str = r"listening on (\S+)") -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pdp", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self.address = self._wait_listening(re.compile(listening))

    def _wait_listening(self, pattern: re.Pattern[str], timeout: float = 30.0) -> str:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            match = pattern.search(line)
            if match:
                # Keep draining the log so the child never blocks on a full pipe.
                threading.Thread(target=self._drain, daemon=True).start()
                return match.group(1)
        self.kill()
        self.proc.stderr.close()
        raise RuntimeError(f"pdp {self.args[0]} did not start:\n" + "".join(self.log))

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:
            for line in self.proc.stderr:
                self.log.append(line)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Sends ``sig`` (SIGTERM by default) and returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=20)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
