"""Typed reads from a parsed YAML/JSON document that collect every problem
with its field path, instead of stopping at the first."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from ._errors import FieldError
from ._time import parse_rfc3339

__all__ = ["Problems", "Reader"]


class Problems:
    """Accumulates FieldErrors while a document is read."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


class Reader:
    """Reads one object at ``path``. Unknown keys are reported: a misspelt key
    would otherwise be silently lost."""

    def __init__(
        self, data: object, path: str, problems: Problems, allowed: Collection[str]
    ) -> None:
        self.path = path
        self.problems = problems
        self.ok = isinstance(data, Mapping)
        self._data: Mapping[Any, Any] = data if isinstance(data, Mapping) else {}
        if not self.ok:
            problems.add(path, f"must be an object, got {_type_name(data)}")
        for key in self._data:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                problems.add(self.at(str(key)), f"unknown field (known fields: {known})")

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self._data and self._data[key] is not None

    def raw(self, key: str) -> object:
        return self._data.get(key)

    def _missing(self, key: str, required: bool) -> bool:
        if self.has(key):
            return False
        if required:
            self.problems.add(self.at(key), "required")
        return True

    def string(self, key: str, *, required: bool = False, max_len: int = 1000) -> str | None:
        if self._missing(key, required):
            return None
        value = self._data[key]
        if not isinstance(value, str):
            self.problems.add(self.at(key), f"must be a string, got {_type_name(value)}")
            return None
        if required and not value.strip():
            self.problems.add(self.at(key), "must not be empty")
            return None
        if len(value) > max_len:
            self.problems.add(self.at(key), f"longer than {max_len} characters")
            return None
        return value

    def choice(self, key: str, choices: Collection[str], *, required: bool = False) -> str | None:
        value = self.string(key, required=required)
        if value is None:
            return None
        if value not in choices:
            options = ", ".join(sorted(choices))
            self.problems.add(self.at(key), f"unknown value {value!r} (expected one of {options})")
            return None
        return value

    def boolean(self, key: str, default: bool) -> bool:
        if not self.has(key):
            return default
        value = self._data[key]
        if not isinstance(value, bool):
            self.problems.add(self.at(key), f"must be true or false, got {_type_name(value)}")
            return default
        return value

    def number(
        self,
        key: str,
        *,
        required: bool = False,
        minimum: float = 0.0,
        maximum: float = math.inf,
        exclusive_minimum: bool = False,
    ) -> float | None:
        """A finite number in range. Booleans are not numbers here."""
        if self._missing(key, required):
            return None
        value = self._data[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.add(self.at(key), f"must be a number, got {_type_name(value)}")
            return None
        number = float(value)
        if not math.isfinite(number):
            self.problems.add(self.at(key), "must be a finite number")
            return None
        too_low = number <= minimum if exclusive_minimum else number < minimum
        if too_low:
            relation = "greater than" if exclusive_minimum else "at least"
            self.problems.add(self.at(key), f"must be {relation} {minimum:g}, got {number:g}")
            return None
        if number > maximum:
            self.problems.add(self.at(key), f"must be at most {maximum:g}, got {number:g}")
            return None
        return number

    def integer(self, key: str, *, default: int, minimum: int, maximum: int) -> int:
        if not self.has(key):
            return default
        value = self._data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.add(self.at(key), f"must be a whole number, got {_type_name(value)}")
            return default
        if not minimum <= value <= maximum:
            self.problems.add(self.at(key), f"must be between {minimum} and {maximum}, got {value}")
            return default
        return value

    def items(
        self, key: str, *, required: bool = False, max_items: int | None = None
    ) -> list[tuple[str, object]]:
        """The elements of a list field with their paths; a list longer than
        ``max_items`` is one problem and no elements."""
        if self._missing(key, required):
            return []
        value = self._data[key]
        if not isinstance(value, list):
            self.problems.add(self.at(key), f"must be a list, got {_type_name(value)}")
            return []
        if max_items is not None and len(value) > max_items:
            self.problems.add(
                self.at(key), f"lists {len(value)} items; at most {max_items} are allowed"
            )
            return []
        return [(f"{self.at(key)}[{i}]", item) for i, item in enumerate(value)]

    def strings(
        self,
        key: str,
        *,
        required: bool = False,
        max_len: int = 1000,
        max_items: int | None = None,
        unique: bool = False,
    ) -> list[str]:
        """A list of non-empty strings; with ``unique``, a string listed
        twice is a problem (at the second)."""
        out: list[str] = []
        seen: dict[str, str] = {}
        for path, item in self.items(key, required=required, max_items=max_items):
            if not isinstance(item, str):
                self.problems.add(path, f"must be a string, got {_type_name(item)}")
            elif not item.strip():
                self.problems.add(path, "must not be empty")
            elif len(item) > max_len:
                self.problems.add(path, f"longer than {max_len} characters")
            elif unique and item in seen:
                self.problems.add(path, f"{item!r} is listed twice (also at {seen[item]})")
            else:
                seen.setdefault(item, path)
                out.append(item)
        return out

    def timestamp(self, key: str) -> datetime | None:
        """An RFC 3339 string, read by the same parser as the REST API's."""
        if not self.has(key):
            return None
        value = self._data[key]
        parsed = parse_rfc3339(value) if isinstance(value, str) else None
        if parsed is None:
            got = repr(value[:40]) if isinstance(value, str) else _type_name(value)
            self.problems.add(
                self.at(key),
                f"must be an RFC 3339 timestamp such as 2025-12-31T23:59:59Z, got {got}",
            )
        return parsed
