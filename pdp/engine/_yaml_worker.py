"""``python -m pdp.engine._yaml_worker``: a snapshot document on stdin, the
same document as JSON on stdout.

The C YAML reader composes a whole document in one call that holds the GIL
(a third of a second for 10,000 policies on a quiet core), which would stall
every decision of the process reading it. A sidecar has large YAML
documents read here, in a process of their own, and reads the JSON answer in
milliseconds. Exit codes: 0 the JSON; 2 the document is invalid (stdout: its
errors as JSON ``[[path, message], ...]``); 3 the document has no faithful
JSON form (the caller reads the YAML itself).

A sidecar starts it as ``python -c WORKER_SOURCE``, which registers
``pdp.engine`` as a bare package before importing this module: importing
the package runs its ``__init__``, the whole engine (the CEL compiler, PII
and injection scanners: ~0.25 s of CPU per reload), while the worker needs
only the YAML reader (``_document``, ``_errors``, ``_json_items``)."""

from __future__ import annotations

import json
import sys

from ._document import parse_document
from ._errors import SnapshotError

__all__ = ["WORKER_SOURCE"]

WORKER_SOURCE = """
import os, sys, types
import pdp
engine = types.ModuleType("pdp.engine")
engine.__path__ = [os.path.join(os.path.dirname(pdp.__file__), "engine")]
sys.modules["pdp.engine"] = engine
from pdp.engine._yaml_worker import main
sys.exit(main())
"""


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
