"""Tables in the documentation generated from the engine's declarations: a
table stands between a BEGIN and an END comment line, and a test compares it
with what the declarations give."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["DOCS", "assert_generated_table", "generated_table"]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policies.md"


def generated_table(begin: str, rows: list[str], end: str) -> str:
    return "\n".join([begin, *rows, end])


def assert_generated_table(begin: str, rows: list[str], end: str, doc: Path = DOCS) -> None:
    """Fails, showing the table to paste, unless ``doc`` holds it as given."""
    expected = generated_table(begin, rows, end)
    found = re.search(re.escape(begin) + r".*?" + re.escape(end), doc.read_text("utf-8"), re.DOTALL)
    assert found is not None, f"{doc} lacks this table:\n{expected}"
    assert found.group(0) == expected, f"replace the table in {doc} with:\n{expected}"
