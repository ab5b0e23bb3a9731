"""The active snapshot, its activation, and whether it may still serve.

Sources report what each attempt gave (:meth:`SnapshotHolder.report`); this
module validates and compiles the documents they bring (off the event loop)
and activates one with a single reference swap. A rejected document leaves
the active snapshot serving. With a maximum staleness, the holder also
decides, on its own clock, when the active snapshot has been out of date for
too long: decisions then fail closed until it is current again.

The kill switch does not wait for a compile. A new document's agents are
read first: when nothing else changed (a pause or a resume), their pause
state laid over the active snapshot is the new snapshot; otherwise that
overlay is activated at once and the whole document compiles after it, and
if it is rejected the overlay stays: pauses in a document whose policies
are broken still hold."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from pdp.engine import (
    NO_ITEMS,
    Clock,
    CompiledSnapshot,
    FieldError,
    PauseState,
    SnapshotError,
    SystemClock,
    compile_snapshot,
    differs_only_in_pause_state,
    read_pause_state,
    with_pause_state,
)

from ._collector import collection_paused, freeze_survivors
from ._pacing import Pacer
from ._reading import read_document
from ._source import NewDocument, NoChange, NoDocument, Refused, Unreachable, Update

__all__ = ["Active", "Rejection", "SnapshotHolder"]

log = logging.getLogger("pdp.snapshot")


@dataclass(frozen=True, slots=True)
class Active:
    """The snapshot that decides. ``pause_revision`` is the revision of the
    document whose pause state it holds: newer than ``snapshot.revision``
    when a newer document's pauses are laid over it (the rest of that
    document is still compiling, or was rejected)."""

    snapshot: CompiledSnapshot
    source: str
    activated_at: datetime
    pause_revision: int = -1

    def __post_init__(self) -> None:
        if self.pause_revision < 0:
            object.__setattr__(self, "pause_revision", self.snapshot.revision)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why the source's latest document is not active: its field errors, or
    the source's refusal (one error with an empty path). ``revision`` is
    the rejected document's, when it could be read."""

    source: str
    rejected_at: datetime
    errors: tuple[FieldError, ...]
    revision: int | None = None


OnActivate = Callable[[Active, bytes], Awaitable[None]]
OnServing = Callable[[bool], Awaitable[None]]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pause_state(document: Mapping[str, object]) -> PauseState | None:
    """The document's pause state; None when its agents or its revision
    cannot be read."""
    try:
        return read_pause_state(document)
    except SnapshotError:
        return None


