"""The active snapshot, its activation, and whether it may still serve.

Sources report what each attempt gave (:meth:`SnapshotHolder.report`); this
module validates and compiles the documents they bring (off the event loop)
and activates one with a single reference swap. A rejected document leaves
the active snapshot serving. With a maximum staleness, the holder also
decides, on its own clock, when silence from the source has lasted too long:
decisions then fail closed until the source answers again."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from pdp.engine import (
    Clock,
    CompiledSnapshot,
    FieldError,
    SnapshotError,
    SystemClock,
    compile_snapshot,
    parse_document,
)

from ._source import NewDocument, NoChange, NoDocument, Refused, Unreachable, Update

__all__ = ["Active", "Rejection", "SnapshotHolder"]

log = logging.getLogger("pdp.snapshot")


@dataclass(frozen=True, slots=True)
class Active:
    snapshot: CompiledSnapshot
    source: str
    activated_at: datetime


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why the source's latest document is not active: its field errors, or
    the source's refusal (one error with an empty path)."""

    source: str
    rejected_at: datetime
    errors: tuple[FieldError, ...]


OnActivate = Callable[[Active, bytes], Awaitable[None]]
OnServing = Callable[[bool], Awaitable[None]]


def _compile(data: bytes, allow_insecure_validators: bool) -> CompiledSnapshot:
    return compile_snapshot(
        parse_document(data), allow_insecure_validators=allow_insecure_validators
    )


