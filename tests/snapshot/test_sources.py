"""Sources fetch and report; each attempt is one Update. Real files and a
real control plane on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from pdp.snapshot import (
    FileSource,
    HttpSource,
    NewDocument,
    NoChange,
    Refused,
    SnapshotSource,
    SourceError,
    Unreachable,
    Update,
    open_source,
)
from tests.control._harness import ControlPlaneHarness


async def test_a_file_is_read_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "policies.yaml"
    path.write_text("revision: 1\n")
    source = FileSource(path)
    assert await source.fetch() == NewDocument(str(path), b"revision: 1\n")
    assert await source.fetch() == NoChange(str(path))
    path.write_text("revision: 22\n")  # in place: the size differs
    assert await source.fetch() == NewDocument(str(path), b"revision: 22\n")
    path.unlink()
    missing = await source.fetch()
    assert isinstance(missing, Unreachable) and "cannot read" in missing.reason
    path.write_text("revision: 22\n")  # back, identical: read again all the same
    assert await source.fetch() == NewDocument(str(path), b"revision: 22\n")
    await source.aclose()


async def test_a_watched_file_reports_every_poll(tmp_path: Path) -> None:
    path = tmp_path / "policies.yaml"
    path.write_text("revision: 1\n")
    source = FileSource(path, interval=0.01)
    updates: asyncio.Queue[Update] = asyncio.Queue()

    async def report(update: Update) -> None:
        await updates.put(update)

    task = asyncio.create_task(source.run(report))
    try:
        assert isinstance(await asyncio.wait_for(updates.get(), 5), NewDocument)
        assert isinstance(await asyncio.wait_for(updates.get(), 5), NoChange)
        tmp = tmp_path / ".policies.yaml.tmp"
        tmp.write_text("revision: 2\n")
        os.replace(tmp, path)  # an editor's atomic rename
        while not isinstance(update := await asyncio.wait_for(updates.get(), 5), NewDocument):
            pass
        assert update.data == b"revision: 2\n"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_control_plane_answers_then_says_nothing_changed(
    control_plane: ControlPlaneHarness,
) -> None:
    source = HttpSource(control_plane.snapshot_url, api_key=control_plane.api_key)
    try:
        first = await source.fetch()
        assert isinstance(first, NewDocument) and b"revision" in first.data
        assert await source.fetch() == NoChange(control_plane.snapshot_url)
    finally:
        await source.aclose()


@pytest.mark.parametrize("key", [None, "pdp_wrong"])
async def test_a_wrong_or_missing_key_is_refused(
    control_plane: ControlPlaneHarness, key: str | None
) -> None:
    source = HttpSource(control_plane.snapshot_url, api_key=key)
    try:
        update = await source.fetch()
    finally:
        await source.aclose()
    assert isinstance(update, Refused) and "HTTP 401" in update.reason


async def test_a_control_plane_that_is_not_there_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = HttpSource(f"http://127.0.0.1:{port}/api/v1/snapshot")
    try:
        update = await source.fetch()
    finally:
        await source.aclose()
    assert isinstance(update, Unreachable) and update.reason


@pytest.mark.parametrize(
    "url", ["http://", "https://[::1/x", "http://h:99999/x", "http://h/\x00", "ftp://h/x"]
)
def test_a_malformed_url_is_refused_up_front(url: str) -> None:
    with pytest.raises(SourceError):
        open_source(url)


async def test_open_source_picks_by_location(tmp_path: Path) -> None:
    sources: list[SnapshotSource] = [
        open_source(str(tmp_path / "p.yaml"), poll_interval=0.5),
        open_source("http://127.0.0.1:1/api/v1/snapshot", max_staleness=6),
    ]
    file_source, http_source = sources
    assert isinstance(file_source, FileSource) and file_source.interval == 0.5
    # A held long poll is silence too: it ends well within the limit.
    assert isinstance(http_source, HttpSource) and http_source.wait == 2
    for source in sources:
        await source.aclose()
