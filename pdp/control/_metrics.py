"""The control plane's Prometheus metrics: requests by route, method and
status, long polls waiting, the published revision, whether a candidate
is published, and webhook delivery attempts by outcome. Route labels are
the route templates (``/api/v1/agents/{agent_id}``), ``unmatched`` for a
request no route took, so cardinality stays bounded."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ._control import ControlPlane
from ._guard import App, Message_, Receive, Scope, Send

__all__ = ["ControlMetrics", "RequestMetrics"]


class ControlMetrics:
    """A Prometheus collector; :class:`RequestMetrics` counts the requests."""

    def __init__(self, control: ControlPlane) -> None:
        self.control = control
        self.requests: dict[tuple[str, str, str], int] = {}

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "pdp_control_requests",
            "HTTP requests answered, by route template, method and status",
            labels=("route", "method", "status"),
        )
        for labels, count in sorted(self.requests.items()):
            requests.add_metric(labels, count)
        yield requests
        control = self.control
        yield GaugeMetricFamily(
            "pdp_control_long_polls_waiting",
            "Snapshot requests held open until the revision changes",
            value=control.long_polls_waiting,
        )
        yield GaugeMetricFamily(
            "pdp_snapshot_revision", "The snapshot revision published now", value=control.revision
        )
        yield GaugeMetricFamily(
            "pdp_snapshot_candidate",
            "1 while a candidate snapshot is published for shadow evaluation",
            value=control.candidate is not None,
        )
        sender = control.webhook_sender
        if sender is not None:
            attempts = CounterMetricFamily(
                "pdp_control_webhook_attempts",
                "Webhook delivery attempts, by outcome: delivered (a 2xx answer), retried "
                "(another attempt is scheduled), failed (the retry schedule ran out)",
                labels=("outcome",),
            )
            for outcome, count in sorted(sender.outcomes.items()):
                attempts.add_metric((outcome,), count)
            yield attempts
            yield GaugeMetricFamily(
                "pdp_control_webhook_attempts_in_flight",
                "Webhook delivery attempts waiting for an answer now",
                value=sender.in_flight,
            )
            yield CounterMetricFamily(
                "pdp_control_webhook_leases_taken_over",
                "Webhook deliveries this control plane took over after another's lease "
                "expired (that control plane died during the attempt)",
                value=sender.taken_over,
            )


class RequestMetrics:
    """ASGI middleware counting each answered request in ``metrics``."""

    def __init__(self, app: App, metrics: ControlMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def record_status(message: Message_) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            key = (_template(scope), str(scope["method"]), str(status))
            counts = self.metrics.requests
            counts[key] = counts.get(key, 0) + 1


def _template(scope: Scope) -> str:
    """The matched route's path with its parameters named, as declared:
    ``/api/v1/policies/{policy_id}``; ``unmatched`` when no route took it."""
    if "endpoint" not in scope:
        return "unmatched"
    names = {str(v): k for k, v in dict(scope.get("path_params") or {}).items()}
    parts = str(scope["path"]).split("/")
    return "/".join(f"{{{names[p]}}}" if p in names else p for p in parts)