class SnapshotHolder:
    """Holds the active snapshot. The hot path reads ``active`` (one attribute
    load) and ``stale``; activation replaces ``active`` whole.

    ``on_activate`` runs after each activation (to persist the document);
    ``on_serving`` runs whenever :attr:`serving` changes (to set health).
    ``allow_insecure_validators`` lets custom validators use plain http to
    a loopback address."""

    def __init__(
        self,
        *,
        on_activate: OnActivate | None = None,
        on_serving: OnServing | None = None,
        clock: Clock | None = None,
        max_staleness: float | None = None,
        allow_insecure_validators: bool = False,
    ) -> None:
        self.active: Active | None = None
        self.last_contact: datetime | None = None
        # Why the source's last attempt got no answer; None once it answers.
        self.unreachable: str | None = None
        self.max_staleness = max_staleness
        self._allow_insecure_validators = allow_insecure_validators
        self.rejections = 0  # documents rejected since start (metrics)
        self._on_activate = on_activate
        self._on_serving = on_serving
        clock = clock or SystemClock()
        self._clock: Callable[[], datetime] = clock
        # Silence is a duration: measured on the monotonic clock, so that a
        # step of the wall clock neither fakes nor hides it.
        self._monotonic = clock.monotonic
        self._limit = max_staleness
        self._last_contact_at: float | None = None
        # Silence from here on is counted from the start.
        self._stale_at = None if max_staleness is None else self._monotonic() + max_staleness
        self._source = ""
        self._active_digest = ""
        self._rejection: Rejection | None = None
        self._rejected_digest = ""
        self._refusal: Rejection | None = None
        self._serving: bool | None = None  # as last notified
        self._was_stale = False
        self._lock = asyncio.Lock()
        self._serving_lock = asyncio.Lock()
        self._changed = asyncio.Event()

    @property
    def ready(self) -> bool:
        return self.active is not None

    @property
    def stale(self) -> bool:
        """True once the source has not answered for longer than the maximum
        staleness: decisions fail closed. Read on every decision, so it costs
        one clock reading with a limit and nothing without."""
        stale_at = self._stale_at
        return stale_at is not None and self._monotonic() > stale_at

    def silence(self) -> float | None:
        """Seconds since the source last answered; None before it ever did."""
        at = self._last_contact_at
        return None if at is None else self._monotonic() - at

    @property
    def serving(self) -> bool:
        """A snapshot is active and not stale."""
        return self.active is not None and not self.stale

    @property
    def last_rejection(self) -> Rejection | None:
        """The source's refusal if it refuses this sidecar, else why its
        latest document was rejected; None when neither."""
        return self._refusal or self._rejection

    async def wait_changed(self) -> None:
        """Returns after the next activation."""
        await self._changed.wait()

    async def report(self, update: Update) -> bool:
        """Takes what a source's attempt gave. True when a new snapshot
        became active."""
        self._source = update.source
        if isinstance(update, Unreachable):
            if self.unreachable is None:
                log.warning(
                    "snapshot source %s unreachable (%s); %s",
                    update.source,
                    update.reason,
                    self._serving_what(),
                )
            self.unreachable = update.reason
            await self.refresh()
            return False
        if self.unreachable is not None:
            log.info("snapshot source %s answers again", update.source)
            self.unreachable = None
        if isinstance(update, Refused):
            self._refuse(update)
            await self.refresh()
            return False
        self._contact()
        if isinstance(update, NoDocument):
            # An answer all the same: the active snapshot keeps serving.
            serving = self._serving_what()
            log.warning("snapshot source %s has no document (%s)", update.source, serving)
            await self.refresh()
            return False
        self._refusal = None
        activated = False
        if isinstance(update, NewDocument):
            activated = await self._activate(update.data, update.source, clear_rejection=True)
        else:
            assert isinstance(update, NoChange)
        await self.refresh()
        return activated

    async def restore(self, data: bytes, source: str) -> bool:
        """Activates a persisted last good document while the source has
        none that compiles; why the source's document was rejected stays
        visible next to it."""
        activated = await self._activate(data, source, clear_rejection=False)
        await self.refresh()
        return activated

    async def refresh(self) -> bool:
        """Re-evaluates :attr:`serving` on the holder's clock, and notifies
        ``on_serving`` when it changed. Returns it."""
        async with self._serving_lock:
            stale = self.stale
            if stale != self._was_stale:
                self._was_stale = stale
                if stale:
                    log.error(
                        "no answer from snapshot source %s for %gs: failing closed",
                        self._source,
                        self.max_staleness,
                    )
                else:
                    log.info("snapshot source %s answers again: serving", self._source)
            serving = self.active is not None and not stale
            if serving != self._serving:
                self._serving = serving
                if self._on_serving is not None:
                    await self._on_serving(serving)
        return serving

    async def watch_staleness(self) -> None:
        """Until cancelled, re-evaluates staleness a few times within the
        limit, so that ``on_serving`` hears of it without a decision being
        asked. Returns at once when there is no limit."""
        if self.max_staleness is None:
            return
        interval = min(0.25, self.max_staleness / 4)
        while True:
            await asyncio.sleep(interval)
            await self.refresh()

    def _contact(self) -> None:
        self.last_contact = self._clock()
        at = self._last_contact_at = self._monotonic()
        if self._limit is not None:
            self._stale_at = at + self._limit

    async def _activate(self, data: bytes, source: str, *, clear_rejection: bool) -> bool:
        digest = hashlib.sha256(data).hexdigest()
        async with self._lock:
            if digest in (self._active_digest, self._rejected_digest):
                return False
            try:
                snapshot = await asyncio.to_thread(_compile, data, self._allow_insecure_validators)
            except SnapshotError as exc:
                self._reject(source, exc.errors, digest)
                return False
            active = Active(snapshot, source, self._clock())
            self.active, self._active_digest = active, digest
            if clear_rejection:
                self._rejection, self._rejected_digest = None, ""
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

    def _reject(self, source: str, errors: tuple[FieldError, ...], digest: str) -> None:
        self._rejection = Rejection(source, self._clock(), errors)
        self._rejected_digest = digest
        self.rejections += 1
        log.error(
            "snapshot from %s rejected (%s): %s",
            source,
            self._serving_what(),
            "; ".join(str(e) for e in errors) or "unknown error",
        )

    def _refuse(self, update: Refused) -> None:
        errors = (FieldError("", update.reason),)
        if self._refusal is not None and self._refusal.errors == errors:
            return  # said once, not on every retry
        self._refusal = Rejection(update.source, self._clock(), errors)
        log.error("snapshot source %s refuses this sidecar (%s)", update.source, update.reason)

    def _serving_what(self) -> str:
        if self.active is None:
            return "no snapshot is active yet"
        return f"revision {self.active.snapshot.revision} keeps serving"