class SnapshotHolder:
    """Holds the active snapshot. The hot path reads ``active`` (one attribute
    load) and ``stale``; activation replaces ``active`` whole.

    ``on_activate`` runs after each activation (to persist the document;
    what takes long should not make the next activation wait);
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
        # When the source last answered. Staleness counts from the last
        # answer that left the active snapshot current, so a sidecar whose
        # newer documents are rejected goes stale.
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
        # The active document's list items by their text: the next document
        # takes these objects for the items it did not change, and the
        # compile reuses what it read from them.
        self._items: Mapping[str, object] = NO_ITEMS
        self._rejection: Rejection | None = None
        self._rejected_digest = ""
        self._rejected_pause: PauseState | None = None
        self._overlaid = False  # a newer document's pauses are laid over the active one
        self._refusal: Rejection | None = None
        self._serving: bool | None = None  # as last notified
        self._was_stale = False
        self._lock = asyncio.Lock()
        self._serving_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._waiting = 0

    @property
    def ready(self) -> bool:
        return self.active is not None

    @property
    def stale(self) -> bool:
        """True once the active snapshot has not been the source's latest for
        longer than the maximum staleness (no answer, or answers whose
        documents are rejected): decisions fail closed. Read on every
        decision, so it costs one clock reading with a limit and nothing
        without."""
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

    def why_stale(self) -> str:
        """What makes the active snapshot stale, for the error callers get."""
        rejection = self._rejection
        if rejection is not None:
            what = (
                "its latest document"
                if rejection.revision is None
                else (f"revision {rejection.revision}")
            )
            errors = "; ".join(str(e) for e in rejection.errors[:3]) or "unknown error"
            return f"{what} from {rejection.source} was rejected: {errors}"
        return f"no answer from {self._source} since {self.last_contact}"

    async def wait_changed(self) -> None:
        """Returns after the next activation."""
        self._waiting += 1
        try:
            await self._changed.wait()
        finally:
            self._waiting -= 1

    @property
    def waiting(self) -> int:
        """Tasks waiting for the next activation: the sidecar's own, and
        one per open WatchAgentStatus call."""
        return self._waiting

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
        if isinstance(update, NoDocument):
            # An answer all the same: the active snapshot keeps serving.
            self._contact()
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
        self._contact()
        await self.refresh()
        return activated

    async def restore(self, data: bytes, source: str) -> bool:
        """Activates a persisted last good document while the source has
        none that compiles; why the source's document was rejected stays
        visible next to it."""
        activated = await self._activate(data, source, clear_rejection=False)
        pause, active = self._rejected_pause, self.active
        if activated and pause is not None and active is not None:
            # The rejected document's pauses hold over the restored one.
            self._lay_over(active, pause)
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
                        "snapshot out of date for %gs (%s): failing closed",
                        self.max_staleness,
                        self.why_stale(),
                    )
                else:
                    log.info("snapshot from %s is current again: serving", self._source)
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
        if self._rejection is not None:
            return  # answers that bring a rejected document are no fresher
        if self._limit is not None:
            self._stale_at = at + self._limit

    async def _activate(self, data: bytes, source: str, *, clear_rejection: bool) -> bool:
        # Loading gives way to the decisions the active snapshot serves; with
        # none active (start-up) there are none to give way to.
        pace = Pacer() if self.active is not None else Pacer(share=1.0)
        digest = await asyncio.to_thread(_digest, data)
        async with self._lock:
            with collection_paused():
                activated = await self._read_and_compile(
                    data, digest, source, clear_rejection, pace
                )
                if activated:
                    # Before collection resumes: its first pass would
                    # otherwise scan everything the load allocated.
                    freeze_survivors()
            return activated

    async def _read_and_compile(
        self, data: bytes, digest: str, source: str, clear_rejection: bool, pace: Pacer
    ) -> bool:
        # The active document again is news only when a rejected one (or
        # its pauses) came in between: the source went back to it.
        back = clear_rejection and (self._rejection is not None or self._overlaid)
        if digest == self._rejected_digest or (digest == self._active_digest and not back):
            return False
        try:
            document, items = await read_document(data, self._items, pace)
        except SnapshotError as exc:
            self._reject(source, exc.errors, digest, None)
            return False
        pause = await asyncio.to_thread(_pause_state, document)
        active = self.active
        if active is not None and pause is not None:
            old = active.snapshot.document
            if await asyncio.to_thread(differs_only_in_pause_state, old, document):
                snapshot = with_pause_state(
                    active.snapshot, pause, revision=pause.revision, document=document
                )
                return await self._swap(snapshot, data, digest, source, clear_rejection, items)
            self._lay_over(active, pause)
        try:
            snapshot = await asyncio.to_thread(
                compile_snapshot,
                document,
                allow_insecure_validators=self._allow_insecure_validators,
                reuse=None if active is None else active.snapshot,
                pace=pace,
            )
        except SnapshotError as exc:
            self._reject(source, exc.errors, digest, pause)
            return False
        return await self._swap(snapshot, data, digest, source, clear_rejection, items)

    def _lay_over(self, active: Active, pause: PauseState) -> None:
        """Activates ``pause``'s pause state over the active snapshot now,
        before the document it came with is compiled (or rejected)."""
        snapshot = with_pause_state(active.snapshot, pause)
        if snapshot.agents == active.snapshot.agents:
            return
        self.active = Active(snapshot, active.source, active.activated_at, pause.revision)
        self._overlaid = True
        self._notify_changed()
        log.info(
            "pause state of revision %d applied over revision %d while the rest compiles",
            pause.revision,
            snapshot.revision,
        )

    def _notify_changed(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _swap(
        self,
        snapshot: CompiledSnapshot,
        data: bytes,
        digest: str,
        source: str,
        clear_rejection: bool,
        items: Mapping[str, object],
    ) -> bool:
        active = Active(snapshot, source, self._clock())
        self.active, self._active_digest, self._overlaid = active, digest, False
        self._items = items
        if clear_rejection:
            self._rejection, self._rejected_digest, self._rejected_pause = None, "", None
            # The source's latest document is active again: fresh from now.
            if self._limit is not None:
                self._stale_at = self._monotonic() + self._limit
        self._notify_changed()
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

    def _reject(
        self, source: str, errors: tuple[FieldError, ...], digest: str, pause: PauseState | None
    ) -> None:
        revision = None if pause is None else pause.revision
        self._rejection = Rejection(source, self._clock(), errors, revision)
        self._rejected_digest, self._rejected_pause = digest, pause
        self.rejections += 1
        log.error(
            "snapshot%s from %s rejected (%s): %s",
            "" if revision is None else f" revision {revision}",
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
        active = self.active
        if active is None:
            return "no snapshot is active yet"
        if active.pause_revision != active.snapshot.revision:
            return (
                f"revision {active.snapshot.revision} keeps serving, with the pause state "
                f"of revision {active.pause_revision}"
            )
        return f"revision {active.snapshot.revision} keeps serving"
