"""A loading thread that gives way to the event loop.

Reading and compiling a large snapshot is Python code in a thread beside the
event loop that serves decisions; both need the GIL, so for as long as a
load runs, decisions get about half of the interpreter. The engine calls a
``pace`` function between items; :class:`Pacer` makes the thread sleep
(without the GIL) after each slice of work, so that a load takes at most a
share of the time and decisions keep the rest: a tenth while the load is
young, half once it has taken two seconds (a large YAML document spends
most of that in its worker process), and the whole after 3.5 seconds, so
that a new revision is in force within a few seconds whatever the load.
The share is small because a slice costs decisions more than its length:
while both threads want the GIL, every system call of the event loop hands
it over and waits for the switch interval to get it back.

A slice is measured in the loading thread's own CPU time, not the wall
clock: the waits between the steps of a load (a hop to a worker thread, the
event loop's turn, the holder's lock) are not work, and counting them made
even a tiny document (a pause) sleep a whole pause of 18 ms on its first
call."""

from __future__ import annotations

import threading
import time

__all__ = ["Pacer"]

_SLICE = 0.002  # seconds of work between sleeps
# (seconds since the document came, share of the time loading may take)
_SCHEDULE = ((2.0, 0.1), (3.5, 0.5))


class Pacer:
    """Called between items of work; sleeps once a slice has run. ``since``
    is when the document came (``time.perf_counter``); ``share`` overrides
    the schedule."""

    __slots__ = ("_share", "_since", "_thread", "_until")

    def __init__(self, since: float | None = None, *, share: float | None = None) -> None:
        self._since = time.perf_counter() if since is None else since
        self._share = share
        self._thread: int | None = None
        self._until = 0.0  # in the CPU time of self._thread

    def __call__(self) -> None:
        used = time.thread_time()
        thread = threading.get_ident()
        if thread != self._thread:
            # The first call in this thread: CPU times of threads do not
            # compare, so its first slice starts now.
            self._thread, self._until = thread, used + _SLICE
            return
        if used < self._until:
            return
        elapsed = time.perf_counter() - self._since
        share = self._share if self._share is not None else _share_after(elapsed)
        if share < 1.0:
            time.sleep(_SLICE * (1 - share) / share)
        self._until = time.thread_time() + _SLICE


def _share_after(elapsed: float) -> float:
    for until, share in _SCHEDULE:
        if elapsed < until:
            return share
    return 1.0
