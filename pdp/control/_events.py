"""Events: what sidecars report (``POST /api/v1/sidecar/events``) and what
the control plane itself emits, handed to the handlers registered for their
type.

A feature declares an event type once with the model of its ``data``
(:meth:`EventRegistry.define`) and registers handlers for any declared type
(:meth:`EventRegistry.on_event`), so a feature reacts to another's events
without touching its code. Handlers run inside the side transaction that
records the event: what they write commits with it, or not at all, and a
retried batch reaches them once per event id."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from pdp.engine import parse_rfc3339, utc_now
from pdp.state import to_micros

from ._errors import FieldProblem, ValidationFailedError, problem_of
from ._store import SideTransaction, Store

__all__ = [
    "DEDUPE_WINDOW",
    "Event",
    "EventHandler",
    "EventRegistry",
    "IncomingEvent",
]

# A sidecar retries a batch within minutes; a day covers any outage it rides out.
DEDUPE_WINDOW = timedelta(days=1)
_PRUNE_EVERY = 1000  # batches


@dataclass(frozen=True, slots=True)
class Event:
    """One event as handlers see it. ``data`` is the validated model of its
    type; ``sidecar_id`` is empty for the control plane's own events."""

    id: str
    type: str
    time: datetime
    sidecar_id: str
    data: BaseModel


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """One event of a sidecar's batch, as received."""

    id: str
    type: str
    time: str
    data: Mapping[str, Any]


EventHandler = Callable[[SideTransaction, Event], Awaitable[None]]


class EventRegistry:
    """Event types and their handlers, by type name."""

    def __init__(self) -> None:
        self._models: dict[str, type[BaseModel]] = {}
        self._handlers: dict[str, list[EventHandler]] = {}
        self._batches = 0

    def define(self, event_type: str, model: type[BaseModel]) -> None:
        """Declares ``event_type``, whose ``data`` is checked against ``model``."""
        if event_type in self._models:
            raise ValueError(f"event type {event_type!r} is already defined")
        self._models[event_type] = model

    def on_event(self, event_type: str, handler: EventHandler) -> None:
        """Calls ``handler(tx, event)`` for every new event of ``event_type``,
        inside the transaction that records it, in registration order."""
        if event_type not in self._models:
            raise ValueError(f"unknown event type {event_type!r}; define it first")
        self._handlers.setdefault(event_type, []).append(handler)

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(sorted(self._models))

    def parse(self, events: Sequence[IncomingEvent]) -> list[tuple[str, str, datetime, BaseModel]]:
        """Every event checked (type, id, time, data) before anything is
        written; raises ValidationFailedError naming each bad field."""
        problems: list[FieldProblem] = []
        parsed: list[tuple[str, str, datetime, BaseModel]] = []
        for i, event in enumerate(events):
            at = f"events[{i}]"
            model = self._models.get(event.type)
            if model is None:
                known = ", ".join(self.types)
                message = f"unknown event type {event.type!r} (known: {known})"
                problems.append(FieldProblem(f"{at}.type", message))
                continue
            try:
                event_id = str(uuid.UUID(event.id))
            except ValueError:
                problems.append(FieldProblem(f"{at}.id", f"must be a UUID, got {event.id[:40]!r}"))
                continue
            time = parse_rfc3339(event.time)
            if time is None:
                problems.append(
                    FieldProblem(f"{at}.time", "must be an RFC 3339 timestamp with a time zone")
                )
                continue
            try:
                data = model.model_validate(dict(event.data))
            except ValidationError as exc:
                problems.extend(problem_of(e, within=f"{at}.data") for e in exc.errors())
                continue
            parsed.append((event_id, event.type, time, data))
        if problems:
            raise ValidationFailedError(problems)
        return parsed

    async def ingest(
        self, store: Store, sidecar_id: str, events: Sequence[IncomingEvent]
    ) -> tuple[int, int]:
        """Records a sidecar's batch in one side transaction and hands each
        event not seen before to its handlers. Returns (new, duplicates).
        Nothing is recorded when any event is malformed."""
        parsed = self.parse(events)
        new = 0
        now = utc_now()
        received = to_micros(now, "received_at")
        async with store.side_transaction() as tx:
            for event_id, event_type, time, data in parsed:
                inserted = await tx.execute(
                    "INSERT OR IGNORE INTO sidecar_events"
                    " (event_id, type, sidecar_id, received_at_us)"
                    " VALUES (?, ?, ?, ?)",
                    (event_id, event_type, sidecar_id, received),
                )
                if not inserted:
                    continue
                new += 1
                await self._dispatch(tx, Event(event_id, event_type, time, sidecar_id, data))
            self._batches += 1
            if self._batches % _PRUNE_EVERY == 1:
                cutoff = to_micros(now - DEDUPE_WINDOW, "cutoff")
                await tx.execute("DELETE FROM sidecar_events WHERE received_at_us < ?", (cutoff,))
        return new, len(parsed) - new

    async def emit(
        self, tx: SideTransaction, event_type: str, data: BaseModel | Mapping[str, Any]
    ) -> None:
        """The control plane's own event (``approval.decided``...), handed to
        the handlers of its type inside ``tx``. ``data`` is checked against
        the type's model (ValidationError) unless it is an instance of it."""
        model = self._models.get(event_type)
        if model is None:
            raise ValueError(f"unknown event type {event_type!r}; define it first")
        if not isinstance(data, model):
            fields = data.model_dump() if isinstance(data, BaseModel) else dict(data)
            data = model.model_validate(fields)
        await self._dispatch(tx, Event(str(uuid.uuid4()), event_type, utc_now(), "", data))

    async def _dispatch(self, tx: SideTransaction, event: Event) -> None:
        for handler in self._handlers.get(event.type, ()):
            await handler(tx, event)
