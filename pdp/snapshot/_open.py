"""The source for a ``--snapshot`` location: a control plane's URL or a file."""

from __future__ import annotations

import re

from ._errors import SourceError
from ._file_source import FileSource
from ._http_source import Applied, HttpSource
from ._source import SnapshotSource

__all__ = ["open_source"]

_LONG_POLL = 20.0  # seconds a control plane may hold a request before a 304
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def open_source(
    location: str,
    *,
    api_key: str | None = None,
    api_key_file: str | None = None,
    ca_file: str | None = None,
    name: str | None = None,
    applied: Applied | None = None,
    poll_interval: float = 0.2,
    max_staleness: float | None = None,
    optional: bool = False,
) -> SnapshotSource:
    """An :class:`HttpSource` for ``http(s)://`` locations (several,
    comma-separated: replicas of one control plane, failed over in turn),
    else a :class:`FileSource`. Raises SourceError for a malformed URL or
    another scheme, or a key or CA file that cannot be read. ``optional``: a
    URL without a document (404) is not an error."""
    if _URL.match(location) and not location.startswith(("http://", "https://")):
        raise SourceError(f"{location!r}: only http:// and https:// URLs, or a file path")
    if location.startswith(("http://", "https://")):
        # A held long poll is silence too: answer well within the staleness limit.
        wait = _LONG_POLL if max_staleness is None else min(_LONG_POLL, max_staleness / 3)
        urls = [each.strip() for each in location.split(",")]
        if any(not each.startswith(("http://", "https://")) for each in urls):
            raise SourceError(
                f"{location!r}: several control plane URLs are separated by commas, "
                "each http:// or https://"
            )
        return HttpSource(
            urls if len(urls) > 1 else urls[0],
            api_key=api_key,
            api_key_file=api_key_file,
            ca_file=ca_file,
            name=name,
            applied=applied,
            wait=wait,
            optional=optional,
        )
    return FileSource(location, interval=poll_interval)
