"""Where the control plane keeps its database, from ``--db``: a SQLite file
path (the default), or a PostgreSQL server's URL
(``postgresql://USER@HOST:PORT/DATABASE``, ``postgres://`` too).

Anything that starts like a URL (a scheme and a colon) is read as one and
never falls back to a file path. A password in the URL is refused: it would
show in the process list; it comes from ``PDP_DB_PASSWORD`` or a file."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from pdp.state import SqliteLocation, file_or_scheme, server_url

__all__ = [
    "DB_PASSWORD_ENV",
    "DbLocation",
    "PostgresLocation",
    "SqliteLocation",
    "parse_db_location",
]

DB_PASSWORD_ENV = "PDP_DB_PASSWORD"
_DEFAULT_PORT = 5432
_SSLMODES = ("disable", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True, slots=True)
class PostgresLocation:
    """A PostgreSQL database; ``password`` never comes from the URL.
    ``ca_file`` (PEM) is the only trust for the server's certificate when
    set: TLS is then required and the host name checked (except with
    ``sslmode=verify-ca``)."""

    host: str
    port: int
    database: str
    user: str
    sslmode: str = "prefer"
    password: str | None = None
    ca_file: str | None = None

    def __str__(self) -> str:  # never the password
        host = f"[{self.host}]" if ":" in self.host else self.host
        mode = "" if self.sslmode == "prefer" else f"?sslmode={self.sslmode}"
        return f"postgresql://{self.user}@{host}:{self.port}/{self.database}{mode}"

    def __repr__(self) -> str:
        return f"PostgresLocation({str(self)!r})"


DbLocation = SqliteLocation | PostgresLocation


def parse_db_location(value: str) -> DbLocation:
    """The database ``value`` names; ValueError saying what is wrong."""
    form = "expected postgresql://USER@HOST:PORT/DATABASE, e.g. postgresql://pdp@127.0.0.1:5432/pdp"
    scheme = file_or_scheme(
        value, ("postgresql", "postgres"), "postgresql://USER@HOST:PORT/DATABASE"
    )
    if isinstance(scheme, SqliteLocation):
        return scheme
    url = server_url(
        value,
        scheme,
        form=form,
        password_from=f"set {DB_PASSWORD_ENV} or use --db-password-file",
        query=True,
    )
    database = unquote(url.path)
    if not database or "/" in database:
        raise ValueError(f"malformed URL: name one database; {form}")
    if not url.username:
        raise ValueError(f"malformed URL: no user; {form}")
    sslmode = "prefer"
    for key, given in parse_qsl(url.query, keep_blank_values=True):
        if key != "sslmode":
            raise ValueError(f"malformed URL: unknown parameter {key!r} (only sslmode is read)")
        if given not in _SSLMODES:
            raise ValueError(f"malformed URL: sslmode must be one of {', '.join(_SSLMODES)}")
        sslmode = given
    return PostgresLocation(url.host, url.port or _DEFAULT_PORT, database, url.username, sslmode)
