"""Reading a snapshot file for the offline commands (``check``, ``eval``,
``test``), with the errors they print."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pdp.engine import CompiledSnapshot

__all__ = ["SnapshotFileError", "compile_file"]


class SnapshotFileError(Exception):
    """A snapshot file that cannot be used: ``lines`` say why (one per
    problem, each naming the file), ``exit_code`` is 2 when it cannot be
    read and 1 when it is not a valid snapshot."""

    def __init__(self, lines: list[str], exit_code: int) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines
        self.exit_code = exit_code


def compile_file(path: Path, *, allow_insecure_validators: bool = False) -> CompiledSnapshot:
    """The compiled snapshot of the YAML or JSON file at ``path`` (custom
    validators may use plain http to loopback with
    ``allow_insecure_validators``)."""
    from pdp.engine import SnapshotError, compile_snapshot, parse_document

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotFileError([f"{path}: cannot read: {exc.strerror}"], 2) from None
    try:
        return compile_snapshot(
            parse_document(data), allow_insecure_validators=allow_insecure_validators
        )
    except SnapshotError as exc:
        raise SnapshotFileError([f"{path}: {error}" for error in exc.errors], 1) from None
