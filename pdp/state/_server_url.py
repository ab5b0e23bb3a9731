"""What reading a database location shares, for ``--state`` (SQLite or
Redis) and the control plane's ``--db`` (SQLite or PostgreSQL): a value is
a file path or a URL, never a guess between the two; a server URL has a
host and a port and no password (it would show in the process list), which
comes from the environment or a file instead. Each error says what is
wrong; the caller names the option."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["ServerUrl", "SqliteLocation", "file_or_scheme", "read_password", "server_url"]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True, slots=True)
class SqliteLocation:
    """A SQLite database file."""

    path: str

    def __str__(self) -> str:
        return self.path


def file_or_scheme(value: str, schemes: tuple[str, ...], expected: str) -> SqliteLocation | str:
    """A SQLite file for a path; for a URL (anything that starts with a
    scheme and a colon), its scheme in lower case, one of ``schemes``.
    ``expected`` describes the URLs taken, for the error."""
    if not value or value.isspace():
        raise ValueError("must not be empty")
    if not _SCHEME.match(value):
        return SqliteLocation(value)
    scheme = value.split(":", 1)[0].lower()
    if scheme not in schemes:
        raise ValueError(
            f"unsupported scheme {scheme!r}: give a SQLite file path, or {expected}; "
            "a file name with a colon is written ./NAME"
        )
    return scheme


@dataclass(frozen=True, slots=True)
class ServerUrl:
    """A server URL's parts: ``port`` None when it names none, ``path``
    without its leading slashes, ``username`` decoded."""

    host: str
    port: int | None
    path: str
    username: str | None
    query: str


def server_url(
    value: str, scheme: str, *, form: str, password_from: str, query: bool = False
) -> ServerUrl:
    """The parts of ``value``, a ``scheme://`` URL; ``form`` shows the
    expected URL in errors, ``password_from`` says where the password goes
    instead; a query is refused unless ``query``."""
    if not value[len(scheme) + 1 :].startswith("//"):
        raise ValueError(f"malformed URL: {form}")
    parts = urlsplit(value)
    if parts.password is not None:
        raise ValueError(
            "a password in the URL is refused (it would show in the process list): " + password_from
        )
    if parts.fragment or (parts.query and not query):
        read = "no fragment is read" if query else "no query or fragment is read"
        raise ValueError(f"malformed URL: {read}; {form}")
    host = parts.hostname
    if not host:
        raise ValueError(f"malformed URL: no host; {form}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("malformed URL: the port is not a number 1-65535") from None
    if port == 0:
        raise ValueError("malformed URL: the port is not a number 1-65535")
    username = unquote(parts.username) if parts.username else None
    return ServerUrl(host, port, parts.path.lstrip("/"), username, parts.query)


def read_password(env: str, file: str | None, option: str) -> str | None:
    """The password in ``file`` (its first line ending dropped) when one is
    given, else ``$env``'s; None when neither has one. ``option`` is the
    option that named the file, for the error."""
    if file is None:
        return os.environ.get(env) or None
    try:
        with open(file, encoding="utf-8") as opened:
            password = opened.read().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"argument {option}: cannot read it: {exc}") from None
    if not password:
        raise ValueError(f"argument {option}: the file is empty")
    return password
