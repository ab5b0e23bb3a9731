"""Which destinations pdp's outbound requests may reach.

By default every destination but link-local addresses (169.254.0.0/16,
fe80::/10) and cloud metadata services (169.254.169.254, fd00:ec2::254,
100.100.100.200, 168.63.129.16, ``metadata.google.internal``; the list is
in ``_addresses``): loopback, private and
public addresses, as ``--outbound-allow loopback,private,public`` would
say. An operator's ``--outbound-allow`` entries replace that list: range
names (``loopback``, ``private``, ``public``), host names, ``*.domain``
(any name under the domain), IP addresses and CIDR ranges. A link-local,
metadata or reserved address is allowed only by an address or range entry
that covers it; a named host reaches loopback, private and public
addresses whatever range names are listed.

Every address a name resolves to is checked (a name with one refused
address is refused), and the connection goes to a checked address:
nothing is resolved twice, so a name that resolves elsewhere the second
time (DNS rebinding) gains nothing."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ._addresses import (
    METADATA_HOSTS,
    IPAddress,
    Kind,
    address_kind,
    embedded_ipv4,
    host_address,
    normal_host,
)
from ._errors import OutboundRefusedError, OutboundRuleError

__all__ = ["DEFAULT_ALLOW", "RANGE_NAMES", "OutboundPolicy", "Resolver", "system_resolver"]

# What a name resolves to: its addresses as text, in the order to try them.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

RANGE_NAMES: dict[str, Kind] = {
    "loopback": Kind.LOOPBACK,
    "private": Kind.PRIVATE,
    "public": Kind.PUBLIC,
}
DEFAULT_ALLOW = ("loopback", "private", "public")
_NAMED_HOST_KINDS = frozenset({Kind.LOOPBACK, Kind.PRIVATE, Kind.PUBLIC})
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """The system's answer (``getaddrinfo``), each address once, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _is_host_name(name: str) -> bool:
    labels = name.split(".")
    return len(name) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Build one with :meth:`allowing`; the default allows what
    ``DEFAULT_ALLOW`` names. ``resolver`` turns a name into addresses."""

    kinds: frozenset[Kind] = frozenset(RANGE_NAMES[name] for name in DEFAULT_ALLOW)
    networks: tuple[_Network, ...] = ()
    hosts: frozenset[str] = frozenset()
    domains: tuple[str, ...] = ()  # ".example.com" for *.example.com
    entries: tuple[str, ...] = DEFAULT_ALLOW
    resolver: Resolver = field(default=system_resolver, compare=False, repr=False)

    @classmethod
    def allowing(
        cls, entries: Iterable[str] | None, resolver: Resolver = system_resolver
    ) -> OutboundPolicy:
        """The policy of ``--outbound-allow`` entries (each may hold several,
        comma-separated); None: the default. OutboundRuleError names a bad
        entry."""
        if entries is None:
            return cls(resolver=resolver)
        kinds: set[Kind] = set()
        networks: list[_Network] = []
        hosts: set[str] = set()
        domains: list[str] = []
        given: list[str] = []
        for entry in (part.strip() for text in entries for part in text.split(",")):
            if not entry:
                raise OutboundRuleError("an empty --outbound-allow entry")
            given.append(entry)
            name = normal_host(entry)
            if name in RANGE_NAMES:
                kinds.add(RANGE_NAMES[name])
            elif name.startswith("*."):
                if not _is_host_name(name[2:]):
                    raise OutboundRuleError(f"--outbound-allow {entry!r}: not a *.domain")
                domains.append(name[1:])
            elif (address := host_address(name)) is not None:
                networks.append(ipaddress.ip_network(str(address).split("%", 1)[0]))
            elif "/" in name and host_address(name.split("/", 1)[0]) is not None:
                try:
                    networks.append(ipaddress.ip_network(name, strict=False))
                except ValueError as exc:
                    raise OutboundRuleError(f"--outbound-allow {entry!r}: {exc}") from None
            elif _is_host_name(name):
                hosts.add(name)
            else:
                raise OutboundRuleError(
                    f"--outbound-allow {entry!r}: not a host, *.domain, IP address, CIDR "
                    f"range or one of {', '.join(RANGE_NAMES)}"
                )
        return cls(
            frozenset(kinds),
            tuple(networks),
            frozenset(hosts),
            tuple(domains),
            tuple(given),
            resolver,
        )

    def _named(self, host: str) -> bool:
        return host in self.hosts or any(host.endswith(suffix) for suffix in self.domains)

    def _covered(self, address: IPAddress) -> bool:
        inner = embedded_ipv4(address)
        return any(address in net or (inner is not None and inner in net) for net in self.networks)

    def address_refusal(self, host: str, address: IPAddress) -> str | None:
        """Why ``address`` (one of ``host``'s) may not be reached, or None."""
        if self._covered(address):
            return None
        kind = address_kind(address)
        inner = embedded_ipv4(address)
        shown = f"{address} ({inner})" if inner is not None else str(address)
        if kind in self.kinds:
            return None
        if kind in _NAMED_HOST_KINDS and self._named(normal_host(host)):
            return None
        if kind in _NAMED_HOST_KINDS:
            allowed = ", ".join(self.entries)
            return f"{shown} is {kind.value}, which --outbound-allow ({allowed}) does not allow"
        return f"{shown} is {kind.value}; only an --outbound-allow address or range reaches it"

    def name_refusal(self, host: str) -> str | None:
        """Why the name ``host`` is refused before any lookup, or None."""
        name = normal_host(host)
        if name in METADATA_HOSTS and name not in self.hosts:
            return f"{name} is a cloud metadata service"
        return None

    def url_refusal(self, url: str) -> str | None:
        """Why a request to ``url`` is refused whatever DNS answers (its host
        is an address, or a refused name), or None. For checking URLs where
        they are written; a name is checked when it is resolved."""
        try:
            host = urlsplit(url).hostname
        except ValueError:
            return None
        if not host:
            return None
        if (why := self.name_refusal(host)) is not None:
            return why
        address = host_address(host)
        return None if address is None else self.address_refusal(host, address)

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` to connect to, every one checked.
        OutboundRefusedError when the name or any of its addresses is
        refused; OSError when it does not resolve."""
        if (why := self.name_refusal(host)) is not None:
            raise OutboundRefusedError(host, why)
        literal = host_address(host)
        if literal is not None:
            found: Sequence[str] = [str(literal)]
        else:
            found = await self.resolver(host, port)  # as written: a final dot is meaningful to DNS
            if not found:
                raise OSError(f"{host} resolves to no address")
        for text in found:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise OutboundRefusedError(host, f"resolves to {text!r}, not an address") from None
            if (why := self.address_refusal(host, address)) is not None:
                raise OutboundRefusedError(host, why)
        return list(found)
