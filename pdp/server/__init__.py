"""The gRPC sidecar: servicers that translate between the wire and the
engine, health, reflection, and the sidecar's start and graceful stop.

Exception tree::

    ServerError
    ├── RequestError    a bad request: gRPC code, field and reason
    └── HttpCallError   a custom validator's call got no usable HTTP answer
"""

from ._app import ServeOptions, Sidecar
from ._errors import RequestError, ServerError

__all__ = ["RequestError", "ServeOptions", "ServerError", "Sidecar"]
