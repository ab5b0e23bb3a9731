"""The one launcher for child processes, in tests and in bench/:

- :class:`PdpProcess`: a ``pdp`` command that keeps running (``pdp serve``,
  ``pdp control``), read until its log says where it listens;
- :class:`PythonProcess`: any Python child, read until a line says it is
  ready;
- :func:`run_pdp` and :func:`run_python`: a command run to completion.

Children run this interpreter (``sys.executable``) unless told another
(``python`` and ``cwd``: a benchmark's baseline run by another checkout's
virtual environment, in that checkout), unbuffered, with their output
drained for their whole life so that a full pipe never stalls them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import IO

__all__ = ["PdpProcess", "PythonProcess", "run_pdp", "run_python"]

_ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


class PythonProcess:
    """``python ARGS`` as a child process; returns once a line of its
    ``stream`` ("stderr" or "stdout") matches ``ready`` (``.match``), or
    raises RuntimeError with what it wrote. ``log`` collects its stderr,
    ``output`` its stdout when that is the stream watched."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        ready: str,
        stream: str = "stderr",
        timeout: float = 30.0,
        what: str = "python",
        env: Mapping[str, str] | None = None,
        python: str | None = None,
        cwd: str | None = None,
    ) -> None:
        self.args = list(args)
        self.log: list[str] = []
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            [python or sys.executable, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env={**_ENV, **(env or {})},
            cwd=cwd,
        )
        pattern = re.compile(ready)
        self._ready = threading.Event()
        self._match: re.Match[str] | None = None
        self._pumps = [
            self._pump(self.proc.stderr, self.log, pattern if stream == "stderr" else None)
        ]
        if stream == "stdout":
            self._pumps.append(self._pump(self.proc.stdout, self.output, pattern))
        if not self._ready.wait(timeout) or self._match is None:
            self.kill()
            for pump in self._pumps:
                pump.join(timeout=5)
            raise RuntimeError(
                f"{what} did not start within {timeout:g}s (exit code {self.proc.returncode}):\n"
                + "".join(self.log + self.output)
            )
        self.match: re.Match[str] = self._match

    def _pump(
        self, stream: IO[str] | None, lines: list[str], pattern: re.Pattern[str] | None
    ) -> threading.Thread:
        def drain() -> None:
            assert stream is not None
            with stream:
                for line in stream:
                    lines.append(line)
                    if pattern is not None and self._match is None:
                        self._match = pattern.search(line)
                        if self._match is not None:
                            self._ready.set()
            self._ready.set()  # ended: whoever waits finds no match

        pump = threading.Thread(target=drain, daemon=True)
        pump.start()
        return pump

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Sends ``sig`` (SIGTERM by default) and returns the exit code; a
        child still running 20 s later is killed (and its code says so)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class PdpProcess(PythonProcess):
    """``python -m pdp ARGS``; ``address`` is what follows "listening on" in
    its log (``listening`` narrows the match)."""

    def __init__(
        self,
        args: list[str],
        *,
        listening: str = r"listening on (\S+)",
        timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
        python: str | None = None,
        cwd: str | None = None,
    ) -> None:
        super().__init__(
            ["-m", "pdp", *args],
            ready=listening,
            timeout=timeout,
            what=f"pdp {args[0]}",
            env=env,
            python=python,
            cwd=cwd,
        )
        self.address = self.match.group(1)


def run_python(
    *args: str, timeout: float = 60.0, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` to completion, its output captured, ``env`` added to
    the environment; never raises on a non-zero exit (the caller checks
    ``returncode``)."""
    return subprocess.run(
        [sys.executable, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**_ENV, **(env or {})},
    )


def run_pdp(
    *args: str, timeout: float = 60.0, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``pdp ARGS`` to completion (``pdp check``, ``pdp control create-key``)."""
    return run_python("-m", "pdp", *args, timeout=timeout, env=env)
