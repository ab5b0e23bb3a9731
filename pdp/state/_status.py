"""The health of a state backend, as AgentStatus and health checks show it."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from pdp.engine import UsagePort

__all__ = ["SQLITE_STATUS", "StateStatus", "UsageBackend"]


class StateStatus(NamedTuple):
    """``backend`` is "sqlite" or "redis"; ``message`` says why it is not
    ``healthy``."""

    backend: str
    healthy: bool
    message: str = ""


SQLITE_STATUS = StateStatus("sqlite", True)


class UsageBackend(UsagePort, Protocol):
    """A usage port as a sidecar runs it: started, stopped, and its health."""

    def status(self) -> StateStatus: ...

    def start(self) -> None: ...

    async def close(self) -> None: ...

    async def settle_expired(self) -> None: ...
