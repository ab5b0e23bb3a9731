"""Where a sidecar keeps its state, from the ``--state`` option: a SQLite
file path, or a Redis server's URL (``redis://HOST:PORT/DB``, ``rediss://``
for TLS).

Anything that starts like a URL (a scheme and a colon) is read as one and
never falls back to a file path: ``redis:/host:6379/0`` is an error, not a
file in a folder named ``redis:``. A password in the URL is refused: it
would show in the process list; it comes from the environment or a file.
"""

from __future__ import annotations

from dataclasses import dataclass

from pdp.state._server_url import SqliteLocation, file_or_scheme, server_url

__all__ = [
    "REDIS_PASSWORD_ENV",
    "RedisLocation",
    "SqliteLocation",
    "StateLocation",
    "parse_state_location",
]

REDIS_PASSWORD_ENV = "PDP_REDIS_PASSWORD"
_DEFAULT_PORT = 6379


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
    scheme = file_or_scheme(value, ("redis", "rediss"), "redis://HOST:PORT/DB (rediss:// for TLS)")
    if isinstance(scheme, SqliteLocation):
        return scheme
    form = f"expected {scheme}://HOST:PORT/DB, e.g. {scheme}://127.0.0.1:6379/0"
    url = server_url(
        value,
        scheme,
        form=form,
        password_from=f"set {REDIS_PASSWORD_ENV} or use --state-password-file",
    )
    if not url.path:
        db = 0
    elif url.path.isascii() and url.path.isdigit() and len(url.path) <= 5:
        db = int(url.path)
    else:
        raise ValueError(f"malformed URL: the database {url.path!r} is not a number; {form}")
    return RedisLocation(url.host, url.port or _DEFAULT_PORT, db, scheme == "rediss", url.username)
