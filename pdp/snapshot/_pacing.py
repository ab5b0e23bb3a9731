"""A loading thread that gives way to the event loop.

Reading and compiling a large snapshot is Python code in a thread beside the
event loop that serves decisions; both need the GIL, so for as long as a
load runs, decisions get about half of the interpreter. The engine calls a
``pace`` function between items; :class:`Pacer` makes the thread sleep
(without the GIL) after each slice of work, so that loading takes at most
``share`` of the time and decisions keep the rest. A load takes longer by
the same factor, well within what a new revision may take to be in force."""

from __future__ import annotations

import time

__all__ = ["LOADING_SHARE", "Pacer"]

# The share of wall time a load may take: a 10,000-policy reload (a few
# tenths of a second of work on a quiet core) is in force within ~1.5 s.
LOADING_SHARE = 0.25
_SLICE = 0.002  # seconds of work between sleeps


class Pacer:
    """Called between items of work; sleeps once a slice has run."""

    __slots__ = ("_pause", "_until")

    def __init__(self, share: float = LOADING_SHARE) -> None:
        self._pause = _SLICE * (1 - share) / share
        self._until = time.perf_counter() + _SLICE

    def __call__(self) -> None:
        if time.perf_counter() < self._until:
            return
        time.sleep(self._pause)
        self._until = time.perf_counter() + _SLICE
