"""A ledger's records survive the process being killed with SIGKILL."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from pathlib import Path

from pdp.state import Database, SpendLedger
from tests._process import PythonProcess

RECORDS = 200

# Records RECORDS usages (0.01 USD each, two agents), says "done", then waits
# to be killed: nothing closes the database or checkpoints the WAL.
_CHILD = """
import asyncio, sys
from pdp.state import Database, SpendLedger

async def main() -> None:
    db = await Database.open(sys.argv[1])
    ledger = await SpendLedger.open(db)
    for index in range(int(sys.argv[2])):
        await ledger.record(f"agent-{index % 2}", 0.01, f"req-{index}")
    print("done", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def _wal_size(db_path: Path) -> int:
    return Path(f"{db_path}-wal").stat().st_size


async def test_records_survive_kill_9(db_path: Path) -> None:
    # Returns once the child says "done" (raises with its stderr otherwise).
    child = PythonProcess(
        ["-c", _CHILD, str(db_path), str(RECORDS)], ready=r"^done$", stream="stdout"
    )
    assert child.stop(signal.SIGKILL) == -signal.SIGKILL
    # The commits are still in the write-ahead log, not yet in the main file.
    assert _wal_size(db_path) > 0

    db = await Database.open(db_path)
    ledger = await SpendLedger.open(db)
    retry = await ledger.record("agent-0", 0.01, "req-0")
    await db.close()

    since = datetime(1970, 1, 1, tzinfo=UTC)
    assert ledger.spent_since("agent-0", since) == RECORDS / 2 * 0.01
    assert ledger.spent_since("agent-1", since) == RECORDS / 2 * 0.01
    assert retry.duplicate
