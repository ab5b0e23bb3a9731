"""Webhooks: registrations (URL, the event types it wants, its secret) and
the outbox of their deliveries.

Every event a webhook subscribes to becomes one delivery row per webhook,
written by a handler of the event registry inside the transaction that
records the event (a sidecar's batch, an approval decision, a pause), so
an event is queued for delivery if and only if it happened. The row keeps
the JSON body and a stable id (``msg_...``, the ``webhook-id`` header) until
:class:`~._webhook_sender.WebhookSender` has delivered it or run out of
retries.

Some event types are derived here from a sidecar's ``decision`` events:
``policy.violated`` (each policy that fired in warn, require_approval or
block mode) and ``cost.threshold`` (a ``budget_cap`` policy with a warning
threshold that fired: once per agent, policy and budget period)."""

from __future__ import annotations

import base64
import json
import os
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from pdp.engine import format_time, load_timezone, month_start, signing_key, utc_now
from pdp.outbound import OutboundPolicy
from pdp.state import to_micros

from ._errors import FieldProblem, NotFoundError, ValidationFailedError
from ._event_types import DECISION, DecisionData, FiredPolicyData
from ._events import Event, EventRegistry
from ._objects import Policy
from ._store import SideTransaction, Store
from ._webhook_events import (
    COST_THRESHOLD,
    POLICY_VIOLATED,
    WEBHOOK_EVENTS,
    WEBHOOK_TEST,
    CostThresholdData,
    PolicyRef,
    PolicyViolatedData,
    WebhookTestData,
)

__all__ = [
    "DELIVERY_STATUSES",
    "MAX_URL_CHARS",
    "Delivery",
    "Webhook",
    "Webhooks",
    "new_secret",
]

