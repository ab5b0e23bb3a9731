"""Python client for the pdp policy decision sidecar.

Ask the sidecar before an agent acts::

    from pdp_client import Client, PolicyBlockedError

    with Client("127.0.0.1:50051") as pdp:
        try:
            result = pdp.enforce_policy("my-chatbot", input=prompt)
        except PolicyBlockedError as blocked:
            ...  # blocked.violations says which policies fired
        else:
            ...  # result.decision is ALLOW, ALLOW_WITH_WARNINGS or PENDING_APPROVAL

``AsyncClient`` has the same methods, as coroutines. Both fail closed.
"""

from ._aio import AsyncClient
from ._bulk import BatchOutcome, EnforceRequest
from ._calls import DEFAULT_TIMEOUT
from ._errors import (
    AgentPausedError,
    CallerRefusedError,
    DeadlineExceededError,
    InvalidRequestError,
    PdpError,
    PolicyBlockedError,
    SidecarUnavailableError,
    UnimplementedError,
)
from ._stream import AsyncEnforceStream, EnforceStream
from ._sync import Client
from ._types import (
    AgentStatusResult,
    ApprovalResult,
    ApprovalState,
    AuthorizeResult,
    Budget,
    ContextItem,
    Decision,
    EnforceResult,
    PiiFinding,
    UsageResult,
    Violation,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "AgentPausedError",
    "AgentStatusResult",
    "ApprovalResult",
    "ApprovalState",
    "AsyncClient",
    "AsyncEnforceStream",
    "AuthorizeResult",
    "BatchOutcome",
    "Budget",
    "CallerRefusedError",
    "Client",
    "ContextItem",
    "DeadlineExceededError",
    "Decision",
    "EnforceRequest",
    "EnforceResult",
    "EnforceStream",
    "InvalidRequestError",
    "PdpError",
    "PiiFinding",
    "PolicyBlockedError",
    "SidecarUnavailableError",
    "UnimplementedError",
    "UsageResult",
    "Violation",
]

__version__ = "0.1.0"
