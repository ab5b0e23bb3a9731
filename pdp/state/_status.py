"""The health of a state backend, as AgentStatus and health checks show it."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["SQLITE_STATUS", "StateStatus"]


class StateStatus(NamedTuple):
    """``backend`` is "sqlite" or "redis"; ``message`` says why it is not
    ``healthy``."""

    backend: str
    healthy: bool
    message: str = ""


SQLITE_STATUS = StateStatus("sqlite", True)
