"""Readers of the values in a test file: each takes the value and the place
it was read from, and returns it typed or raises TestFileError naming the
place and what was expected."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pdp.engine import parse_rfc3339

__all__ = [
    "Reader",
    "TestFileError",
    "fail",
    "read_bool",
    "read_choice",
    "read_fields",
    "read_list",
    "read_mapping",
    "read_number",
    "read_opt_str",
    "read_positive_int",
    "read_scalar_text",
    "read_str",
    "read_strings",
    "read_time",
    "read_usd",
]


class TestFileError(Exception):
    """A test file is malformed; the message names the file and the place."""

    __test__ = False  # not a pytest class


Reader = Callable[[object, str], Any]


def fail(where: str, problem: str) -> TestFileError:
    return TestFileError(f"{where}: {problem}")


def read_mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise fail(where, f"expected a mapping with string keys, got {value!r:.80}")
    return value


def read_list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise fail(where, f"expected a list, got {value!r:.80}")
    return value


def read_str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise fail(where, f"expected a string, got {value!r:.80}")
    return value


def read_opt_str(value: object, where: str) -> str | None:
    return None if value is None else read_str(value, where)


def read_scalar_text(value: object, where: str) -> str:
    """A string; a YAML number or boolean is taken as written (metadata values)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and math.isfinite(value):
        return str(value)
    return read_str(value, where)


def read_bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise fail(where, f"expected true or false, got {value!r:.80}")
    return value


def read_number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(where, f"expected a finite number, got {value!r:.80}")
    return float(value)


def read_usd(value: object, where: str) -> float:
    number = read_number(value, where)
    if number < 0:
        raise fail(where, f"expected an amount of at least 0, got {value!r}")
    return number


def read_positive_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise fail(where, f"expected a whole number of at least 1, got {value!r:.80}")
    return value


def read_time(value: object, where: str) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    moment = parse_rfc3339(value) if isinstance(value, str) else None
    if moment is None:
        raise fail(where, f"expected an RFC 3339 time with a zone, got {value!r:.80}")
    return moment


def read_choice(choices: tuple[str, ...]) -> Reader:
    def read(value: object, where: str) -> str:
        if value not in choices:
            raise fail(where, f"{value!r:.80} is not one of {', '.join(choices)}")
        return str(value)

    return read


def read_strings(value: object, where: str) -> tuple[str, ...]:
    """One string or a list of strings."""
    if isinstance(value, str):
        return (value,)
    return tuple(read_str(v, f"{where}[{i}]") for i, v in enumerate(read_list(value, where)))


def read_fields(
    value: object, where: str, known: Mapping[str, Reader], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    raw = read_mapping(value, where)
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise fail(where, f"unknown key(s) {unknown}; allowed: {sorted(known)}")
    missing = [k for k in required if k not in raw]
    if missing:
        raise fail(where, f"missing key(s) {missing}")
    return {k: known[k](v, f"{where}.{k}") for k, v in raw.items()}
