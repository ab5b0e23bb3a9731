"""Where pdp's outbound requests may go: custom validators called by the
sidecar and webhooks delivered by the control plane go to URLs that policy
authors and API users write, so a URL must not reach what only the node
should (a cloud's instance metadata service and its credentials).

:class:`OutboundPolicy` says which destinations are allowed (by default all
but link-local addresses and cloud metadata services, however written:
IPv4-mapped or NAT64 IPv6, integer hosts); :func:`open_connection` (asyncio
streams) and :func:`outbound_transport` (httpx) connect only there, to the
address that was checked, keeping the URL's host name for TLS and the
``Host`` header.

Exception tree::

    OutboundError
    ├── OutboundRuleError     an --outbound-allow entry that does not parse (a ValueError)
    └── OutboundRefusedError  a destination the policy refuses: .host, .reason
"""

from ._addresses import Kind, address_kind, host_address
from ._connect import open_connection
from ._errors import OutboundError, OutboundRefusedError, OutboundRuleError
from ._policy import DEFAULT_ALLOW, RANGE_NAMES, OutboundPolicy, Resolver, system_resolver
from ._transport import OutboundBackend, outbound_transport

__all__ = [
    "DEFAULT_ALLOW",
    "RANGE_NAMES",
    "Kind",
    "OutboundBackend",
    "OutboundError",
    "OutboundPolicy",
    "OutboundRefusedError",
    "OutboundRuleError",
    "Resolver",
    "address_kind",
    "host_address",
    "open_connection",
    "outbound_transport",
    "system_resolver",
]
