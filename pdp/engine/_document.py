"""Snapshot text (YAML or JSON, JSON being YAML) to a plain document.

A document that starts with ``{`` is read as JSON first: a control plane
publishes JSON, and the JSON reader is 6 to 20 times faster than the YAML
one on a large document (what a pause costs a sidecar). It is read an item
of its top-level lists at a time (``_json_items``), taking the object an
earlier document read from the same item text. A YAML flow mapping that is
not JSON falls back to the YAML reader."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from ._errors import FieldError, SnapshotError
from ._json_items import Pace, no_pace, read_json_object

__all__ = ["MAX_DOCUMENT_BYTES", "NO_ITEMS", "parse_document", "parse_document_items"]

# The largest snapshot document a sidecar reads (its UTF-8 bytes); the
# control plane refuses writes that would publish a larger one.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
_JSON_START = re.compile(r"[ \t\r\n]*\{")


def _loader_without_timestamps() -> Any:
    """The safe loader (the C one is ~10x faster; the pure one gives the
    same result), except that unquoted timestamps stay strings: YAML's own
    timestamp forms are looser than RFC 3339, and a snapshot must take the
    timestamps the REST API takes, through the same parser."""
    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    timestamp = "tag:yaml.org,2002:timestamp"
    return type(
        "SnapshotLoader",
        (base,),
        {
            "yaml_implicit_resolvers": {
                first: [(tag, regexp) for tag, regexp in resolvers if tag != timestamp]
                for first, resolvers in base.yaml_implicit_resolvers.items()
            }
        },
    )


_Loader = _loader_without_timestamps()


NO_ITEMS: Mapping[str, object] = {}


def parse_document(data: bytes | str) -> Mapping[str, object]:
    """Parses a snapshot document; raises SnapshotError naming the line of a
    syntax error, invalid UTF-8, or a document that is not an object."""
    return parse_document_items(data)[0]


def parse_document_items(
    data: bytes | str, known: Mapping[str, object] = NO_ITEMS, pace: Pace = no_pace
) -> tuple[Mapping[str, object], Mapping[str, object]]:
    """``parse_document``, and for a JSON document the text of each item of
    its top-level lists with the object read from it (empty for YAML).
    Items whose text is in ``known`` (such a mapping from an earlier
    document) are that earlier object. ``pace`` is called after each item
    of a JSON document's lists."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SnapshotError([FieldError("", f"document larger than {MAX_DOCUMENT_BYTES} bytes")])
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SnapshotError([FieldError("", f"not valid UTF-8 at byte {exc.start}")]) from None
    if _JSON_START.match(data) is not None:
        read = read_json_object(data, known, pace)
        if read is not None:
            return read
        # Not JSON: the YAML reader reports where the text goes wrong.
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
    return document, NO_ITEMS
