"""The garbage collector around loading a snapshot.

Reading and compiling a large document allocates millions of objects; the
collections they trigger scan the whole heap (the active snapshot included)
and, holding the GIL, stall the event loop that serves decisions. Loading
pauses automatic collection, and once a snapshot is active, what survives
is frozen (``gc.freeze``) so later collections skip it. A compiled snapshot
holds no reference cycles, so a replaced one is freed by reference
counting, frozen or not."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collection_paused", "freeze_survivors"]

_lock = threading.Lock()
_paused = 0  # loads in progress (a shadow snapshot may load beside the active one)
_was_enabled = False


@contextmanager
def collection_paused() -> Iterator[None]:
    """Automatic collection off while the block runs (nested and concurrent
    uses count); restored as it was when the last one ends."""
    global _paused, _was_enabled
    with _lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()


def freeze_survivors() -> None:
    """Moves every object alive now (the snapshot just activated) out of the
    collector's reach."""
    gc.freeze()