MAX_URL_CHARS = 2048
DELIVERY_STATUSES = ("pending", "delivered", "failed")
_VIOLATING_MODES = frozenset({"warn", "require_approval", "block"})
_DELIVERY_COLUMNS = (
    "id, webhook_id, event_id, event_type, status, attempts, next_attempt_at_us,"
    " last_status, last_error, created_at_us, finished_at_us"
)


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    url: str
    events: tuple[str, ...]
    secret: str
    created_at: str

    @property
    def key(self) -> bytes:
        return signing_key(self.secret)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery as the API shows it (times in microseconds)."""

    id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at_us: int
    last_status: int | None
    last_error: str | None
    created_at_us: int
    finished_at_us: int | None


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode("ascii")


def _url_problem(url: str) -> str | None:
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        return f"is not a URL: {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        shown = parts.scheme or "none"
        return f"must be an http or https URL (scheme {shown!r})"
    if not parts.hostname:
        return "must name a host"
    return None


def check_registration(
    url: str,
    events: Sequence[str],
    secret: str | None,
    outbound: OutboundPolicy | None = None,
) -> tuple[str, tuple[str, ...], str]:
    """The registration as stored (url, events without repeats, secret);
    ValidationFailedError naming every bad field, the URL too when
    ``outbound`` refuses it whatever DNS answers."""
    problems: list[FieldProblem] = []
    if (why := _url_problem(url)) is not None:
        problems.append(FieldProblem("url", why))
    elif outbound is not None and (refusal := outbound.url_refusal(url)) is not None:
        problems.append(FieldProblem("url", f"is refused by the outbound policy: {refusal}"))
    if not events:
        problems.append(FieldProblem("events", "must list at least one event type"))
    known = ", ".join(WEBHOOK_EVENTS)
    for i, name in enumerate(events):
        if name not in WEBHOOK_EVENTS:
            problems.append(
                FieldProblem(f"events[{i}]", f"unknown event type {name[:100]!r} (known: {known})")
            )
    if secret is None:
        secret = new_secret()
    else:
        try:
            signing_key(secret)
        except ValueError as exc:
            problems.append(FieldProblem("secret", str(exc)))
    if problems:
        raise ValidationFailedError(problems)
    return url, tuple(dict.fromkeys(events)), secret


def _event_body(event: Event) -> bytes:
    """What a receiver gets: the Standard Webhooks payload shape."""
    document: dict[str, Any] = {
        "type": event.type,
        "timestamp": format_time(event.time),
        "eventId": event.id,
        "data": event.data.model_dump(mode="json"),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_SELECT_WEBHOOKS = (
    "SELECT id, url, events_json, secret, created_at FROM webhooks ORDER BY created_at, id"
)


def _webhook(row: Sequence[object]) -> Webhook:
    events = tuple(json.loads(str(row[2])))
    return Webhook(str(row[0]), str(row[1]), events, str(row[3]), str(row[4]))


def _new_delivery_id() -> str:
    return "msg_" + uuid.uuid4().hex


class Webhooks:
    """The registered webhooks (kept in memory, changed by transactions that
    update the copy once committed) and the handlers that queue their
    deliveries. ``policy_of`` finds a published policy by id."""

    def __init__(
        self,
        store: Store,
        events: EventRegistry,
        policy_of: Callable[[str], Policy | None],
    ) -> None:
        self._store = store
        self._events = events
        self._policy_of = policy_of
        # Where webhook URLs may point (--outbound-allow).
        self.outbound = OutboundPolicy()
        self._hooks: dict[str, Webhook] = {}
        # Deliveries queued by transactions not yet committed.
        self._pending: weakref.WeakKeyDictionary[SideTransaction, list[tuple[object, ...]]] = (
            weakref.WeakKeyDictionary()
        )
        # Called once deliveries were committed: the sender looks for them.
        self.on_queued: Callable[[], None] = lambda: None
        for event_type in WEBHOOK_EVENTS:
            events.on_event(event_type, self._fan_out)
        events.on_event(DECISION, self._on_decision)

    async def load(self) -> None:
        """Reads the registrations (again: with a database shared by several
        control planes, the sender calls it before each read of the outbox)."""
        hooks = [_webhook(row) for row in await self._store.fetchall(_SELECT_WEBHOOKS)]
        self._hooks = {hook.id: hook for hook in hooks}

    async def refresh(self) -> None:
        if self._store.shared:
            await self.load()

    # Registrations -------------------------------------------------------------

    def registered(self) -> list[Webhook]:
        return sorted(self._hooks.values(), key=lambda w: (w.created_at, w.id))

    def get(self, webhook_id: str) -> Webhook:
        hook = self._hooks.get(webhook_id)
        if hook is None:
            raise NotFoundError(f"no webhook with id {webhook_id!r}")
        return hook

    def target(self, webhook_id: str) -> Webhook | None:
        return self._hooks.get(webhook_id)

    async def create(self, url: str, events: Sequence[str], secret: str | None) -> Webhook:
        url, wanted, secret = check_registration(url, events, secret, self.outbound)
        hook = Webhook(str(uuid.uuid4()), url, wanted, secret, format_time(utc_now()))
        async with self._store.side_transaction() as tx:
            await tx.execute(
                "INSERT INTO webhooks (id, url, events_json, secret, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (hook.id, hook.url, json.dumps(list(hook.events)), hook.secret, hook.created_at),
            )
            tx.after_commit(lambda: self._hooks.__setitem__(hook.id, hook))
        return hook

    async def delete(self, webhook_id: str) -> Webhook:
        """Removes the webhook and its deliveries, pending ones included."""
        hook = self.get(webhook_id)
        async with self._store.side_transaction() as tx:
            await tx.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
            await tx.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?", (webhook_id,))
            tx.after_commit(lambda: self._forget(webhook_id))
        return hook

    def _forget(self, webhook_id: str) -> None:
        self._hooks.pop(webhook_id, None)

    async def send_test(self, webhook_id: str) -> Delivery:
        """Queues a ``webhook.test`` event for this webhook alone."""
        hook = self.get(webhook_id)
        data = WebhookTestData(webhookId=hook.id, message="a test delivery from pdp")
        event = Event(str(uuid.uuid4()), WEBHOOK_TEST, utc_now(), "", data)
        async with self._store.side_transaction() as tx:
            delivery_id = await self._queue(tx, hook, event, _event_body(event))
        return await self.delivery(delivery_id)

    # Deliveries -----------------------------------------------------------------

    async def delivery(self, delivery_id: str) -> Delivery:
        rows = await self._store.fetchall(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ?", (delivery_id,)
        )
        if not rows:
            raise NotFoundError(f"no delivery with id {delivery_id!r}")
        return Delivery(*rows[0])

    async def deliveries(self, webhook_id: str, status: str | None, limit: int) -> list[Delivery]:
        """The webhook's deliveries, newest first."""
        self.get(webhook_id)
        where, parameters = "webhook_id = ?", [webhook_id]
        if status is not None:
            where += " AND status = ?"
            parameters.append(status)
        rows = await self._store.fetchall(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE {where}"
            " ORDER BY created_at_us DESC, id LIMIT ?",
            (*parameters, limit),
        )
        return [Delivery(*row) for row in rows]

    async def _queue(self, tx: SideTransaction, hook: Webhook, event: Event, body: bytes) -> str:
        """Adds a delivery to the transaction's; they are written together
        just before it commits."""
        delivery_id = _new_delivery_id()
        now = to_micros(utc_now(), "now")
        rows = self._pending.get(tx)
        if rows is None:
            rows = self._pending[tx] = []
            tx.before_commit(lambda: self._write_queued(tx))
            tx.after_commit(self.on_queued)
        rows.append((delivery_id, hook.id, event.id, event.type, body, now, now))
        return delivery_id

    async def _write_queued(self, tx: SideTransaction) -> None:
        rows = self._pending.pop(tx, [])
        await tx.executemany(
            "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, body, status,"
            " attempts, next_attempt_at_us, created_at_us)"
            " VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
            rows,
        )

    async def _fan_out(self, tx: SideTransaction, event: Event) -> None:
        hooks: Iterable[Webhook] = self._hooks.values()
        if self._store.shared:  # another control plane may have changed them
            hooks = [_webhook(row) for row in await tx.fetchall(_SELECT_WEBHOOKS)]
        targets = [h for h in hooks if event.type in h.events]
        if not targets:
            return
        body = _event_body(event)
        for hook in targets:
            await self._queue(tx, hook, event, body)

    # Events derived from decisions ---------------------------------------------

    async def _on_decision(self, tx: SideTransaction, event: Event) -> None:
        data = event.data
        assert isinstance(data, DecisionData)
        for fired in data.policies:
            if fired.mode in _VIOLATING_MODES:
                violated = PolicyViolatedData(
                    agentId=data.agentId,
                    policy=_ref(fired),
                    decision=data.decision,
                    source="enforce",
                    message=f"policy {fired.name!r} ({fired.type}) fired in {fired.mode} mode",
                    requestId=data.requestId or None,
                    decisionId=data.decisionId,
                )
                await self._events.emit(tx, POLICY_VIOLATED, violated)
            if fired.type == "budget_cap":
                await self._threshold_reached(tx, event, data.agentId, fired)

    async def _threshold_reached(
        self, tx: SideTransaction, event: Event, agent_id: str, fired: FiredPolicyData
    ) -> None:
        """A budget_cap fires from its warning threshold on (or past its cap):
        its threshold was crossed in the period of the decision."""
        policy = self._policy_of(fired.id)
        if policy is None or policy.policyType != "budget_cap":
            return
        rule = policy.ruleDefinition
        pct, cap = _number(rule.get("warning_threshold_pct")), _number(rule.get("monthly_cap_usd"))
        if pct is None or cap is None:
            return
        reset_day = rule.get("reset_day", 1)
        tz = load_timezone(str(rule.get("timezone", "UTC"))) or UTC
        start = format_time(month_start(event.time, int(reset_day), tz))
        reached = await tx.execute(
            "INSERT OR IGNORE INTO cost_thresholds (agent_id, policy_id, period_start,"
            " reached_at_us) VALUES (?, ?, ?, ?)",
            (agent_id, policy.id, start, to_micros(utc_now(), "now")),
        )
        if reached:
            data = CostThresholdData(
                agentId=agent_id,
                policy=_ref(fired),
                capUsd=cap,
                thresholdPct=pct,
                periodStart=start,
            )
            await self._events.emit(tx, COST_THRESHOLD, data)


def _ref(fired: FiredPolicyData) -> PolicyRef:
    return PolicyRef(
        id=fired.id, name=fired.name, type=fired.type, mode=fired.mode, severity=fired.severity
    )


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
