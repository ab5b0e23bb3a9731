"""Webhook deliveries with several control planes on one real PostgreSQL
database and a real HTTPS receiver: each delivery is attempted by one
replica (its lease), an attempt longer than the lease keeps it (renewed),
a clean stop gives its deliveries back at once, a replica killed with
SIGKILL has its deliveries taken over within about one lease, a database
made before leases gets them on start, and a lease too short to renew is
refused."""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path

import httpx
import pytest

from pdp.control import API_KEY_HEADER, ControlPlane, DeliveryOptions, PostgresLocation
from pdp.control._schema import MIGRATIONS
from pdp.control._webhook_leases import LeasedClaims
from pdp.control._webhook_sender import WebhookSender, _Due
from pdp.engine import utc_now
from pdp.state import to_micros
from tests._https import Delay, Hang, HttpsServer, Reply, test_certificates
from tests._postgres import PostgresServer
from tests.conftest import new_postgres_db
from tests.control._harness import (
    ControlPlaneHarness,
    ControlPlaneProcess,
    cli_create_key,
    pdp_control,
)
from tests.control._webhooks import delivered_events, register
from tests.control.test_sidecar_events import decision_event
from tests.observe._scrape import scrape, value

CA_FILE = str(test_certificates().ca_file)


def delivery_options(lease: float = 30.0, timeout: float = 2.0) -> DeliveryOptions:
    return DeliveryOptions(
        schedule=(0.05, 0.05), timeout=timeout, concurrency=8, ca_file=CA_FILE, lease=lease
    )


@pytest.fixture
def shared_db(postgres_server: PostgresServer) -> PostgresLocation:
    return new_postgres_db(postgres_server)


async def queue_violations(sidecar: httpx.AsyncClient, count: int) -> None:
    """``count`` policy.violated deliveries, from sidecar decision events."""
    for start in range(0, count, 100):
        events = [decision_event(requestId=f"r{i}") for i in range(start, min(count, start + 100))]
        response = await sidecar.post("/sidecar/events", json={"sidecarId": "e", "events": events})
        assert response.status_code == 200, response.text


def sender_of(replica: ControlPlaneHarness) -> WebhookSender:
    sender = replica.control.webhook_sender
    assert sender is not None
    return sender


async def delivered(control: ControlPlaneHarness) -> int:
    rows = await control.rows("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'delivered'")
    return int(rows[0][0])


async def until_delivered(control: ControlPlaneHarness, count: int, within: float) -> None:
    deadline = time.monotonic() + within
    while (done := await delivered(control)) < count:
        assert time.monotonic() < deadline, f"{done} of {count} delivered within {within}s"
        await asyncio.sleep(0.05)


@pytest.mark.timeout(120)
async def test_two_replicas_deliver_each_event_once(shared_db: PostgresLocation) -> None:
    count = 400
    options = delivery_options()
    with HttpsServer(Reply(204)) as receiver:
        async with (
            ControlPlaneHarness(shared_db, webhooks=options) as first,
            ControlPlaneHarness(shared_db, webhooks=options) as second,
        ):
            for replica in (first, second):
                sender = replica.control.webhook_sender
                assert sender is not None
                await sender.stop()
                replica.control.webhook_sender = None
            sidecar_key = await first.create_key("edge", "sidecar")
            async with first.client() as client, first.client(sidecar_key) as sidecar:
                await register(client, receiver.url, ["policy.violated"])
                await queue_violations(sidecar, count)
            # Both start on the same full outbox: without leases, each
            # would read (and send) the same rows.
            first.control.start_webhook_delivery(options)
            second.control.start_webhook_delivery(options)
            await until_delivered(first, count, within=90)
            await asyncio.sleep(1.5)  # a second read of either replica would show by now
            outcomes = [sender_of(replica).outcomes for replica in (first, second)]
            attempts = await first.rows("SELECT DISTINCT attempts FROM webhook_deliveries")
            leases = await first.rows(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE lease_owner IS NOT NULL"
            )
        requests = receiver.requests
    ids = collections.Counter(r.headers["webhook-id"] for r in requests)
    assert len(ids) == count
    assert [i for i, n in ids.items() if n > 1] == []  # each received exactly once
    assert len(delivered_events(requests)) == count  # signed, verified as a receiver does
    assert attempts == [(1,)]
    assert leases == [(0,)]  # released with each outcome
    assert outcomes[0]["delivered"] + outcomes[1]["delivered"] == count
    assert outcomes[0]["delivered"] > 0 and outcomes[1]["delivered"] > 0  # both took part


