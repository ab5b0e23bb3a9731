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

A receiver of the control plane's webhooks checks each delivery with
``verify_webhook(body, headers, secret)``.
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
    WebhookVerificationError,
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
    TraceResult,
    UsageResult,
    Violation,
)
from ._webhooks import DEFAULT_WEBHOOK_TOLERANCE_S, WebhookHeaders, verify_webhook

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_WEBHOOK_TOLERANCE_S",
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
    "TraceResult",
    "UnimplementedError",
    "UsageResult",
    "Violation",
    "WebhookHeaders",
    "WebhookVerificationError",
    "verify_webhook",
]

__version__ = "0.1.0"
