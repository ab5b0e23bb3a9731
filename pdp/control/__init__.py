"""The control plane: a REST API (FastAPI) that stores policies, agents,
grants and API keys in SQLite (or PostgreSQL, shared by several control
planes) and publishes the snapshot document that
sidecars follow (``GET /api/v1/snapshot``, ETag and long polling).

Policies, agents and grants are typed models (``Policy``, ``Agent``,
``Grant``) shared by the database, the write plans and the answers. Every
write to them is validated by compiling the candidate snapshot with the
engine, and bumps the snapshot revision in the same transaction
(``Store.transaction``); writes that the snapshot does not publish (API
keys, sidecar events, approvals) go through ``Store.side_transaction`` and
leave the revision alone. API keys have roles (``Role``); each route admits
some. Events from sidecars (and the control plane's own) reach the handlers
registered on ``ControlPlane.events`` (``EventRegistry.on_event``).

Exception tree::

    ControlError
    ├── StoreError                  the database cannot be opened, read or written
    │   ├── DatabaseUnavailableError  the database does not answer (503)
    │   └── StaleRevisionError      another control plane on the database wrote first
    └── ApiError                    an answer: .status, .code, .message, .field
        ├── BadRequestError         400 malformed JSON
        ├── UnauthorizedError       401 missing or unknown API key
        ├── ForbiddenError          403 expired or revoked API key, or a key
        │                           whose role the route does not admit
        ├── NotFoundError           404 unknown id or name
        ├── ConflictError           409 duplicate name, or a change that breaks another object
        ├── PayloadTooLargeError    413 body over the limit
        ├── UnsupportedMediaTypeError  415 body that is not JSON
        ├── ValidationFailedError   422 bad field; .problems lists every FieldProblem
        └── ServiceUnavailableError 503 shutting down, or a stored snapshot that does not compile
"""

from ._app import create_app
from ._auth import API_KEY_HEADER, ApiKey, create_api_key, revoke_api_keys
from ._connections import ConnectionLimits
from ._control import ControlPlane
from ._errors import (
    ApiError,
    BadRequestError,
    ConflictError,
    ControlError,
    DatabaseUnavailableError,
    FieldProblem,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    StaleRevisionError,
    StoreError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from ._events import Event, EventHandler, EventRegistry
from ._location import (
    DB_PASSWORD_ENV,
    DbLocation,
    PostgresLocation,
    SqliteLocation,
    parse_db_location,
)
from ._objects import Agent, Grant, Policy
from ._roles import Caller, Role
from ._schemas import AgentDetail
from ._server import ControlOptions, ControlServer
from ._store import SideTransaction, SnapshotTransaction, Store

__all__ = [
    "API_KEY_HEADER",
    "DB_PASSWORD_ENV",
    "Agent",
    "AgentDetail",
    "ApiError",
    "ApiKey",
    "BadRequestError",
    "Caller",
    "ConflictError",
    "ConnectionLimits",
    "ControlError",
    "ControlOptions",
    "ControlPlane",
    "ControlServer",
    "DatabaseUnavailableError",
    "DbLocation",
    "Event",
    "EventHandler",
    "EventRegistry",
    "FieldProblem",
    "ForbiddenError",
    "Grant",
    "NotFoundError",
    "PayloadTooLargeError",
    "Policy",
    "PostgresLocation",
    "Role",
    "ServiceUnavailableError",
    "SideTransaction",
    "SnapshotTransaction",
    "SqliteLocation",
    "StaleRevisionError",
    "Store",
    "StoreError",
    "UnauthorizedError",
    "UnsupportedMediaTypeError",
    "ValidationFailedError",
    "create_api_key",
    "create_app",
    "parse_db_location",
    "revoke_api_keys",
]
