"""Snapshot sources and activation: sources fetch documents, the holder
validates, compiles and activates them atomically, keeping the last good one.
"""

from ._file_source import FileSource
from ._holder import Active, Rejection, SnapshotHolder
from ._http_source import HttpSource, SourceStatusError

__all__ = [
    "Active",
    "FileSource",
    "HttpSource",
    "Rejection",
    "SnapshotHolder",
    "SourceStatusError",
]
