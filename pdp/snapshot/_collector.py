"""The garbage collector and thread switching around loading a snapshot.

Reading and compiling a large document allocates millions of objects; the
collections they trigger scan the whole heap (the active snapshot included)
and, holding the GIL, stall the event loop that serves decisions. Loading
pauses automatic collection, and once a snapshot is active, what survives
is frozen (``gc.freeze``) so later collections skip it. A compiled snapshot
holds no reference cycles, so a replaced one is freed by reference
counting, frozen or not.

Loading runs in a thread beside the event loop. Python hands the GIL to a
waiting thread only after the switch interval (5 ms by default), and the
event loop gives the GIL up at every system call, so while a load runs each
of a decision's hand-offs could wait that long. Loading shortens the
interval, so that the loop gets the GIL back within a fraction of a
millisecond, and restores it after."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collection_paused", "freeze_survivors"]

_lock = threading.Lock()
_paused = 0  # loads in progress (a shadow snapshot may load beside the active one)
_was_enabled = False
_was_interval = 0.005
# Short enough that a decision's hand-offs barely wait, long enough that the
# loading thread still makes progress between them.
LOADING_SWITCH_INTERVAL = 0.0002


@contextmanager
def collection_paused() -> Iterator[None]:
    """Automatic collection off and the short switch interval while the
    block runs (nested and concurrent uses count); both restored as they
    were when the last one ends."""
    global _paused, _was_enabled, _was_interval
    with _lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
            _was_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_was_interval, LOADING_SWITCH_INTERVAL))
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0:
                sys.setswitchinterval(_was_interval)
                if _was_enabled:
                    gc.enable()


def freeze_survivors() -> None:
    """Moves every object alive now (the snapshot just activated) out of the
    collector's reach."""
    gc.freeze()
