"""Listen addresses as ``pdp serve --listen`` and ``pdp control --listen``
take them: ``host:port``, ``[v6]:port``, and for gRPC ``unix:/path``. Pure
parsing (nothing is resolved or bound here), so every layer can share it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["ListenAddress", "parse_listen_address"]

# sun_path holds 108 bytes on Linux, the terminating NUL included.
_MAX_SOCKET_PATH_BYTES = 107
_MAX_HOST_CHARS = 253


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """A TCP ``host`` (IPv6 without brackets) and ``port``, or a Unix socket
    ``path``. ``str()`` gives it back in the form it is written."""

    host: str = ""
    port: int = 0
    path: str = ""

    @property
    def is_unix(self) -> bool:
        return bool(self.path)

    def with_port(self, port: int) -> ListenAddress:
        """The same host on ``port`` (the one bound when 0 was asked)."""
        return ListenAddress(self.host, port, self.path)

    def __str__(self) -> str:
        if self.path:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_listen_address(value: str, *, unix: bool = True) -> ListenAddress:
    """Reads ``host:port``, ``[v6]:port`` or (when ``unix``) ``unix:/path``;
    port 0 asks for a free port. Raises ValueError saying what is wrong."""
    if value.startswith("unix:"):
        if not unix:
            raise ValueError(f"{value!r}: Unix sockets are not supported here; use host:port")
        return ListenAddress(path=_socket_path(value[len("unix:") :]))
    expected = "host:port, [v6]:port or unix:/path" if unix else "host:port or [v6]:port"
    host, sep, port = value.rpartition(":")
    if not sep:
        raise ValueError(f"{value!r} has no port: expected {expected}")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"{value!r}: no closing ']' after the IPv6 address")
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{value!r}: {host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError(f"{value!r}: an IPv6 address goes in brackets, as in [::1]:50051")
    elif not host:
        raise ValueError(f"{value!r} has no host (0.0.0.0 listens on every interface)")
    elif len(host) > _MAX_HOST_CHARS or not all(c.isprintable() and not c.isspace() for c in host):
        raise ValueError(f"{value!r}: {host!r} is not a host name or address")
    if not (port.isascii() and port.isdigit()):
        raise ValueError(f"{value!r}: the port {port!r} is not a number")
    if int(port) > 65535:
        raise ValueError(f"{value!r}: the port {int(port)} is out of range (0 to 65535)")
    return ListenAddress(host=host, port=int(port))


def _socket_path(path: str) -> str:
    if not path:
        raise ValueError("unix: needs a socket path, as in unix:/run/pdp.sock")
    if "\x00" in path:
        raise ValueError("the socket path contains a NUL character")
    if len(path.encode("utf-8", "surrogateescape")) > _MAX_SOCKET_PATH_BYTES:
        raise ValueError(
            f"the socket path is longer than {_MAX_SOCKET_PATH_BYTES} bytes, "
            "the limit of a Unix socket"
        )
    return path