@pytest.mark.timeout(60)
async def test_an_attempt_longer_than_its_lease_keeps_it(shared_db: PostgresLocation) -> None:
    """The receiver answers after nearly three leases: the replica making
    the attempt renews its leases meanwhile, so the other replica, reading
    the outbox all along, takes none of them over (sending it again)."""
    lease, count = 1.5, 4
    options = delivery_options(lease=lease, timeout=10)
    with HttpsServer(Delay(4.0, Reply(204))) as receiver:
        async with (
            ControlPlaneHarness(shared_db, webhooks=options) as first,
            ControlPlaneHarness(shared_db, webhooks=options) as second,
        ):
            sidecar_key = await first.create_key("edge", "sidecar")
            async with first.client() as client, first.client(sidecar_key) as sidecar:
                await register(client, receiver.url, ["policy.violated"])
                await queue_violations(sidecar, count)
            await until_delivered(first, count, within=20)
            await asyncio.sleep(lease)  # a late duplicate would show by now
            taken_over = [sender_of(replica).taken_over for replica in (first, second)]
            attempts = await first.rows("SELECT DISTINCT attempts FROM webhook_deliveries")
        requests = receiver.requests
    ids = collections.Counter(r.headers["webhook-id"] for r in requests)
    assert len(ids) == count
    assert [i for i, n in ids.items() if n > 1] == []  # each received exactly once
    assert taken_over == [0, 0]
    assert attempts == [(1,)]


@pytest.mark.timeout(120)
async def test_a_killed_replicas_deliveries_are_taken_over_when_their_leases_expire(
    shared_db: PostgresLocation,
) -> None:
    lease, count = 3.0, 6
    with HttpsServer(Hang()) as receiver:
        # The first replica, a child process, starts every attempt; the
        # receiver holds them unanswered (longer than a lease: the replica
        # renews them), and the replica is killed.
        first = ControlPlaneProcess(
            shared_db,
            extra=[
                *("--webhook-lease", f"{lease:g}s", "--webhook-timeout", "30s"),
                *("--webhook-retry-schedule", "50ms", "--webhook-ca-file", CA_FILE),
            ],
        )
        try:
            sidecar_key = cli_create_key(shared_db, "edge", "--role", "sidecar")
            async with first.client() as client:
                await register(client, receiver.url, ["policy.violated"])
            async with httpx.AsyncClient(
                base_url=f"{first.base_url}/api/v1", headers={API_KEY_HEADER: sidecar_key}
            ) as sidecar:
                queued_at = time.monotonic()  # before the claims
                await queue_violations(sidecar, count)
            held = await receiver.received(count)
            async with ControlPlaneHarness(
                shared_db, webhooks=delivery_options(lease=lease), metrics_listen="127.0.0.1:0"
            ) as second:
                await asyncio.sleep(2 * lease)
                # The first replica's leases were renewed: none taken over.
                assert len(receiver.requests) == count
                first.kill()
                killed_at = time.monotonic()
                receiver.respond_with(Reply(204))
                receiver.release()
                await until_delivered(second, count, within=30)
                assert second.server is not None
                samples = await scrape(second.server.metrics_url)
                attempts = await second.rows("SELECT DISTINCT attempts FROM webhook_deliveries")
        finally:
            first.kill()
        retried = receiver.requests[count:]
    held_ids = sorted(r.headers["webhook-id"] for r in held)
    assert sorted(r.headers["webhook-id"] for r in retried) == held_ids
    # Not before the killed replica's leases ran out (they began after the
    # deliveries were queued).
    assert min(r.received_at for r in retried) >= queued_at + lease - 0.05
    # Within about one lease of the kill: the last renewal's lease, and a
    # second at most before the survivor reads the outbox again.
    assert max(r.received_at for r in retried) <= killed_at + lease + 1.5
    assert value(samples, "pdp_control_webhook_leases_taken_over_total") == count
    assert attempts == [(1,)]  # the killed replica's attempts were never recorded


