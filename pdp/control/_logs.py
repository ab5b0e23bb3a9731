"""Logging that a flood of bad requests cannot turn into a flood of log
lines: each kind of event (a fixed key chosen by the code, never by a
request) writes at most a few lines per window, and the next line written
after a quiet spell says how many were left out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimitFilter", "RateLimitedLog"]


class _Budget:
    """Lines written and left out per key, in windows of ``window`` seconds."""

    def __init__(self, burst: int, window: float, clock: Callable[[], float]) -> None:
        self.burst = burst
        self.window = window
        self._clock = clock
        # key -> (window start, lines written in it, lines left out since the last written)
        self._counts: dict[str, tuple[float, int, int]] = {}

    def take(self, key: str) -> int | None:
        """None: leave this line out. Otherwise how many were left out
        before it (to say so)."""
        now = self._clock()
        start, written, left_out = self._counts.get(key, (now, 0, 0))
        if now - start >= self.window:
            start, written = now, 0
        if written >= self.burst:
            self._counts[key] = (start, written, left_out + 1)
            return None
        self._counts[key] = (start, written + 1, 0)
        return left_out


def _left_out(count: int) -> str:
    return f" ({count} more like this left out of the log)" if count else ""


class RateLimitFilter(logging.Filter):
    """A filter for another library's logger: at most ``burst`` records with
    the same message template every ``window`` seconds."""

    def __init__(
        self, *, burst: int = 5, window: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._budget = _Budget(burst, window, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        left_out = self._budget.take(f"{record.name}:{record.msg}")
        if left_out is None:
            return False
        if left_out:
            record.msg = f"{record.msg}{_left_out(left_out)}"
        return True


class RateLimitedLog:
    """``log.warning(key, message, *args)``: like the logger's, at most
    ``burst`` lines per ``key`` every ``window`` seconds."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 5,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self._budget = _Budget(burst, window, clock)

    def debug(self, key: str, message: str, *args: object) -> None:
        self._log(logging.DEBUG, key, message, args)

    def info(self, key: str, message: str, *args: object) -> None:
        self._log(logging.INFO, key, message, args)

    def warning(self, key: str, message: str, *args: object) -> None:
        self._log(logging.WARNING, key, message, args)

    def error(self, key: str, message: str, *args: object) -> None:
        self._log(logging.ERROR, key, message, args)

    def _log(self, level: int, key: str, message: str, args: tuple[object, ...]) -> None:
        if not self.logger.isEnabledFor(level):
            return
        left_out = self._budget.take(key)
        if left_out is not None:
            self.logger.log(level, message + _left_out(left_out), *args)
