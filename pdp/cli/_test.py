"""``pdp test``: run policy test files against a snapshot, offline."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ._args import Subparsers, add_allow_insecure_validators
from ._files import SnapshotFileError, compile_file

if TYPE_CHECKING:
    from pdp.engine import CompiledSnapshot
    from pdp.policytest import CaseResult, FileReport, TestFile

__all__ = ["add_parser", "run"]

_PATTERNS = ("*.test.yaml", "*.test.yml")


def add_parser(subparsers: Subparsers) -> None:
    test = subparsers.add_parser(
        "test", help="run policy tests (YAML files of cases) against a snapshot"
    )
    test.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="test files, or directories searched for *.test.yaml and *.test.yml",
    )
    test.add_argument(
        "--snapshot",
        type=Path,
        default=None,
        help="snapshot file to test (default: the one each test file names)",
    )
    test.add_argument(
        "--format",
        choices=["text", "junit"],
        default="text",
        help="text (default) or junit: JUnit XML on stdout, the summary on stderr",
    )
    test.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    add_allow_insecure_validators(test)
    test.set_defaults(run=run)


def _files(paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted({f for pattern in _PATTERNS for f in path.rglob(pattern)})
            if not found:
                raise SnapshotFileError([f"{path}: no *.test.yaml or *.test.yml files"], 2)
            out += found
        else:
            out.append(path)
    return out


def run(args: argparse.Namespace) -> int:
    """0 when every case passes, 1 when one fails, 2 when a test file or a
    snapshot cannot be used."""
    from pdp.policytest import TestFileError, load_test_file

    try:
        files = [load_test_file(path) for path in _files(args.paths)]
        compiled: dict[Path, CompiledSnapshot] = {}
        insecure = args.allow_insecure_validators
        snapshots = [_snapshot(f, args.snapshot, compiled, insecure) for f in files]
    except (TestFileError, SnapshotFileError) as exc:
        lines = exc.lines if isinstance(exc, SnapshotFileError) else [str(exc)]
        for line in lines:
            print(line, file=sys.stderr)
        return 2
    reports = [_run_file(f, s) for f, s in zip(files, snapshots, strict=True)]
    return _report(reports, args.format, args.verbose)


def _snapshot(
    test_file: TestFile,
    override: Path | None,
    compiled: dict[Path, CompiledSnapshot],
    allow_insecure_validators: bool,
) -> CompiledSnapshot:
    """The snapshot a file is tested against; files naming one share it."""
    from pdp.engine import SnapshotError, compile_snapshot

    where = override.resolve() if override is not None else test_file.snapshot
    if where is None:
        raise SnapshotFileError(
            [f"{test_file.path}: names no snapshot; add `snapshot: FILE` or pass --snapshot"], 2
        )
    if not isinstance(where, Path):
        try:
            return compile_snapshot(where, allow_insecure_validators=allow_insecure_validators)
        except SnapshotError as exc:
            lines = [f"{test_file.path}: snapshot.{error}" for error in exc.errors]
            raise SnapshotFileError(lines, 2) from None
    if where not in compiled:
        try:
            compiled[where] = compile_file(
                where, allow_insecure_validators=allow_insecure_validators
            )
        except SnapshotFileError as exc:
            raise SnapshotFileError(exc.lines, 2) from None
    return compiled[where]


def _run_file(test_file: TestFile, snapshot: CompiledSnapshot) -> FileReport:
    from pdp.policytest import run_cases

    start = time.perf_counter()
    results = run_cases(snapshot, test_file.cases)
    return str(test_file.path), results, time.perf_counter() - start


def _report(reports: list[FileReport], fmt: str, verbose: bool) -> int:
    from pdp.policytest import junit_xml

    results: list[CaseResult] = [r for _, rs, _ in reports for r in rs]
    failed = sum(1 for r in results if not r.passed)
    seconds = sum(s for _, _, s in reports)
    if fmt == "junit":
        sys.stdout.write(junit_xml(reports) + "\n")
    else:
        for name, file_results, _ in reports:
            for result in file_results:
                if result.passed:
                    if verbose:
                        print(f"PASS {name}: {result.case.name}")
                    continue
                print(f"FAIL {name}: {result.case.name}")
                for problem in result.problems:
                    print(f"  {problem}")
                if result.got:
                    print(f"  got: {result.got}")
    summary = sys.stderr if fmt == "junit" else sys.stdout
    rate = len(results) / seconds if seconds > 0 else float("inf")
    print(f"{len(results) - failed} passed, {failed} failed", file=summary)
    print(
        f"{len(results)} cases in {len(reports)} file{'s' if len(reports) != 1 else ''}, "
        f"{seconds * 1000:.1f} ms ({rate:,.0f} cases/s)",
        file=summary,
    )
    return 1 if failed else 0
