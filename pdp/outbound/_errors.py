"""The outbound package's exceptions."""

from __future__ import annotations

__all__ = ["OutboundError", "OutboundRefusedError", "OutboundRuleError"]


class OutboundError(Exception):
    """Base of every error the outbound package raises."""


class OutboundRuleError(OutboundError, ValueError):
    """An ``--outbound-allow`` entry that is not a host, ``*.domain``, IP
    address, CIDR range or range name."""


class OutboundRefusedError(OutboundError):
    """The policy refuses the destination: ``host`` as the URL names it and
    ``reason`` (which address, and what it is)."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"outbound request to {host} refused: {reason}")
        self.host = host
        self.reason = reason
