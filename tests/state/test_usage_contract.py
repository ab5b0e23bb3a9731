"""The usage port's contract: what every state backend does, run against
each backend of ``_backends.BACKENDS`` (SQLite, Redis) through the port only.

Spend: usage reports recorded idempotently by request_id, summed exactly over
any window. Calls: charges counted per key and second, applied all or none
and only while their limits hold, even when many arrive at once.
Reservations: an estimate held against a budget in the same atomic step as
its check, replaced by the report of its request id, settled at the
estimate when it expires. All survive a restart."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pdp.engine import (
    CALL_WINDOW_MAX_SECONDS,
    CallCharge,
    CostCharge,
    UsagePort,
    UsageRecord,
    UsageReport,
)
from pdp.state import UsageConflictError
from tests._clock import START, ManualClock
from tests.state._backends import BACKENDS, UsageBackend

AGENT = ("agent", "agent-a")
TOOL = ("agent_tool", "agent-a", "search")
T0 = int(START.timestamp())


@pytest.fixture(params=sorted(BACKENDS))
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[UsageBackend]:
    opened = BACKENDS[request.param](request, tmp_path)
    yield opened
    await opened.close_all()


@pytest.fixture
async def usage(backend: UsageBackend, clock: ManualClock) -> UsagePort:
    return await backend.open(clock)


def report(agent_id: str, cost_usd: float, request_id: str) -> UsageReport:
    return UsageReport(agent_id=agent_id, cost_usd=cost_usd, request_id=request_id)


def call(key: tuple[str, ...], second: int, *limits: tuple[int, int]) -> CallCharge:
    return CallCharge(key=key, second=second, limits=limits)


# -- spend -------------------------------------------------------------------------


async def test_record_returns_the_stored_record(usage: UsagePort) -> None:
    record = await usage.record(report("agent-a", 1.5, "req-1"))

    assert record == UsageRecord("req-1", "agent-a", 1.5, START, duplicate=False)
    assert usage.spent_since("agent-a", START) == 1.5
    assert usage.spent_since("agent-b", START) == 0.0


async def test_a_report_again_is_a_duplicate_counted_once(
    usage: UsagePort, clock: ManualClock
) -> None:
    await usage.record(report("agent-a", 2.0, "req-1"))
    clock.advance(minutes=5)

    again = await usage.record(report("agent-a", 2.0, "req-1"))

    # The stored record (with its original time) comes back, marked duplicate.
    assert again == UsageRecord("req-1", "agent-a", 2.0, START, duplicate=True)
    assert usage.spent_since("agent-a", START) == 2.0


@pytest.mark.parametrize(("agent_id", "cost_usd"), [("agent-b", 2.0), ("agent-a", 2.5)])
async def test_a_request_id_reused_for_other_usage_conflicts(
    usage: UsagePort, agent_id: str, cost_usd: float
) -> None:
    await usage.record(report("agent-a", 2.0, "req-1"))

    with pytest.raises(UsageConflictError, match="req-1") as caught:
        await usage.record(report(agent_id, cost_usd, "req-1"))

    assert caught.value.request_id == "req-1"
    assert usage.spent_since("agent-a", START) == 2.0
    assert usage.spent_since("agent-b", START) == 0.0


async def test_spent_since_sums_only_the_window(usage: UsagePort, clock: ManualClock) -> None:
    # Spend at 12:00, 13:00, 14:00 (day 1) and 12:00 the next day.
    for index, cost in enumerate([1.0, 2.0, 4.0]):
        await usage.record(report("agent-a", cost, f"day1-{index}"))
        clock.advance(hours=1)
    clock.now = START + timedelta(days=1)
    await usage.record(report("agent-a", 8.0, "day2"))
    await usage.record(report("agent-b", 100.0, "other-agent"))

    assert usage.spent_since("agent-a", START - timedelta(days=30)) == 15.0
    assert usage.spent_since("agent-a", START) == 15.0  # since is inclusive
    assert usage.spent_since("agent-a", START + timedelta(microseconds=1)) == 14.0
    assert usage.spent_since("agent-a", START + timedelta(hours=2, minutes=30)) == 8.0
    assert usage.spent_since("agent-a", START + timedelta(days=1)) == 8.0
    assert usage.spent_since("agent-a", START + timedelta(days=2)) == 0.0
    assert usage.spent_since("agent-b", START) == 100.0


async def test_spent_since_accepts_any_timezone(usage: UsagePort, clock: ManualClock) -> None:
    await usage.record(report("agent-a", 3.0, "req-1"))
    clock.advance(hours=2)
    await usage.record(report("agent-a", 4.0, "req-2"))
    # 14:00 UTC written as 16:00 at UTC+2.
    since = (START + timedelta(hours=2)).astimezone(timezone(timedelta(hours=2)))
    assert usage.spent_since("agent-a", since) == 4.0


async def test_sums_are_exact(usage: UsagePort) -> None:
    for index in range(10):
        await usage.record(report("agent-a", 0.1, f"req-{index}"))
    # A float sum would give 0.9999999999999999.
    assert usage.spent_since("agent-a", START) == 1.0


async def test_zero_cost_is_recorded(usage: UsagePort) -> None:
    record = await usage.record(report("agent-a", 0, "free"))
    assert (record.cost_usd, record.duplicate) == (0.0, False)
    assert (await usage.record(report("agent-a", 0, "free"))).duplicate


@pytest.mark.parametrize(
    ("agent_id", "cost_usd", "request_id", "field"),
    [
        ("agent-a", math.nan, "req-1", "cost_usd"),
        ("agent-a", math.inf, "req-1", "cost_usd"),
        ("agent-a", -0.01, "req-1", "cost_usd"),
        ("agent-a", 1e300, "req-1", "cost_usd"),
        ("agent-a", True, "req-1", "cost_usd"),
        ("", 1.0, "req-1", "agent_id"),
        ("agent-a", 1.0, "", "request_id"),
    ],
)
async def test_a_bad_report_is_refused_naming_the_field_and_records_nothing(
    usage: UsagePort, agent_id: str, cost_usd: float, request_id: str, field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        await usage.record(report(agent_id, cost_usd, request_id))

    assert usage.spent_since(agent_id, START - timedelta(days=1)) == 0.0
    if request_id:
        fresh = await usage.record(report("agent-a", 1.0, request_id))
        assert not fresh.duplicate


async def test_concurrent_reports_count_each_request_once(usage: UsagePort) -> None:
    same = [usage.record(report("agent-a", 0.75, "req-1")) for _ in range(50)]
    distinct = [usage.record(report(f"agent-{i % 3}", 0.5, f"r-{i}")) for i in range(90)]
    results = await asyncio.gather(*same, *distinct)

    assert sum(not result.duplicate for result in results[:50]) == 1
    assert usage.spent_since("agent-a", START) == 0.75
    for agent in range(3):
        assert usage.spent_since(f"agent-{agent}", START) == 15.0


async def test_a_cancelled_caller_still_gets_its_usage_counted(usage: UsagePort) -> None:
    task = asyncio.create_task(usage.record(report("agent-a", 1.0, "req-1")))
    await asyncio.sleep(0)  # let the write start
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # The write finishes regardless; a retry of the same report is a duplicate.
    assert (await usage.record(report("agent-a", 1.0, "req-1"))).duplicate
    assert usage.spent_since("agent-a", START) == 1.0


async def test_spend_survives_a_restart(backend: UsageBackend, clock: ManualClock) -> None:
    usage = await backend.open(clock)
    for index in range(20):
        await usage.record(report(f"agent-{index % 2}", 0.05 * index, f"req-{index}"))
        clock.advance(minutes=30)
    windows = [START + timedelta(hours=hours) for hours in (0, 2, 5, 9)]
    keys = [(agent, since) for agent in ("agent-0", "agent-1") for since in windows]
    before = {key: usage.spent_since(*key) for key in keys}
    await backend.close(usage)

    restarted = await backend.open(clock)

    assert {key: restarted.spent_since(*key) for key in keys} == before
    assert before["agent-0", START] == pytest.approx(4.5)
    assert (await restarted.record(report("agent-1", 0.05, "req-1"))).duplicate


# -- calls -------------------------------------------------------------------------


async def test_calls_are_counted_per_key_from_a_second_on(usage: UsagePort) -> None:
    charges = [call(AGENT, T0), call(AGENT, T0), call(AGENT, T0 + 5), call(TOOL, T0)]
    for charge in charges:
        assert await usage.charge([charge]) == ()

    assert usage.calls_since(AGENT, T0 - 60) == 3
    assert usage.calls_since(AGENT, T0) == 3  # since is inclusive
    assert usage.calls_since(AGENT, T0 + 1) == 1
    assert usage.calls_since(AGENT, T0 + 6) == 0
    assert usage.calls_since(TOOL, T0) == 1
    assert usage.calls_since(("agent", "agent-b"), T0) == 0


async def test_nth_call_since_names_the_second_of_a_call(usage: UsagePort) -> None:
    for second in (T0, T0, T0 + 5, T0 + 10):
        await usage.charge([call(AGENT, second)])

    assert [usage.nth_call_since(AGENT, T0, n) for n in (1, 2, 3, 4, 5)] == [
        T0,
        T0,
        T0 + 5,
        T0 + 10,
        None,
    ]
    assert usage.nth_call_since(AGENT, T0 + 1, 1) == T0 + 5
    assert usage.nth_call_since(AGENT, T0 + 11, 1) is None
    assert usage.nth_call_since(("agent", "nobody"), T0, 1) is None


async def test_a_charge_past_its_limit_is_refused_and_counts_nothing(usage: UsagePort) -> None:
    limit = (T0 - 59, 2)  # fewer than 2 calls in the minute up to T0
    assert await usage.charge([call(AGENT, T0, limit)]) == ()
    assert await usage.charge([call(AGENT, T0, limit)]) == ()

    third = call(AGENT, T0, limit)
    assert await usage.charge([third]) == (third,)
    assert usage.calls_since(AGENT, T0 - 59) == 2
    # A later window that no longer holds those calls admits again.
    assert await usage.charge([call(AGENT, T0 + 60, (T0 + 1, 2))]) == ()


async def test_charges_are_applied_all_or_none(usage: UsagePort) -> None:
    await usage.charge([call(TOOL, T0)])
    fits = call(AGENT, T0 + 1, (T0 - 59, 5))
    full = call(TOOL, T0 + 1, (T0 - 59, 1))

    assert await usage.charge([fits, full]) == (full,)
    assert usage.calls_since(AGENT, T0 - 59) == 0
    assert usage.calls_since(TOOL, T0 - 59) == 1


async def test_every_limit_of_a_charge_must_hold(usage: UsagePort) -> None:
    for second in (T0, T0 + 30):
        await usage.charge([call(AGENT, second)])
    # 2 calls in the last minute, 1 in the last 10 seconds.
    charge = call(AGENT, T0 + 31, (T0 + 22, 5), (T0 - 28, 2))
    assert await usage.charge([charge]) == (charge,)
    assert await usage.charge([call(AGENT, T0 + 31, (T0 + 22, 5), (T0 - 28, 3))]) == ()


async def test_a_charge_without_limits_always_counts(usage: UsagePort) -> None:
    await usage.charge([call(AGENT, T0, (T0, 1))])
    assert await usage.charge([call(AGENT, T0)]) == ()
    assert usage.calls_since(AGENT, T0) == 2


async def test_concurrent_charges_never_pass_the_limit(usage: UsagePort) -> None:
    limit = (T0 - 59, 10)
    results = await asyncio.gather(*(usage.charge([call(AGENT, T0, limit)]) for _ in range(200)))

    assert sum(result == () for result in results) == 10
    assert usage.calls_since(AGENT, T0 - 59) == 10


async def test_calls_survive_a_restart(backend: UsageBackend, clock: ManualClock) -> None:
    usage = await backend.open(clock)
    for offset in range(0, 600, 7):
        await usage.charge([call(AGENT, T0 + offset), call(TOOL, T0 + offset // 2)])
    clock.advance(seconds=600)
    before = [
        (usage.calls_since(key, T0 + s), usage.nth_call_since(key, T0 + s, 3))
        for key in (AGENT, TOOL)
        for s in (0, 100, 599)
    ]
    await backend.close(usage)

    restarted = await backend.open(clock)

    after = [
        (restarted.calls_since(key, T0 + s), restarted.nth_call_since(key, T0 + s, 3))
        for key in (AGENT, TOOL)
        for s in (0, 100, 599)
    ]
    assert after == before
    assert after[0] == (86, T0 + 14)


async def test_the_longest_window_is_kept_across_a_restart(
    backend: UsageBackend, clock: ManualClock
) -> None:
    usage = await backend.open(clock)
    await usage.charge([call(AGENT, T0)])
    await backend.close(usage)
    clock.advance(seconds=CALL_WINDOW_MAX_SECONDS - 1)

    restarted = await backend.open(clock)

    assert restarted.calls_since(AGENT, T0 + 1 - CALL_WINDOW_MAX_SECONDS) == 1


# -- reservations ------------------------------------------------------------------

DAY = START.replace(hour=0)
BUDGET = ((DAY, 10.0),)  # $10 from the start of the day


def reserve(request_id: str, amount: float, *limits: tuple[datetime, float]) -> CostCharge:
    return CostCharge(agent_id="agent-a", request_id=request_id, amount_usd=amount, limits=limits)


async def settle(usage: UsagePort) -> None:
    settle_expired = getattr(usage, "settle_expired")  # noqa: B009 - every backend has one
    await settle_expired()


async def test_a_reservation_counts_as_spend_until_reported(usage: UsagePort) -> None:
    assert await usage.charge([reserve("req-1", 2.5, *BUDGET)]) == ()
    assert usage.spent_since("agent-a", DAY) == 2.5

    record = await usage.record(report("agent-a", 1.75, "req-1"))

    # The actual cost replaces the estimate: counted once.
    assert (record.cost_usd, record.duplicate) == (1.75, False)
    assert usage.spent_since("agent-a", DAY) == 1.75


async def test_a_reservation_past_the_budget_is_refused(usage: UsagePort) -> None:
    await usage.record(report("agent-a", 8.0, "paid"))
    fits = reserve("req-1", 2.0, *BUDGET)
    assert await usage.charge([fits]) == ()

    over = reserve("req-2", 0.01, *BUDGET)
    assert await usage.charge([over]) == (over,)
    assert usage.spent_since("agent-a", DAY) == 10.0
    # Without limits (a monitor policy let the call through), it counts anyway.
    assert await usage.charge([reserve("req-3", 1.0)]) == ()
    assert usage.spent_since("agent-a", DAY) == 11.0


async def test_concurrent_reservations_never_pass_the_budget(usage: UsagePort) -> None:
    charges = [reserve(f"req-{index}", 0.5, *BUDGET) for index in range(200)]
    results = await asyncio.gather(*(usage.charge([charge]) for charge in charges))

    assert sum(result == () for result in results) == 20
    assert usage.spent_since("agent-a", DAY) == 10.0


async def test_a_window_that_starts_after_a_reservation_does_not_count_it(
    usage: UsagePort, clock: ManualClock
) -> None:
    await usage.charge([reserve("req-1", 3.0)])
    clock.advance(minutes=1)
    await usage.charge([reserve("req-2", 4.0)])

    assert usage.spent_since("agent-a", START + timedelta(seconds=30)) == 4.0
    # The budget of a window counts only what the window holds.
    late = ((START + timedelta(seconds=30), 5.0),)
    assert await usage.charge([reserve("req-3", 1.0, *late)]) == ()


async def test_the_same_request_id_holds_one_reservation(usage: UsagePort) -> None:
    await usage.charge([reserve("req-1", 6.0, *BUDGET)])
    # A retried Enforce: its own reservation is not counted against it.
    assert await usage.charge([reserve("req-1", 6.0, *BUDGET)]) == ()
    assert usage.spent_since("agent-a", DAY) == 6.0


async def test_a_report_for_another_agents_reservation_conflicts(usage: UsagePort) -> None:
    await usage.charge([reserve("req-1", 2.0)])

    with pytest.raises(UsageConflictError, match="reservation"):
        await usage.record(report("agent-b", 2.0, "req-1"))

    assert usage.spent_since("agent-a", DAY) == 2.0
    assert usage.spent_since("agent-b", DAY) == 0.0


async def test_an_unreported_reservation_expires_at_its_estimate(
    backend: UsageBackend, clock: ManualClock
) -> None:
    usage = await backend.open(clock, reservation_ttl=5.0)
    await usage.charge([reserve("req-1", 2.0, *BUDGET)])
    clock.advance(seconds=6)

    await settle(usage)

    # Still counted, now as usage: a late report of the same amount is a
    # duplicate; of another amount, refused.
    assert usage.spent_since("agent-a", DAY) == 2.0
    assert (await usage.record(report("agent-a", 2.0, "req-1"))).duplicate
    with pytest.raises(UsageConflictError, match="expired"):
        await usage.record(report("agent-a", 3.0, "req-1"))
    assert usage.spent_since("agent-a", DAY) == 2.0


async def test_a_reservation_reported_in_time_does_not_expire(
    backend: UsageBackend, clock: ManualClock
) -> None:
    usage = await backend.open(clock, reservation_ttl=5.0)
    await usage.charge([reserve("req-1", 2.0)])
    clock.advance(seconds=4)
    await usage.record(report("agent-a", 0.5, "req-1"))
    clock.advance(seconds=10)

    await settle(usage)

    assert usage.spent_since("agent-a", DAY) == 0.5


async def test_reservations_survive_a_restart(backend: UsageBackend, clock: ManualClock) -> None:
    usage = await backend.open(clock)
    await usage.charge([reserve("req-1", 2.0, *BUDGET), call(AGENT, T0)])
    await usage.charge([reserve("req-2", 3.0, *BUDGET)])
    await backend.close(usage)

    restarted = await backend.open(clock)

    assert restarted.spent_since("agent-a", DAY) == 5.0
    await restarted.record(report("agent-a", 1.0, "req-2"))
    assert restarted.spent_since("agent-a", DAY) == 3.0
    assert await restarted.charge([reserve("req-3", 7.5, *BUDGET)]) == (
        reserve("req-3", 7.5, *BUDGET),
    )
