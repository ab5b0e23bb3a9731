"""What runs after each Enforce decision, when asked for: metrics, one DEBUG
log line, the shadow queue and an OpenTelemetry span. The servicer calls
one :class:`AfterDecision` (or nothing at all when all are off)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pdp.engine import Answer, Decision, EnforceInput

from ._metrics import SidecarMetrics
from ._shadow import ShadowEvaluator
from ._tracing import DecisionTracer

__all__ = ["AfterDecision", "decision_log"]

decision_log = logging.getLogger("pdp.decisions")


class AfterDecision:
    """Called by the servicer with each decision, after its answer is built."""

    __slots__ = ("_log", "_metrics", "_shadow", "_tracer")

    def __init__(
        self,
        *,
        metrics: SidecarMetrics | None = None,
        shadow: ShadowEvaluator | None = None,
        tracer: DecisionTracer | None = None,
    ) -> None:
        self._metrics = metrics
        self._shadow = shadow
        self._tracer = tracer
        # Decided once: a DEBUG line per decision is for debugging sessions.
        self._log = decision_log.isEnabledFor(logging.DEBUG)

    @property
    def active(self) -> bool:
        """Whether anything runs; the servicer skips the call otherwise."""
        return any((self._metrics, self._shadow, self._tracer, self._log))

    def __call__(
        self,
        request: EnforceInput,
        decision: Decision,
        decision_id: str,
        now: datetime,
        seconds: float,
        context: Any,
        answers: Mapping[str, Answer],
    ) -> None:
        """``context`` is the call's (its metadata may carry a trace parent);
        ``answers`` are the custom validators' answers the decision used."""
        if self._metrics is not None:
            self._metrics.observe(decision, seconds)
        if self._shadow is not None:
            self._shadow.offer(request, decision, now, answers)
        if self._tracer is not None:
            start_ns = int(now.timestamp() * 1e9)
            metadata: Sequence[tuple[str, Any]] | None = context.invocation_metadata()
            self._tracer.record(
                request, decision, decision_id, start_ns, start_ns + int(seconds * 1e9), metadata
            )
        if self._log:
            policies = [v.policy_name for v in decision.violations]
            decision_log.debug(
                "decision %s: agent %s, %s, policies %s, revision %d, request_id %s",
                decision_id,
                decision.agent.name,
                decision.kind.value,
                policies,
                decision.snapshot_revision,
                request.request_id or "-",
                extra={
                    "decision_id": decision_id,
                    "agent": decision.agent.id,
                    "decision": decision.kind.value,
                    "policies": policies,
                    "revision": decision.snapshot_revision,
                    "request_id": request.request_id,
                },
            )
