"""Which control plane attempts a due webhook delivery.

One control plane on a SQLite file reads the due deliveries and attempts
them all (:class:`LocalClaims`). Several on one PostgreSQL database each
claim the deliveries they start (:class:`LeasedClaims`): in one
transaction, ``SELECT ... FOR UPDATE SKIP LOCKED`` picks due rows that no
live lease holds, and an ``UPDATE`` writes this control plane's lease on
them (``lease_owner``, ``lease_until_us``), so that each attempt is made by
one control plane. Recording the attempt's outcome releases the lease, and
is refused once the lease has passed to another control plane (so an
attempt is counted once); a clean stop gives back the leases of the
attempts it abandons; the leases of a control plane that dies (kill -9)
expire, and another takes its deliveries over. Lease times are read from
the database's clock, so the replicas' clocks need not agree.

While its attempts are under way, a control plane renews their leases
every third of a lease (:meth:`LeasedClaims.renew`, one ``UPDATE`` for
all of them), so that a lease can be short (a dead control plane's
deliveries wait about one lease) while an attempt may take longer than
one; only as many deliveries are claimed as can start at once, so a
claimed delivery never waits in a queue while its lease runs out."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Collection

from ._errors import StoreError
from ._store import Store

__all__ = ["DueRow", "LeasedClaims", "LocalClaims", "delivery_claims"]

log = logging.getLogger("pdp.control.webhooks")

# id, webhook_id, body, attempts
DueRow = tuple[str, str, bytes, int]

_DB_NOW_US = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)"
_GIVE_BACK_SECONDS = 5.0


class LocalClaims:
    """The only control plane on its database: every due delivery is its
    own, read ahead in batches; there are no leases (``owner`` is empty)."""

    owner = ""
    taken_over = 0  # deliveries claimed after another's lease expired

    def __init__(self, store: Store) -> None:
        self._store = store

    async def claim(
        self,
        now_us: int,
        room: int,
        batch: int,
        under_way: Collection[str],
        ended: Collection[str],
    ) -> list[DueRow]:
        """Up to ``batch`` due deliveries, oldest first, none ``under_way``
        nor ``ended`` while they were read (the read may predate their
        outcome). Both are read after the read, as they are then."""
        rows = await self._store.fetchall(
            "SELECT id, webhook_id, body, attempts FROM webhook_deliveries"
            " WHERE status = 'pending' AND next_attempt_at_us <= ?"
            " ORDER BY next_attempt_at_us LIMIT ?",
            (now_us, batch + len(under_way)),
        )
        return [
            (str(delivery_id), str(webhook_id), bytes(body), int(attempts))
            for delivery_id, webhook_id, body, attempts in rows
            if delivery_id not in under_way and delivery_id not in ended
        ]

    async def renew(self, under_way: Collection[str]) -> None:
        return None

    async def give_back(self) -> None:
        return None


class LeasedClaims(LocalClaims):
    """One of several control planes on a shared database: claims only the
    deliveries it starts now, each under a lease of ``lease`` seconds."""

    def __init__(self, store: Store, lease: float) -> None:
        super().__init__(store)
        self.lease = lease
        # Unique per start; host and process say which one holds a lease.
        self.owner = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"

    async def claim(
        self,
        now_us: int,
        room: int,
        batch: int,
        under_way: Collection[str],
        ended: Collection[str],
    ) -> list[DueRow]:
        """Up to ``room`` due deliveries, oldest first, now leased to this
        control plane. ``ended`` is not needed: the claim reads after every
        committed outcome, and an attempt under way holds its lease."""
        if room < 1:
            return []
        async with self._store.side_transaction() as tx:
            rows = await tx.fetchall(
                "SELECT id, webhook_id, body, attempts, lease_owner FROM webhook_deliveries"
                " WHERE status = 'pending' AND next_attempt_at_us <= ?"
                f" AND (lease_until_us IS NULL OR lease_until_us <= {_DB_NOW_US})"
                " AND id <> ALL(?::text[])"
                " ORDER BY next_attempt_at_us LIMIT ?"
                " FOR UPDATE SKIP LOCKED",
                (now_us, list(under_way), room),
            )
            if not rows:
                return []
            await tx.execute(
                "UPDATE webhook_deliveries SET lease_owner = ?,"
                f" lease_until_us = {_DB_NOW_US} + ? WHERE id = ANY(?::text[])",
                (self.owner, round(self.lease * 1e6), [str(row[0]) for row in rows]),
            )
        for delivery_id, _, _, _, previous in rows:
            if previous is not None and previous != self.owner:
                self.taken_over += 1
                log.info(
                    "taking over webhook delivery %s: the lease of %s expired",
                    delivery_id,
                    previous,
                )
        # A delivery still under way here outlived its lease; its attempt
        # records the outcome (and clears this lease).
        return [
            (str(delivery_id), str(webhook_id), bytes(body), int(attempts))
            for delivery_id, webhook_id, body, attempts, _ in rows
            if delivery_id not in under_way
        ]

    async def renew(self, under_way: Collection[str]) -> None:
        """Extends by a lease, from now, the leases this control plane
        still holds on the deliveries ``under_way``. One whose outcome was
        recorded (its lease released) or that another control plane took
        over is left alone; a delivery not under way (its outcome could not
        be recorded) is not renewed, so its lease expires."""
        if not under_way:
            return
        async with self._store.side_transaction() as tx:
            await tx.execute(
                f"UPDATE webhook_deliveries SET lease_until_us = {_DB_NOW_US} + ?"
                " WHERE lease_owner = ? AND status = 'pending' AND id = ANY(?::text[])",
                (round(self.lease * 1e6), self.owner, list(under_way)),
            )

    async def give_back(self) -> None:
        """Releases every lease this control plane holds (attempts it
        abandons at a clean stop), so that the others need not wait for
        them to expire. A database that does not answer keeps them until
        they do."""
        try:
            async with asyncio.timeout(_GIVE_BACK_SECONDS), self._store.side_transaction() as tx:
                await tx.execute(
                    "UPDATE webhook_deliveries SET lease_owner = NULL, lease_until_us = NULL"
                    " WHERE lease_owner = ? AND status = 'pending'",
                    (self.owner,),
                )
        except (StoreError, TimeoutError) as exc:
            log.warning("cannot give back webhook delivery leases (they will expire): %s", exc)


def delivery_claims(store: Store, lease: float) -> LocalClaims:
    """Leases where several control planes may share ``store``."""
    return LeasedClaims(store, lease) if store.shared else LocalClaims(store)
