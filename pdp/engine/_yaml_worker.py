"""``python -m pdp.engine._yaml_worker``: a snapshot document on stdin, the
same document as JSON on stdout.

The C YAML reader composes a whole document in one call that holds the GIL
(a third of a second for 10,000 policies on a quiet core), which would stall
every decision of the process reading it. A sidecar has large YAML
documents read here, in a process of their own, and reads the JSON answer in
milliseconds. Exit codes: 0 the JSON; 2 the document is invalid (stdout: its
errors as JSON ``[[path, message], ...]``); 3 the document has no faithful
JSON form (the caller reads the YAML itself)."""

from __future__ import annotations

import json
import sys

from ._document import parse_document
from ._errors import SnapshotError

__all__: list[str] = []


def main() -> int:
    data = sys.stdin.buffer.read()
    try:
        document = parse_document(data)
    except SnapshotError as exc:
        sys.stdout.write(json.dumps([[e.path, e.message] for e in exc.errors]))
        return 2
    try:
        text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return 3
    if json.loads(text) != document:  # non-string keys, tuples...: not the same document
        return 3
    sys.stdout.buffer.write(text.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
