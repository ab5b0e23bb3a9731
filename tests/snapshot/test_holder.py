"""The holder takes what sources report: it activates new documents, keeps
the last good one when a document or the source refuses, and decides on its
own clock when the source has been silent too long."""

from __future__ import annotations

import logging

import pytest
import yaml

from pdp.snapshot import (
    Active,
    NewDocument,
    NoChange,
    Refused,
    SnapshotHolder,
    Unreachable,
)
from tests._clock import START, ManualClock
from tests.conftest import example_document

SOURCE = "policies.yaml"


def document(revision: int) -> bytes:
    doc = example_document()
    doc["revision"] = revision
    return yaml.safe_dump(doc).encode()


BROKEN = (
    b"revision: 9\npolicies:\n"
    b"  - {name: x, policyType: telepathy, enforcementMode: block, ruleDefinition: {}}\n"
)


class Recorder:
    """What the holder notified, in order."""

    def __init__(self) -> None:
        self.serving: list[bool] = []
        self.activated: list[int] = []

    async def on_serving(self, serving: bool) -> None:
        self.serving.append(serving)

    async def on_activate(self, active: Active, data: bytes) -> None:
        self.activated.append(active.snapshot.revision)


def holder_with(
    clock: ManualClock, recorder: Recorder, max_staleness: float | None = None
) -> SnapshotHolder:
    return SnapshotHolder(
        on_activate=recorder.on_activate,
        on_serving=recorder.on_serving,
        clock=clock,
        max_staleness=max_staleness,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def test_a_new_document_activates_once(clock: ManualClock, recorder: Recorder) -> None:
    holder = holder_with(clock, recorder)
    assert not holder.ready and not holder.serving
    assert await holder.report(NewDocument(SOURCE, document(1)))
    assert holder.active is not None and holder.active.snapshot.revision == 1
    assert holder.active.activated_at == START and holder.last_contact == START
    # The same bytes again (a touched file, a refetch) change nothing.
    assert not await holder.report(NewDocument(SOURCE, document(1)))
    assert await holder.report(NewDocument(SOURCE, document(2)))
    assert recorder.activated == [1, 2]
    assert recorder.serving == [True]


async def test_a_bad_document_is_rejected_and_the_last_good_serves(
    clock: ManualClock, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    holder = holder_with(clock, recorder)
    await holder.report(NewDocument(SOURCE, document(1)))
    clock.advance(seconds=5)
    assert not await holder.report(NewDocument(SOURCE, BROKEN))
    rejection = holder.last_rejection
    assert rejection is not None and rejection.rejected_at == START.replace(second=5)
    assert [e.path for e in rejection.errors] == ["policies[0].policyType"]
    assert holder.active is not None and holder.active.snapshot.revision == 1
    # The same broken bytes are not compiled nor logged again.
    caplog.clear()
    assert not await holder.report(NewDocument(SOURCE, BROKEN))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert await holder.report(NewDocument(SOURCE, document(2)))
    assert holder.last_rejection is None


async def test_a_refusal_is_shown_once_and_cleared_by_the_next_answer(
    clock: ManualClock, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    holder = holder_with(clock, recorder)
    await holder.report(NewDocument(SOURCE, document(1)))
    refused = Refused(SOURCE, "HTTP 401 from the control plane: unknown API key")
    for _ in range(3):
        clock.advance(seconds=1)
        assert not await holder.report(refused)
    rejection = holder.last_rejection
    assert rejection is not None and "401" in rejection.errors[0].message
    assert rejection.rejected_at == START.replace(second=1)  # the first time, kept
    assert len([r for r in caplog.records if "refuses" in r.getMessage()]) == 1
    assert holder.active is not None and holder.active.snapshot.revision == 1
    await holder.report(NoChange(SOURCE))
    assert holder.last_rejection is None


async def test_restoring_keeps_the_sources_rejection_visible(
    clock: ManualClock, recorder: Recorder
) -> None:
    holder = holder_with(clock, recorder)
    await holder.report(NewDocument(SOURCE, BROKEN))
    assert not holder.ready and recorder.serving == [False]
    assert await holder.restore(document(1), "policies.yaml (last good, persisted)")
    assert holder.serving and recorder.serving == [False, True]
    assert holder.last_rejection is not None
    assert holder.last_rejection.errors[0].path == "policies[0].policyType"
    # The source's unchanged file stays rejected without being compiled again.
    assert not await holder.report(NewDocument(SOURCE, BROKEN))
    assert holder.active is not None and holder.active.snapshot.revision == 1


async def test_staleness_is_counted_on_the_holders_clock(
    clock: ManualClock, recorder: Recorder
) -> None:
    holder = holder_with(clock, recorder, max_staleness=30)
    await holder.report(NewDocument(SOURCE, document(1)))
    clock.advance(seconds=20)
    await holder.report(NoChange(SOURCE))  # an answer: the count starts again
    assert holder.last_contact == clock.now
    clock.advance(seconds=20)
    await holder.report(Unreachable(SOURCE, "connection refused"))  # silence
    assert holder.unreachable == "connection refused"
    assert not holder.stale and await holder.refresh()
    clock.advance(seconds=10, microseconds=1)
    assert holder.stale and not holder.serving
    assert recorder.serving == [True]  # not notified until someone looks
    assert not await holder.refresh()
    assert recorder.serving == [True, False]
    assert not await holder.refresh()
    assert recorder.serving == [True, False]  # a change is notified once
    # A refusal is not an answer that keeps the snapshot fresh.
    await holder.report(Refused(SOURCE, "HTTP 403 from the control plane: key revoked"))
    assert holder.stale and holder.unreachable is None
    await holder.report(NoChange(SOURCE))
    assert not holder.stale and recorder.serving == [True, False, True]


async def test_silence_before_the_first_answer_counts_from_the_start(
    clock: ManualClock, recorder: Recorder
) -> None:
    holder = holder_with(clock, recorder, max_staleness=10)
    assert holder.last_contact is None
    await holder.restore(document(1), "last good")
    assert holder.serving
    clock.advance(seconds=11)
    assert holder.stale and not await holder.refresh()


async def test_without_a_limit_nothing_goes_stale(clock: ManualClock, recorder: Recorder) -> None:
    holder = holder_with(clock, recorder)
    await holder.report(NewDocument(SOURCE, document(1)))
    await holder.report(Unreachable(SOURCE, "gone"))
    clock.advance(days=3650)
    assert not holder.stale and await holder.refresh()
    await holder.watch_staleness()  # returns at once: nothing to watch


def _paused(revision: int, *, broken: bool = False) -> bytes:
    doc = example_document()
    doc["revision"] = revision
    doc["agents"][0]["paused"] = True
    if broken:
        doc["policies"].append(
            {
                "name": "x",
                "policyType": "telepathy",
                "enforcementMode": "block",
                "ruleDefinition": {},
            }
        )
    return yaml.safe_dump(doc).encode()


async def test_going_back_to_the_active_document_after_a_rejection_is_current_again(
    clock: ManualClock, recorder: Recorder
) -> None:
    holder = holder_with(clock, recorder, max_staleness=30)
    await holder.report(NewDocument(SOURCE, document(1)))
    await holder.report(NewDocument(SOURCE, _paused(2, broken=True)))
    active = holder.active
    assert active is not None and active.snapshot.revision == 1 and active.pause_revision == 2
    assert active.snapshot.resolve_agent("my-chatbot").paused  # the pause holds
    clock.advance(seconds=31)
    await holder.report(NoChange(SOURCE))
    assert holder.stale  # a rejected document is no fresher than silence

    # The file is put back as it was: the same bytes as the active document.
    await holder.report(NewDocument(SOURCE, document(1)))
    active = holder.active
    assert active is not None and active.pause_revision == 1
    assert not active.snapshot.resolve_agent("my-chatbot").paused
    assert holder.last_rejection is None and not holder.stale
