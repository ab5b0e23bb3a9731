"""Where a sidecar keeps its state, from the ``--state`` option: a SQLite
file path, or a Redis server's URL (``redis://HOST:PORT/DB``, ``rediss://``
for TLS).

Anything that starts like a URL (a scheme and a colon) is read as one and
never falls back to a file path: ``redis:/host:6379/0`` is an error, not a
file in a folder named ``redis:``. A password in the URL is refused: it
would show in the process list; it comes from the environment or a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["RedisLocation", "SqliteLocation", "StateLocation", "parse_state_location"]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_DEFAULT_PORT = 6379


@dataclass(frozen=True, slots=True)
class SqliteLocation:
    """A SQLite state file."""

    path: str

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True, slots=True)
class RedisLocation:
    """A Redis server and database; ``tls`` for ``rediss://``."""

    host: str
    port: int
    db: int
    tls: bool
    username: str | None = None

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'rediss' if self.tls else 'redis'}://{user}{host}:{self.port}/{self.db}"


StateLocation = SqliteLocation | RedisLocation


def parse_state_location(value: str) -> StateLocation:
    """The location ``value`` names; ValueError saying what is wrong."""
    if not value or value.isspace():
        raise ValueError("must not be empty")
    if not _SCHEME.match(value):
        return SqliteLocation(value)
    scheme = value.split(":", 1)[0].lower()
    if scheme not in ("redis", "rediss"):
        raise ValueError(
            f"unsupported scheme {scheme!r}: give a SQLite file path, or "
            "redis://HOST:PORT/DB (rediss:// for TLS); a file name with a colon "
            "is written ./NAME"
        )
    return _parse_redis(value, scheme)


def _parse_redis(value: str, scheme: str) -> RedisLocation:
    form = f"expected {scheme}://HOST:PORT/DB, e.g. {scheme}://127.0.0.1:6379/0"
    if not value[len(scheme) + 1 :].startswith("//"):
        raise ValueError(f"malformed URL: {form}")
    parts = urlsplit(value)
    if parts.password is not None:
        raise ValueError(
            "a password in the URL is refused (it would show in the process list): "
            "set PDP_REDIS_PASSWORD or use --state-password-file"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"malformed URL: no query or fragment is read; {form}")
    host = parts.hostname
    if not host:
        raise ValueError(f"malformed URL: no host; {form}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("malformed URL: the port is not a number 1-65535") from None
    if port == 0:
        raise ValueError("malformed URL: the port is not a number 1-65535")
    path = parts.path.lstrip("/")
    if not path:
        db = 0
    elif path.isascii() and path.isdigit() and len(path) <= 5:
        db = int(path)
    else:
        raise ValueError(f"malformed URL: the database {path!r} is not a number; {form}")
    username = unquote(parts.username) if parts.username else None
    return RedisLocation(host, port or _DEFAULT_PORT, db, scheme == "rediss", username)
