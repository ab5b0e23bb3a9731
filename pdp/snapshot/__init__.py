"""Snapshot delivery and activation. Sources (a file, a control plane's
URL) fetch documents and report each attempt as an :data:`Update`; the
:class:`SnapshotHolder` validates, compiles and activates documents
atomically, keeps the last good one, and decides on its own clock when the
source has been silent too long.

Exception tree::

    SourceError    a snapshot location that cannot be watched (a malformed URL)
"""

from ._errors import SourceError
from ._file_source import FileSource
from ._holder import Active, Rejection, SnapshotHolder
from ._http_source import HttpSource
from ._open import open_source
from ._source import (
    NewDocument,
    NoChange,
    NoDocument,
    Refused,
    Report,
    SnapshotSource,
    Unreachable,
    Update,
)

__all__ = [
    "Active",
    "FileSource",
    "HttpSource",
    "NewDocument",
    "NoChange",
    "NoDocument",
    "Refused",
    "Rejection",
    "Report",
    "SnapshotHolder",
    "SnapshotSource",
    "SourceError",
    "Unreachable",
    "Update",
    "open_source",
]
