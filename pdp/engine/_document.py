"""Snapshot text (YAML or JSON, JSON being YAML) to a plain document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from ._errors import FieldError, SnapshotError

__all__ = ["MAX_DOCUMENT_BYTES", "parse_document"]

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

# The C loader is ~10x faster; the pure one gives the same result.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_document(data: bytes | str) -> Mapping[str, object]:
    """Parses a snapshot document; raises SnapshotError naming the line of a
    syntax error, invalid UTF-8, or a document that is not an object."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SnapshotError([FieldError("", f"document larger than {MAX_DOCUMENT_BYTES} bytes")])
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SnapshotError([FieldError("", f"not valid UTF-8 at byte {exc.start}")]) from None
    try:
        document = yaml.load(data, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SnapshotError([FieldError("", f"invalid YAML: {where}{exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise SnapshotError([FieldError("", f"invalid YAML: {exc}")]) from None
    if document is None:
        raise SnapshotError([FieldError("", "empty document")])
    if not isinstance(document, Mapping):
        raise SnapshotError([FieldError("", "the document must be an object")])
    return document
