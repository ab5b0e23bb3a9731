"""``pdp check``: validate a snapshot file offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._args import Subparsers, add_allow_insecure_validators
from ._files import SnapshotFileError, compile_file

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    check = subparsers.add_parser("check", help="validate a snapshot file offline")
    check.add_argument("path", type=Path)
    add_allow_insecure_validators(check)
    check.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """0 when the file is a valid snapshot; 1 with one line per error (its
    field path and reason); 2 when it cannot be read."""
    path: Path = args.path
    try:
        compile_file(path, allow_insecure_validators=args.allow_insecure_validators)
    except SnapshotFileError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return exc.exit_code
    print(f"{path}: ok")
    return 0
