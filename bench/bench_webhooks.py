"""What webhooks cost the control plane, in-process against a real one (a
real SQLite file, uvicorn on loopback) and a receiver on loopback that
answers 204 at once:

- ingesting a sidecar's batch of 500 decision events that fired a block
  policy, with no webhook against one webhook subscribed to
  policy.violated (each event then also writes a policy.violated event's
  delivery row, in the same transaction): medians and their ratio;
- delivery throughput: 5,000 deliveries queued while the sender is
  stopped, then POSTed, signed and recorded as delivered
  (--webhook-concurrency 16), per second.

With ``--postgres-replicas N`` it measures instead what several control
planes on one PostgreSQL database (a private cluster; N of them in this
process) send: 5,000 deliveries queued while every sender is stopped, then
all senders started at once, first with each replica reading the outbox as
a lone control plane does (no leases), then with leases (the default): the
receiver counts the requests per ``webhook-id``, so duplicates are the
requests beyond one per delivery.

    .venv/bin/python bench/bench_webhooks.py
    .venv/bin/python bench/bench_webhooks.py --postgres-replicas 2

The figures are one run's; absolute numbers move with the machine's load,
and the receiver shares the control plane's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from pdp.control import (
    API_KEY_HEADER,
    ControlOptions,
    ControlServer,
    DeliveryOptions,
    PostgresLocation,
    Role,
    create_api_key,
    parse_db_location,
)
from pdp.control._webhook_leases import LocalClaims

BATCH = 500
ROUNDS = 10
BACKLOG = 5000
_LENGTH = re.compile(rb"(?i)content-length: *(\d+)")
_WEBHOOK_ID = re.compile(rb"(?i)webhook-id: *(\S+)")


class Receiver:
    """HTTP/1.1 keep-alive; 204 to every POST."""

    def __init__(self) -> None:
        self.received = 0
        self.ids: collections.Counter[bytes] = collections.Counter()
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                found = _LENGTH.search(head)
                await reader.readexactly(int(found.group(1)) if found else 0)
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                self.received += 1
                webhook_id = _WEBHOOK_ID.search(head)
                if webhook_id is not None:
                    self.ids[webhook_id.group(1)] += 1
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()


def decision_batch(policy_id: str) -> dict[str, Any]:
    fired = {"id": policy_id, "name": "P", "type": "injection_scan", "mode": "block"}
    events = [
        {
            "id": str(uuid.uuid4()),
            "type": "decision",
            "time": "2026-01-02T03:04:05Z",
            "data": {
                "decisionId": uuid.uuid4().hex,
                "agentId": "bot",
                "decision": "BLOCK",
                "policies": [fired | {"severity": "high"}],
                "snapshotRevision": 1,
                "requestId": uuid.uuid4().hex,
                "approvalId": "",
            },
        }
        for _ in range(BATCH)
    ]
    return {"sidecarId": "bench", "events": events}


async def ingest_ms(client: httpx.AsyncClient) -> float:
    batch = decision_batch("p1")
    start = time.perf_counter()
    response = await client.post("/sidecar/events", json=batch)
    elapsed = (time.perf_counter() - start) * 1e3
    response.raise_for_status()
    return elapsed


async def delivered(server: ControlServer) -> int:
    assert server.control is not None
    rows = await server.control.store.fetchall(
        "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'delivered'"
    )
    return int(rows[0][0])


async def until_delivered(server: ControlServer, count: int) -> None:
    # Polled: the rows are written by the sender's own transactions.
    done = await delivered(server)
    while done < count:
        await asyncio.sleep(0.02)
        done = await delivered(server)


async def measure(directory: Path) -> dict[str, float]:
    receiver = Receiver()
    await receiver.start()
    options = ControlOptions(
        db=directory / "control.db", port=0, webhooks=DeliveryOptions(concurrency=16)
    )
    server = ControlServer(options)
    await server.start()
    assert server.control is not None
    key = (await create_api_key(server.control.store, "bench", role=Role.ADMIN)).secret
    client = httpx.AsyncClient(
        base_url=f"{server.base_url}/api/v1", headers={API_KEY_HEADER: key}, timeout=60
    )
    try:
        # The sender waits while the ingest is timed: one task at a time.
        assert server.control.webhook_sender is not None
        await server.control.webhook_sender.stop()
        server.control.webhook_sender = None
        hook = {"url": receiver.url, "events": ["policy.violated"]}
        for _ in range(3):  # warm up
            await ingest_ms(client)
        # Rounds without and with a webhook alternate, so that the machine's
        # load weighs on both alike.
        without, with_hook = [], []
        for _ in range(ROUNDS):
            without.append(await ingest_ms(client))
            created = (await client.post("/webhooks", json=hook)).json()
            with_hook.append(await ingest_ms(client))
            (await client.delete(f"/webhooks/{created['id']}")).raise_for_status()
        # A backlog queued while the sender is stopped, then sent.
        (await client.post("/webhooks", json=hook)).raise_for_status()
        for _ in range(BACKLOG // BATCH):
            await ingest_ms(client)
        start = time.perf_counter()
        server.control.start_webhook_delivery(options.webhooks)
        await until_delivered(server, BACKLOG)
        seconds = time.perf_counter() - start
        assert receiver.received >= BACKLOG
    finally:
        await client.aclose()
        await server.stop()
        await receiver.stop()
    return {
        "without_ms": statistics.median(without),
        "with_ms": statistics.median(with_hook),
        "per_second": BACKLOG / seconds,
    }


async def measure_replicas(db: PostgresLocation, replicas: int, leases: bool) -> dict[str, float]:
    """Duplicates and throughput of ``replicas`` control planes on ``db``
    sending one backlog together."""
    receiver = Receiver()
    await receiver.start()
    options = DeliveryOptions(concurrency=16)
    servers = [ControlServer(ControlOptions(db=db, port=0, webhooks=options))]
    await servers[0].start()
    for _ in range(replicas - 1):
        servers.append(ControlServer(ControlOptions(db=db, port=0, webhooks=options)))
        await servers[-1].start()
    controls = [server.control for server in servers if server.control is not None]
    key = (await create_api_key(controls[0].store, "bench", role=Role.ADMIN)).secret
    client = httpx.AsyncClient(
        base_url=f"{servers[0].base_url}/api/v1", headers={API_KEY_HEADER: key}, timeout=60
    )
    try:
        for control in controls:
            assert control.webhook_sender is not None
            await control.webhook_sender.stop()
            control.webhook_sender = None
        hook = {"url": receiver.url, "events": ["policy.violated"]}
        (await client.post("/webhooks", json=hook)).raise_for_status()
        for _ in range(BACKLOG // BATCH):
            await ingest_ms(client)
        start = time.perf_counter()
        for control in controls:
            control.start_webhook_delivery(options)
            if not leases:
                # Each reads the outbox as a lone control plane on SQLite
                # does (its task has not run yet).
                assert control.webhook_sender is not None
                control.webhook_sender._claims = LocalClaims(control.store)
        await until_delivered(servers[0], BACKLOG)
        seconds = time.perf_counter() - start
        # Attempts another replica started before the outcome was recorded
        # arrive after it: wait until the receiver has been quiet a while.
        last = -1
        while receiver.received != last:
            last = receiver.received
            await asyncio.sleep(2.0)
        by_replica = [c.webhook_sender.outcomes["delivered"] for c in controls if c.webhook_sender]
    finally:
        await client.aclose()
        for server in servers:
            await server.stop()
        await receiver.stop()
    return {
        "received": receiver.received,
        "distinct": len(receiver.ids),
        "duplicates": receiver.received - len(receiver.ids),
        "recorded_by_replicas": sum(by_replica),
        "per_second": BACKLOG / seconds,
    }


def replicas_main(replicas: int) -> int:
    from tests._postgres import PASSWORD, PostgresServer

    postgres = PostgresServer()
    postgres.start()
    results = {}
    try:
        for leases in (False, True):
            location = parse_db_location(postgres.new_database())
            assert isinstance(location, PostgresLocation)
            db = dataclasses.replace(location, password=PASSWORD)
            results[leases] = asyncio.run(measure_replicas(db, replicas, leases))
    finally:
        postgres.remove()
    print(f"{replicas} control planes on one PostgreSQL database, {BACKLOG} deliveries:")
    print(f"  {'':14}{'received':>9}{'distinct':>9}{'duplicates':>11}{'outcomes':>9}"
          f"{'per second':>11}")  # fmt: skip
    for leases, label in ((False, "no leases"), (True, "leases")):
        r = results[leases]
        print(
            f"  {label:14}{r['received']:9.0f}{r['distinct']:9.0f}{r['duplicates']:11.0f}"
            f"{r['recorded_by_replicas']:9.0f}{r['per_second']:11.0f}"
        )
    print("  (outcomes: attempts the replicas recorded; duplicates: requests beyond one per")
    print("   delivery, as the receiver counted them by webhook-id)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--postgres-replicas",
        type=int,
        default=0,
        help="N control planes on one PostgreSQL database: duplicates without and with leases",
    )
    args = parser.parse_args()
    if args.postgres_replicas:
        if args.postgres_replicas < 2:
            parser.error("--postgres-replicas: at least 2")
        return replicas_main(args.postgres_replicas)
    with tempfile.TemporaryDirectory() as directory:
        result = asyncio.run(measure(Path(directory)))
    print(f"ingest of {BATCH} decision events, median of {ROUNDS} batches each, alternating:")
    print(f"  no webhook:                         {result['without_ms']:8.1f} ms")
    print(f"  one webhook on policy.violated:     {result['with_ms']:8.1f} ms")
    print(f"  ratio:                              {result['with_ms'] / result['without_ms']:8.2f}x")
    print(f"delivery of {BACKLOG} queued deliveries:  {result['per_second']:8.0f} per second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
