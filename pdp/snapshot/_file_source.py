"""A snapshot file, watched by polling its identity.

Polling ``stat`` (following symlinks) sees every way a file is replaced: an
in-place write, an editor's atomic rename, and a Kubernetes ConfigMap update,
which swaps the ``..data`` symlink to a new directory."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from pdp.engine import FieldError

from ._holder import SnapshotHolder

__all__ = ["FileSource"]

log = logging.getLogger("pdp.snapshot")

_Identity = tuple[str, int, int, int, int]


def _identity(path: Path) -> _Identity:
    st = os.stat(path)
    return (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class FileSource:
    def __init__(
        self, path: str | os.PathLike[str], holder: SnapshotHolder, *, interval: float = 0.2
    ):
        self.path = Path(path)
        self.holder = holder
        self.interval = interval
        self._seen: _Identity | None = None

    @property
    def name(self) -> str:
        return str(self.path)

    async def poll(self) -> bool:
        """Offers the file if it changed since the last poll; True when a new
        snapshot became active."""
        try:
            identity = _identity(self.path)
        except OSError as exc:
            if self._seen != ("missing", 0, 0, 0, 0):
                self._seen = ("missing", 0, 0, 0, 0)
                self.holder.reject(self.name, (FieldError("", f"cannot read: {exc.strerror}"),))
            return False
        if identity == self._seen:
            self.holder.touch()
            return False
        try:
            data = await asyncio.to_thread(self.path.read_bytes)
        except OSError as exc:
            self.holder.reject(self.name, (FieldError("", f"cannot read: {exc.strerror}"),))
            return False
        # Remember the identity only once read: a file replaced between stat
        # and read is seen again on the next poll.
        self._seen = identity
        return await self.holder.offer(data, self.name)

    async def aclose(self) -> None:
        """Nothing to release; sources share this method."""

    async def run(self) -> None:
        """Polls until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.poll()
            except Exception:  # a watcher that dies would freeze policies silently
                log.exception("polling %s failed", self.path)
