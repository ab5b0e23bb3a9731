"""A snapshot file, watched by polling its identity.

Polling ``stat`` (following symlinks) sees every way a file is replaced: an
in-place write, an editor's atomic rename, and a Kubernetes ConfigMap update,
which swaps the ``..data`` symlink to a new directory. Only a regular file
is read (a FIFO or a device is refused), and never more than one byte past
the sidecars' document limit, so that an oversized file is rejected naming
the limit without being read whole."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from pdp.engine import MAX_DOCUMENT_BYTES

from ._files import read_regular_file
from ._source import NewDocument, NoChange, Report, Unreachable, Update

__all__ = ["FileSource"]

log = logging.getLogger("pdp.snapshot")

_Identity = tuple[str, int, int, int, int]


def _identity(path: Path) -> _Identity:
    st = os.stat(path)
    return (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class FileSource:
    """Reads the file when its identity changes; an unchanged file is a
    :class:`NoChange`, a missing or unreadable one an :class:`Unreachable`."""

    def __init__(self, path: str | os.PathLike[str], *, interval: float = 0.2) -> None:
        self.path = Path(path)
        self.interval = interval
        self._seen: _Identity | None = None

    @property
    def name(self) -> str:
        return str(self.path)

    async def fetch(self) -> Update:
        try:
            identity = _identity(self.path)
            if identity == self._seen:
                return NoChange(self.name)
            data = await asyncio.to_thread(read_regular_file, self.path, MAX_DOCUMENT_BYTES + 1)
        except OSError as exc:
            self._seen = None  # read it again whenever it is back
            return Unreachable(self.name, f"cannot read: {exc.strerror}")
        # Remember the identity only once read: a file replaced between stat
        # and read is seen again on the next poll.
        self._seen = identity
        return NewDocument(self.name, data)

    async def run(self, report: Report) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await report(await self.fetch())
            except Exception:  # a watcher that dies would freeze policies silently
                log.exception("polling %s failed", self.path)

    async def aclose(self) -> None:
        """Nothing to release."""
