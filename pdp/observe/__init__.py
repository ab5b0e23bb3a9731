"""What the sidecar and the control plane share to be observed: a Prometheus
registry with the process metrics, served at ``/metrics`` on its own
address (``--metrics-listen``) by a small HTTP server on the event loop, so
that a scrape reads the servers' state on the thread that changes it.

Exception tree::

    ObserveError   the metrics endpoint cannot listen
"""

from ._metrics_http import MetricsServer, ObserveError, new_registry

__all__ = ["MetricsServer", "ObserveError", "new_registry"]
