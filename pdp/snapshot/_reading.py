"""Reading a snapshot document without stalling decisions: JSON and small
YAML documents in a thread; large YAML ones in a separate process
(``pdp.engine._yaml_worker``), whose JSON answer is then read here, so the
event loop's process never runs the C YAML reader's GIL-holding call on a
large document. A JSON document (or a worker's answer) is read an item of
its top-level lists at a time, taking the earlier object for each item
whose text the active document had (``parse_document_items``)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Mapping

from pdp.engine import NO_ITEMS, FieldError, Pace, SnapshotError, no_pace, parse_document_items
from pdp.engine._yaml_worker import WORKER_SOURCE

__all__ = ["read_document"]

log = logging.getLogger("pdp.snapshot")

# Below this, reading YAML in a thread stalls the loop for a few ms at most;
# a worker process would cost more than it saves.
OFFLOAD_BYTES = 256 * 1024
_WORKER_TIMEOUT = 120.0


Read = tuple[Mapping[str, object], Mapping[str, object]]


async def read_document(
    data: bytes, known: Mapping[str, object] = NO_ITEMS, pace: Pace = no_pace
) -> Read:
    """The parsed document and its items, as ``parse_document_items`` gives
    them; raises SnapshotError as it does."""
    if len(data) < OFFLOAD_BYTES or data.lstrip()[:1] == b"{":
        return await asyncio.to_thread(parse_document_items, data, known, pace)
    try:
        text = await _in_worker(data)
    except SnapshotError:
        raise
    except Exception as exc:  # the worker could not run: read it here
        log.warning("reading the snapshot in this process (%s)", exc)
        text = None
    return await asyncio.to_thread(
        parse_document_items, data if text is None else text, known, pace
    )


async def _in_worker(data: bytes) -> bytes | None:
    """The document as JSON from a worker process; None when it has no
    faithful JSON form."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER_SOURCE,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(data), _WORKER_TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode == 0:
        return out
    if process.returncode == 2:
        errors = json.loads(out)
        raise SnapshotError([FieldError(path, message) for path, message in errors])
    if process.returncode == 3:
        return None
    raise RuntimeError(
        f"the YAML worker exited with {process.returncode}: {err.decode(errors='replace')[-300:]}"
    )
