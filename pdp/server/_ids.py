"""The ids the sidecar makes up: each decision's, and a request's when its
caller sent none (it keys the call's reservation).

Unique, not unguessable, and in the order they are made: a process start
time in milliseconds, 48 random bits, then a counter, as 32 hex digits. The
state database keeps reservations and usage by request id; ids that grow
are appended at the end of its index, where random ones would each dirty a
page of their own and write it to the write-ahead log again. A restarted
sidecar's ids sort after the last one's (unless the clock was set back); a
forked child (``pdp serve --workers``) draws a prefix of its own.
"""

from __future__ import annotations

import itertools
import os
import random
import time

__all__ = ["new_id"]

_COUNTER_LIMIT = 1 << 32  # 8 hex digits


class _Ids:
    __slots__ = ("_count", "_prefix", "_random")

    def __init__(self) -> None:
        self._random = random.Random()
        self._prefix = ""
        self._count = itertools.count()
        self.reset()

    def reset(self) -> None:
        self._random.seed(os.urandom(32))
        millis = time.time_ns() // 1_000_000
        self._prefix = f"{millis:012x}{self._random.getrandbits(48):012x}"
        self._count = itertools.count()

    def new(self) -> str:
        n = next(self._count)
        if n >= _COUNTER_LIMIT:
            self.reset()
            n = next(self._count)
        return f"{self._prefix}{n:08x}"


_ids = _Ids()
os.register_at_fork(after_in_child=_ids.reset)
new_id = _ids.new
