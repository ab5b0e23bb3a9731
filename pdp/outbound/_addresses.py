"""What an address is: the ranges an outbound policy tells apart, with the
IPv4 address an IPv6 one carries looked through (IPv4-mapped, NAT64, 6to4,
IPv4-compatible, IPv4-translated), and host names that are IP addresses
written as integers (``2852039166``, ``0xa9fea9fe``,
``0251.0376.0251.0376``, ``169.254.43518``: the forms ``inet_aton``, and
so ``getaddrinfo``, reads as addresses)."""

from __future__ import annotations

import enum
import ipaddress

__all__ = [
    "METADATA_HOSTS",
    "IPAddress",
    "Kind",
    "address_kind",
    "embedded_ipv4",
    "host_address",
    "normal_host",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Kind(enum.Enum):
    """The ranges a destination address falls in, as messages name them."""

    METADATA = "a cloud metadata service address"
    LINK_LOCAL = "a link-local address"
    LOOPBACK = "a loopback address"
    PRIVATE = "a private address"
    PUBLIC = "a public address"
    RESERVED = "a reserved, multicast or broadcast address"


# Names that reach a cloud's instance metadata service whatever they resolve to.
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog"})

_METADATA = (
    ipaddress.ip_network("169.254.169.254/32"),  # AWS, GCP, Azure, Oracle, OpenStack, ...
    ipaddress.ip_network("169.254.170.2/32"),  # AWS ECS task credentials
    ipaddress.ip_network("169.254.170.23/32"),  # AWS EKS pod identity
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud
    ipaddress.ip_network("168.63.129.16/32"),  # Azure's host endpoint (WireServer)
    ipaddress.ip_network("fd00:ec2::/64"),  # AWS's instance services over IPv6 (::254, ::23)
)
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
_LOOPBACK = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("0.0.0.0/8"),  # "this host": a connection reaches loopback
    ipaddress.ip_network("::1/128"),
    ipaddress.ip_network("::/128"),
)
_PRIVATE = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT, cloud VPCs
    ipaddress.ip_network("fc00::/7"),
)
# IPv6 prefixes whose last 32 bits are an IPv4 address a translator or the
# kernel may reach: NAT64 (well-known and local-use), IPv4-compatible
# (deprecated) and IPv4-translated (SIIT).
_CARRYING_LAST_32_BITS = (
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
    ipaddress.ip_network("::/96"),
    ipaddress.ip_network("::ffff:0:0:0/96"),
)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and may reach: IPv4-mapped
    (``::ffff:a.b.c.d``), NAT64 (``64:ff9b::/96``, ``64:ff9b:1::/48``),
    IPv4-compatible (``::a.b.c.d``), IPv4-translated (``::ffff:0:a.b.c.d``)
    or 6to4 (``2002::/16``)."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    bare = ipaddress.IPv6Address(int(address))  # without a zone
    if any(bare in net for net in _CARRYING_LAST_32_BITS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_kind(address: IPAddress) -> Kind:
    """The range ``address`` falls in, looking through an embedded IPv4
    address (the most restricted of the two kinds when both differ)."""
    inner = embedded_ipv4(address)
    if inner is not None:
        return _kind(inner)
    return _kind(address)


def _kind(address: IPAddress) -> Kind:
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    if any(address in net for net in _METADATA):
        return Kind.METADATA
    if any(address in net for net in _LINK_LOCAL):
        return Kind.LINK_LOCAL
    if any(address in net for net in _LOOPBACK):
        return Kind.LOOPBACK
    if any(address in net for net in _PRIVATE):
        return Kind.PRIVATE
    if address.is_global and not address.is_multicast:
        return Kind.PUBLIC
    return Kind.RESERVED


def normal_host(host: str) -> str:
    """A host name as compared: lower case, without brackets or the final
    dot of a fully qualified name."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host[:-1] if host.endswith(".") and not host.endswith("..") else host


def host_address(host: str) -> IPAddress | None:
    """The address ``host`` names when it is an IP address (in any form the
    system resolver reads as one), else None."""
    host = normal_host(host)
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    return _integer_ipv4(host)


def _integer_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``inet_aton``'s forms: one to four parts, each decimal, octal (a
    leading 0) or hexadecimal (0x); the last part fills the bytes left."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        number = _number(part)
        if number is None:
            return None
        numbers.append(number)
    *leading, last = numbers
    if any(n > 0xFF for n in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    value = last
    for i, n in enumerate(leading):
        value |= n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


_DECIMAL = frozenset("0123456789")
_OCTAL = frozenset("01234567")
_HEX = frozenset("0123456789abcdefABCDEF")


def _number(part: str) -> int | None:
    if part[:2] in ("0x", "0X"):
        digits = part[2:]
        if not set(digits) <= _HEX:
            return None
        return int(digits, 16) if digits else 0
    if not part or not set(part) <= _DECIMAL:
        return None
    if len(part) > 1 and part[0] == "0":
        return int(part[1:], 8) if set(part) <= _OCTAL else None
    return int(part, 10)
