"""Where the control plane keeps its database, from ``--db``: a SQLite file
path (the default), or a PostgreSQL server's URL
(``postgresql://USER@HOST:PORT/DATABASE``, ``postgres://`` too).

Anything that starts like a URL (a scheme and a colon) is read as one and
never falls back to a file path. A password in the URL is refused: it would
show in the process list; it comes from ``PDP_DB_PASSWORD`` or a file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "DB_PASSWORD_ENV",
    "DbLocation",
    "PostgresLocation",
    "SqliteLocation",
    "parse_db_location",
]

DB_PASSWORD_ENV = "PDP_DB_PASSWORD"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_DEFAULT_PORT = 5432
_SSLMODES = ("disable", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True, slots=True)
class SqliteLocation:
    path: str

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True, slots=True)
class PostgresLocation:
    """A PostgreSQL database; ``password`` never comes from the URL."""

    host: str
    port: int
    database: str
    user: str
    sslmode: str = "prefer"
    password: str | None = None

    def __str__(self) -> str:  # never the password
        host = f"[{self.host}]" if ":" in self.host else self.host
        mode = "" if self.sslmode == "prefer" else f"?sslmode={self.sslmode}"
        return f"postgresql://{self.user}@{host}:{self.port}/{self.database}{mode}"

    def __repr__(self) -> str:
        return f"PostgresLocation({str(self)!r})"


DbLocation = SqliteLocation | PostgresLocation


def parse_db_location(value: str) -> DbLocation:
    """The database ``value`` names; ValueError saying what is wrong."""
    if not value or value.isspace():
        raise ValueError("must not be empty")
    if not _SCHEME.match(value):
        return SqliteLocation(value)
    scheme = value.split(":", 1)[0].lower()
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(
            f"unsupported scheme {scheme!r}: give a SQLite file path, or "
            "postgresql://USER@HOST:PORT/DATABASE; a file name with a colon is written ./NAME"
        )
    form = "expected postgresql://USER@HOST:PORT/DATABASE, e.g. postgresql://pdp@127.0.0.1:5432/pdp"
    if not value[len(scheme) + 1 :].startswith("//"):
        raise ValueError(f"malformed URL: {form}")
    parts = urlsplit(value)
    if parts.password is not None:
        raise ValueError(
            "a password in the URL is refused (it would show in the process list): "
            f"set {DB_PASSWORD_ENV} or use --db-password-file"
        )
    if parts.fragment:
        raise ValueError(f"malformed URL: no fragment is read; {form}")
    host = parts.hostname
    if not host:
        raise ValueError(f"malformed URL: no host; {form}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("malformed URL: the port is not a number 1-65535") from None
    if port == 0:
        raise ValueError("malformed URL: the port is not a number 1-65535")
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ValueError(f"malformed URL: name one database; {form}")
    if not parts.username:
        raise ValueError(f"malformed URL: no user; {form}")
    sslmode = "prefer"
    for key, given in parse_qsl(parts.query, keep_blank_values=True):
        if key != "sslmode":
            raise ValueError(f"malformed URL: unknown parameter {key!r} (only sslmode is read)")
        if given not in _SSLMODES:
            raise ValueError(f"malformed URL: sslmode must be one of {', '.join(_SSLMODES)}")
        sslmode = given
    return PostgresLocation(host, port or _DEFAULT_PORT, database, unquote(parts.username), sslmode)
