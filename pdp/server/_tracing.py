"""OpenTelemetry spans per decision (``pdp serve --otel-traces``), with the
attributes of the GenAI guardrail conventions being drafted by the
OpenTelemetry GenAI SIG (``gen_ai.security.*``, development stability: the
names may change with the draft).

One span per Enforce, a child of the caller's span when the call carries a
W3C ``traceparent``; one ``gen_ai.security.finding`` event per violation.
No request text and no PII value is ever put in a span. The OpenTelemetry
packages are an optional extra (``pip install 'pdp[otel]'``), imported only
when spans are on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pdp.engine import Decision, DecisionKind, EnforceInput

from ._errors import ServerError

__all__ = ["DecisionTracer", "TracingUnavailableError"]

# The draft's verdicts: what the guardrail answered.
_VERDICTS = {
    DecisionKind.ALLOW: "allow",
    DecisionKind.ALLOW_WITH_WARNINGS: "warn",
    DecisionKind.BLOCK: "deny",
    DecisionKind.PENDING_APPROVAL: "deny",  # held until a reviewer approves
    DecisionKind.AGENT_PAUSED: "deny",
}


class TracingUnavailableError(ServerError):
    """``--otel-traces`` without the OpenTelemetry packages installed."""


class DecisionTracer:
    """Records one span per decision with ``tracer_provider`` (default: the
    global one when an SDK configured it, else an SDK provider exporting
    over OTLP/HTTP as the ``OTEL_EXPORTER_OTLP_*`` variables say)."""

    def __init__(self, tracer_provider: Any = None) -> None:
        try:
            from opentelemetry import propagate, trace
        except ImportError:
            raise TracingUnavailableError(
                "--otel-traces needs the OpenTelemetry packages: pip install 'pdp[otel]'"
            ) from None
        self._provider = tracer_provider or _default_provider(trace)
        self._tracer = trace.get_tracer("pdp", tracer_provider=self._provider)
        self._extract = propagate.extract
        self._internal = trace.SpanKind.INTERNAL

    def record(
        self,
        request: EnforceInput,
        decision: Decision,
        decision_id: str,
        start_ns: int,
        end_ns: int,
        metadata: Sequence[tuple[str, Any]] | None,
    ) -> None:
        carrier = {k: v for k, v in metadata or () if isinstance(v, str)}
        parent = self._extract(carrier) if carrier else None
        if request.input is None and request.output is not None:
            target = "llm_output"
        elif request.tool:
            target = "tool_call"
        else:
            target = "llm_input"
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "apply_guardrail",
            "gen_ai.security.guardrail.name": "pdp",
            "gen_ai.security.guardrail.provider.name": "pdp",
            "gen_ai.security.target.type": target,
            "gen_ai.security.verdict.type": _VERDICTS[decision.kind],
            "gen_ai.security.policy.version": str(decision.snapshot_revision),
            "gen_ai.agent.id": decision.agent.id,
            "gen_ai.agent.name": decision.agent.name,
            "pdp.decision": decision.kind.value,
            "pdp.decision.id": decision_id,
        }
        if request.model:
            attributes["gen_ai.request.model"] = request.model
        if request.tool:
            attributes["gen_ai.tool.name"] = request.tool
            attributes["gen_ai.security.target.id"] = request.tool
        violations = decision.violations
        if violations:
            first = violations[0]
            attributes["gen_ai.security.policy.id"] = first.policy_id
            attributes["gen_ai.security.policy.name"] = first.policy_name
            attributes["gen_ai.security.action.type"] = first.mode.wire_name
            attributes["gen_ai.security.verdict.reason"] = first.message
        if decision.masked_input is not None or decision.masked_output is not None:
            attributes["gen_ai.security.content.modified"] = True
        span = self._tracer.start_span(
            f"apply_guardrail pdp {target}",
            context=parent,
            kind=self._internal,
            attributes=attributes,
            start_time=start_ns,
        )
        for v in violations:
            span.add_event(
                "gen_ai.security.finding",
                attributes={
                    "gen_ai.security.policy.id": v.policy_id,
                    "gen_ai.security.policy.name": v.policy_name,
                    "gen_ai.security.risk.category": v.policy_type,
                    "gen_ai.security.risk.severity": v.severity.wire_name,
                    "gen_ai.security.action.type": v.mode.wire_name,
                },
                timestamp=end_ns,
            )
        span.end(end_time=end_ns)

    def shutdown(self) -> None:
        """Flushes the spans still queued (an SDK provider's)."""
        shutdown = getattr(self._provider, "shutdown", None)
        if callable(shutdown):
            shutdown()


def _default_provider(trace: Any) -> Any:
    current = trace.get_tracer_provider()
    if hasattr(current, "add_span_processor"):  # an SDK provider someone configured
        return current
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise TracingUnavailableError(
            "--otel-traces needs the OpenTelemetry SDK and OTLP exporter: pip install 'pdp[otel]'"
        ) from None
    provider = TracerProvider(resource=Resource.create({"service.name": "pdp"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
