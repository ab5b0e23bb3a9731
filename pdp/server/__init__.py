"""The gRPC sidecar: servicers that translate between the wire and the
engine, health, reflection, and the sidecar's start and graceful stop.

Exception tree::

    ServerError
    ├── RequestError             a bad request: gRPC code, field and reason
    ├── HttpCallError            a custom validator's call got no usable HTTP answer
    └── TracingUnavailableError  --otel-traces without the OpenTelemetry packages
"""

from ._app import LIVENESS_SERVICE, STATE_HEALTH_SERVICE, ServeOptions, Sidecar
from ._errors import RequestError, ServerError
from ._servicer import SERVICE as DECISION_SERVICE
from ._servicer import AnswerBuilder, handler_name
from ._tracing import TracingUnavailableError
from ._translate import DECISION_VALUES, MODE_VALUES, SEVERITY_VALUES

__all__ = [
    "DECISION_SERVICE",
    "DECISION_VALUES",
    "LIVENESS_SERVICE",
    "MODE_VALUES",
    "SEVERITY_VALUES",
    "STATE_HEALTH_SERVICE",
    "AnswerBuilder",
    "RequestError",
    "ServeOptions",
    "ServerError",
    "Sidecar",
    "TracingUnavailableError",
    "handler_name",
]