async def test_a_clean_stop_gives_its_deliveries_back_at_once(
    shared_db: PostgresLocation,
) -> None:
    count = 4
    with HttpsServer(Hang()) as receiver:
        first = await ControlPlaneHarness(shared_db, webhooks=delivery_options(lease=60)).start()
        try:
            sidecar_key = await first.create_key("edge", "sidecar")
            async with first.client() as client, first.client(sidecar_key) as sidecar:
                await register(client, receiver.url, ["policy.violated"])
                await queue_violations(sidecar, count)
            await receiver.received(count)
        finally:
            await first.stop()
        receiver.respond_with(Reply(204))
        receiver.release()
        started = time.monotonic()
        async with ControlPlaneHarness(shared_db, webhooks=delivery_options(lease=60)) as second:
            await until_delivered(second, count, within=10)
            leases = await second.rows(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE lease_owner IS NOT NULL"
            )
    assert time.monotonic() - started < 10  # far within the 60 s lease
    assert leases == [(0,)]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == count


async def test_a_database_made_before_leases_gets_them_on_start(
    shared_db: PostgresLocation, postgres_server: PostgresServer
) -> None:
    control = await ControlPlane.open(shared_db)
    await control.close()
    postgres_server.psql(
        "ALTER TABLE webhook_deliveries DROP COLUMN lease_owner, DROP COLUMN lease_until_us;"
        f" UPDATE pdp_control_schema SET version = {len(MIGRATIONS) - 1}",
        shared_db.database,
    )
    control = await ControlPlane.open(shared_db)
    await control.close()
    columns = postgres_server.psql(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = 'webhook_deliveries' AND column_name LIKE 'lease%'"
        " ORDER BY column_name",
        shared_db.database,
    )
    assert columns.split() == ["lease_owner", "lease_until_us"]


def test_a_lease_too_short_to_renew_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"webhook lease \(0\.5 s\) must be at least 1 s"):
        DeliveryOptions(lease=0.5)
    assert DeliveryOptions(timeout=30, lease=15).lease == 15  # renewed: may be shorter
    db = str(tmp_path / "control.db")
    result = pdp_control("--db", db, "--listen", "127.0.0.1:0", "--webhook-lease", "500ms")
    assert result.returncode == 2
    assert "--webhook-lease (0.5s): the webhook lease (0.5 s) must be at least 1 s" in (
        result.stderr
    )
    result = pdp_control("--db", db, "--listen", "127.0.0.1:0", "--webhook-lease", "soon")
    assert result.returncode == 2
    assert "--webhook-lease" in result.stderr and "is not a duration" in result.stderr


async def test_only_the_leases_holder_records_an_attempt(shared_db: PostgresLocation) -> None:
    """An attempt that outlived its lease (the database answered late) is
    not recorded over the replica that took the delivery over, so the
    delivery's attempts count each attempt once."""
    async with ControlPlaneHarness(shared_db, webhooks=delivery_options()) as replica:
        control = replica.control
        assert control.webhook_sender is not None
        await control.webhook_sender.stop()
        control.webhook_sender = None
        sidecar_key = await replica.create_key("edge", "sidecar")
        async with replica.client() as client, replica.client(sidecar_key) as sidecar:
            await register(client, "https://127.0.0.1:9/hook", ["policy.violated"])
            await queue_violations(sidecar, 1)
        late, holder = LeasedClaims(control.store, 0.2), LeasedClaims(control.store, 30)
        now_us = to_micros(utc_now(), "now")
        [row] = await late.claim(now_us, 1, 8, (), ())
        assert await holder.claim(now_us, 1, 8, (), ()) == []  # leased
        await asyncio.sleep(0.3)
        [taken] = await holder.claim(now_us, 1, 8, (), ())
        assert taken == row and holder.taken_over == 1

        async def record(claims: LeasedClaims) -> tuple[object, ...]:
            sender = WebhookSender(control.store, control.webhooks.target, delivery_options())
            sender._claims = claims
            await sender._record(_Due(*row), 204, None)
            [stored] = await replica.rows(
                "SELECT status, attempts, lease_owner FROM webhook_deliveries"
            )
            return stored

        assert await record(late) == ("pending", 0, holder.owner)
        assert await record(holder) == ("delivered", 1, None)
