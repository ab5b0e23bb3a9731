"""One sidecar per state file: an OS lock (``flock``) on a lock file next
to the SQLite database, ``<database>.lock``, held for the sidecar's life.

A second ``pdp serve`` pointed at a file in use would otherwise serve with
its own view of budgets and counters and overwrite the other's last good
snapshot. The lock is on a separate file, not on the database, so tools
that open the database beside a running sidecar (``pdp approvals``) are not
refused, and SQLite's own locks are left alone. The kernel drops the lock
when the process ends, however it ends: a kill -9 leaves nothing to clean.

``pdp serve --workers N`` takes the lock once in the supervisor; its
workers share the file by design and do not take it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from ._errors import StateError

__all__ = ["StateFileLock", "StateInUseError", "lock_state_file"]


class StateInUseError(StateError):
    """Another process holds the state file's lock."""


class StateFileLock:
    """A held lock; :meth:`release` it (or end the process)."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def lock_state_file(database: str) -> StateFileLock | None:
    """Locks ``database`` for this process; None for an in-memory database.
    Raises StateInUseError naming the file (and the holder's pid when it
    wrote one) when another process holds it, StateError when the lock
    file cannot be made."""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return None
    path = f"{database}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StateError(f"cannot create the state lock file {path!r}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _read_pid(fd)
        os.close(fd)
        by = f" (by process {holder})" if holder else ""
        raise StateInUseError(
            f"the state file {database!r} is in use by another sidecar: its lock file "
            f"{path!r} is held{by}. Run one `pdp serve` per state file (give this one its "
            "own --state), or one `pdp serve --workers N` for several processes."
        ) from None
    with contextlib.suppress(OSError):  # the pid is only for the message above
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return StateFileLock(path, fd)


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
