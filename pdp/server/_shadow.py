"""Shadow evaluation: a candidate snapshot decides the live requests beside
the active one, after the answer is sent, and where the two differ it is
counted and logged (agent, policies, both decisions; never the request's
text or a PII value).

The hot path only offers each decision to a bounded queue (one append); a
background task evaluates the candidate on what is queued, yielding to the
event loop between requests. When the queue is full, requests are dropped
and counted, never waited for. The candidate reads the same usage as the
active snapshot but charges nothing, and calls no custom validator: it
reuses the answers the active decision got (by policy id); a request whose
candidate needs another answer is not compared, and is counted. The
candidate's costly CEL evaluations go to the sidecar's CEL workers, as the
active snapshot's do."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import NamedTuple

from pdp.engine import (
    NO_ANSWERS,
    NO_CEL_RESULTS,
    Answer,
    CelResult,
    CompiledSnapshot,
    Decision,
    EnforceInput,
    SnapshotError,
    UsageView,
    compile_snapshot,
    parse_document,
    utc_now,
)
from pdp.snapshot import NewDocument, NoDocument, Refused, Unreachable, Update

from ._cel_pool import CelPool

__all__ = ["ShadowEvaluator"]

log = logging.getLogger("pdp.shadow")

_BATCH = 4  # requests evaluated between two yields to the event loop (~0.1 ms)


class _Offered(NamedTuple):
    request: EnforceInput
    decision: Decision
    now: datetime
    answers: Mapping[str, Answer]  # the validators' answers the decision used


def _outcome(decision: Decision) -> tuple[str, tuple[str, ...]]:
    return decision.kind.value, tuple(sorted(v.policy_name for v in decision.violations))


class ShadowEvaluator:
    """Follows a candidate snapshot's source (its :meth:`report` takes the
    source's updates) and evaluates it on the decisions :meth:`offer`\\ ed."""

    def __init__(
        self,
        usage: UsageView,
        *,
        capacity: int = 10_000,
        clock: Callable[[], datetime] = utc_now,
        allow_insecure_validators: bool = False,
        cel: CelPool | None = None,
    ) -> None:
        self.candidate: CompiledSnapshot | None = None
        self._cel = cel
        self.candidate_source = ""
        self.evaluated = 0
        self.dropped = 0
        self.rejections = 0
        self.unanswered = 0  # not compared: the candidate needed a validator's answer
        # (active decision, candidate decision) -> differences counted
        self.differences: dict[tuple[str, str], int] = {}
        self._usage = usage
        self._capacity = capacity
        self._clock = clock
        self._allow_insecure_validators = allow_insecure_validators
        self._queue: deque[_Offered] = deque()
        self._ready = asyncio.Event()
        self._digest = ""
        self._said = ""

    def offer(
        self,
        request: EnforceInput,
        decision: Decision,
        now: datetime,
        answers: Mapping[str, Answer] = NO_ANSWERS,
    ) -> None:
        """Queues one decided request for the candidate. Synchronous and
        O(1): the hot path calls it; nothing is queued without a candidate."""
        if self.candidate is None:
            return
        if len(self._queue) >= self._capacity:
            self.dropped += 1
            return
        self._queue.append(_Offered(request, decision, now, answers))
        self._ready.set()

    async def run(self) -> None:
        """Evaluates what is offered, until cancelled."""
        queue = self._queue
        while True:
            await self._ready.wait()
            self._ready.clear()
            while queue:
                for _ in range(min(_BATCH, len(queue))):
                    offered = queue.popleft()
                    candidate = self.candidate
                    cel = NO_CEL_RESULTS
                    if candidate is not None and candidate.offloads and self._cel is not None:
                        jobs = candidate.cel_jobs(offered.request, self._usage, offered.now)
                        if jobs:
                            cel = await self._cel.evaluate(jobs)
                    self._evaluate(offered, cel)
                await asyncio.sleep(0)

    def _evaluate(self, offered: _Offered, cel: Mapping[str, CelResult]) -> None:
        candidate = self.candidate
        if candidate is None:
            return
        request, active, now, answers = offered
        shadow = candidate.enforce(request, self._usage, now, answers, cel_results=cel)
        if not isinstance(shadow, Decision):
            self.unanswered += 1
            return
        self.evaluated += 1
        was, would = _outcome(active), _outcome(shadow)
        if was == would:
            return
        key = (was[0], would[0])
        self.differences[key] = self.differences.get(key, 0) + 1
        log.info(
            "shadow difference: agent %s: active revision %d %s (policies %s), "
            "candidate revision %d %s (policies %s); request_id %s",
            active.agent.name,
            active.snapshot_revision,
            was[0],
            list(was[1]),
            shadow.snapshot_revision,
            would[0],
            list(would[1]),
            request.request_id or "-",
            extra={
                "agent": active.agent.id,
                "active_decision": was[0],
                "active_policies": list(was[1]),
                "candidate_decision": would[0],
                "candidate_policies": list(would[1]),
                "active_revision": active.snapshot_revision,
                "candidate_revision": shadow.snapshot_revision,
                "request_id": request.request_id,
            },
        )

    async def report(self, update: Update) -> None:
        """Takes what the candidate's source gave (see ``pdp.snapshot``)."""
        if isinstance(update, NewDocument):
            await self._activate(update)
        elif isinstance(update, NoDocument):
            if self.candidate is not None:
                log.info("no candidate snapshot at %s now: shadow evaluation stops", update.source)
            self.candidate, self._digest = None, ""
            self._queue.clear()
        elif isinstance(update, Unreachable | Refused) and self._said != update.reason:
            self._said = update.reason  # said once, not on every retry
            log.warning("candidate snapshot source %s: %s", update.source, update.reason)

    async def _activate(self, update: NewDocument) -> None:
        digest = hashlib.sha256(update.data).hexdigest()
        if digest == self._digest:
            return
        self._digest = digest
        try:
            compiled = await asyncio.to_thread(
                _compile, update.data, self._allow_insecure_validators, self.candidate
            )
        except SnapshotError as exc:
            self.rejections += 1
            log.error(
                "candidate snapshot from %s rejected: %s",
                update.source,
                "; ".join(str(e) for e in exc.errors),
            )
            return
        self.candidate, self.candidate_source = compiled, update.source
        log.info(
            "shadow evaluation of candidate revision %d from %s: %d policies",
            compiled.revision,
            update.source,
            len(compiled.policies),
        )


def _compile(
    data: bytes, allow_insecure_validators: bool, previous: CompiledSnapshot | None
) -> CompiledSnapshot:
    return compile_snapshot(
        parse_document(data),
        allow_insecure_validators=allow_insecure_validators,
        reuse=previous,
    )
