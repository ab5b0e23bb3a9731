"""The active snapshot and its activation.

Fetching a document is the sources' job; this module validates and compiles
what they offer (off the event loop) and activates it with one reference
swap. A rejected document leaves the active snapshot serving."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pdp.engine import CompiledSnapshot, FieldError, SnapshotError, compile_snapshot, parse_document

__all__ = ["Active", "Rejection", "SnapshotHolder"]

log = logging.getLogger("pdp.snapshot")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Active:
    snapshot: CompiledSnapshot
    source: str
    activated_at: datetime
    digest: str


@dataclass(frozen=True, slots=True)
class Rejection:
    source: str
    rejected_at: datetime
    errors: tuple[FieldError, ...]
    digest: str


OnActivate = Callable[[Active, bytes], Awaitable[None]]


def _compile(data: bytes) -> CompiledSnapshot:
    return compile_snapshot(parse_document(data))


class SnapshotHolder:
    """Holds the active snapshot. The hot path reads ``active`` (one attribute
    load); activation replaces it whole."""

    def __init__(
        self,
        *,
        on_activate: OnActivate | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.active: Active | None = None
        self.last_rejection: Rejection | None = None
        self.last_contact: datetime | None = None
        # Set while the source has been silent past the allowed staleness:
        # decisions then fail closed.
        self.stale = False
        self._on_activate = on_activate
        self._clock = clock
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    @property
    def ready(self) -> bool:
        return self.active is not None

    def touch(self) -> None:
        """Records that the source answered (for staleness), changed or not."""
        self.last_contact = self._clock()

    async def wait_changed(self) -> None:
        """Returns after the next activation."""
        await self._changed.wait()

    async def offer(self, data: bytes, source: str) -> bool:
        """Validates, compiles and activates ``data``. True when it became
        active; False when it was rejected or is what is already active."""
        digest = hashlib.sha256(data).hexdigest()
        self.touch()
        async with self._lock:
            if self.active is not None and self.active.digest == digest:
                return False
            if self.last_rejection is not None and self.last_rejection.digest == digest:
                return False
            try:
                snapshot = await asyncio.to_thread(_compile, data)
            except SnapshotError as exc:
                self.reject(source, exc.errors, digest)
                return False
            active = Active(snapshot, source, self._clock(), digest)
            self.active = active
            self.last_rejection = None
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()
        log.info(
            "snapshot revision %d from %s active: %d policies, %d agents",
            snapshot.revision,
            source,
            len(snapshot.policies),
            len({a.id for a in snapshot.agents.values()}),
        )
        if self._on_activate is not None:
            try:
                await self._on_activate(active, data)
            except Exception:  # persisting is best effort; serving goes on
                log.exception("could not persist the active snapshot")
        return True

    def reject(self, source: str, errors: tuple[FieldError, ...], digest: str = "") -> None:
        """Records a rejected document; the active snapshot keeps serving."""
        self.last_rejection = Rejection(source, self._clock(), errors, digest)
        serving = (
            f"revision {self.active.snapshot.revision} keeps serving"
            if self.active is not None
            else "no snapshot is active yet"
        )
        log.error(
            "snapshot from %s rejected (%s): %s",
            source,
            serving,
            "; ".join(str(e) for e in errors) or "unknown error",
        )
