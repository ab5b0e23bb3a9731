"""The policy test file format (docs/policy-tests.md), read strictly: an
unknown or duplicated key anywhere is an error naming the file and the case,
so a misspelt expectation never makes a case pass by checking nothing.

Matrix cases are expanded here: a case with ``matrix`` becomes one case per
combination (a mapping of lists) or per row (a list of mappings)."""

from __future__ import annotations

import dataclasses
import enum
import itertools
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from pdp.engine import (
    ACTIONS,
    Answer,
    ContextItem,
    ContextKind,
    DecisionKind,
    DenialReason,
    Mode,
    Severity,
    ValidatorAnswer,
    ValidatorFailure,
    parse_rfc3339,
)

from ._yaml import load_strict

__all__ = [
    "ABSENT",
    "AuthorizeExpect",
    "CallHistory",
    "EnforceExpect",
    "ExpectedViolation",
    "PolicyTest",
    "SpendItem",
    "TestFile",
    "TestFileError",
    "load_test_file",
]

MAX_CASES = 100_000  # per file, after matrix expansion


class TestFileError(Exception):
    """A test file is malformed; the message names the file and the place."""

    __test__ = False  # not a pytest class


class Absent(enum.Enum):
    ABSENT = "absent"


ABSENT = Absent.ABSENT  # an expectation not stated (null is a statement: "nothing")


@dataclass(frozen=True, slots=True)
class SpendItem:
    at: datetime
    usd: float


@dataclass(frozen=True, slots=True)
class CallHistory:
    """The case's own request made ``repeat`` times, ``every`` seconds apart,
    from ``at``, before the case's request."""

    at: datetime
    repeat: int = 1
    every: float = 0.0

    def times(self) -> list[datetime]:
        return [self.at + timedelta(seconds=self.every * i) for i in range(self.repeat)]


@dataclass(frozen=True, slots=True)
class ExpectedViolation:
    policy: str  # a policy's type, name or id
    mode: str | None = None
    severity: str | None = None
    message_contains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EnforceExpect:
    decision: str
    violations: tuple[ExpectedViolation, ...] | None = None  # None: not checked
    masked_input: str | Absent | None = ABSENT
    masked_output: str | Absent | None = ABSENT
    pii: tuple[str, ...] | None = None  # PII types found, any order; None: not checked


@dataclass(frozen=True, slots=True)
class AuthorizeExpect:
    allowed: bool
    denial: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyTest:
    name: str
    now: datetime | None
    spend: Mapping[str, tuple[SpendItem, ...]]  # agent id or name -> spend
    calls: tuple[CallHistory, ...]
    request: Mapping[str, Any] | None  # keyword arguments of EnforceInput
    authorize: tuple[str, str, str] | None  # source, target, action
    expect: EnforceExpect | AuthorizeExpect
    # Custom validators' answers, by policy name or id (no call is made).
    validators: Mapping[str, Answer] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TestFile:
    path: Path
    snapshot: Path | Mapping[str, Any] | None  # a file (resolved), an inline document, or none
    cases: tuple[PolicyTest, ...]

    __test__ = False


# -- typed readers: (value, where) -> value, naming `where` on error ------------

Reader = Callable[[object, str], Any]


def _fail(where: str, problem: str) -> TestFileError:
    return TestFileError(f"{where}: {problem}")


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _fail(where, f"expected a mapping with string keys, got {value!r:.80}")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, f"expected a list, got {value!r:.80}")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"expected a string, got {value!r:.80}")
    return value


def _opt_str(value: object, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _scalar_text(value: object, where: str) -> str:
    """A string; a YAML number or boolean is taken as written (metadata values)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and math.isfinite(value):
        return str(value)
    return _str(value, where)


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, f"expected true or false, got {value!r:.80}")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(where, f"expected a finite number, got {value!r:.80}")
    return float(value)


def _usd(value: object, where: str) -> float:
    number = _number(value, where)
    if number < 0:
        raise _fail(where, f"expected an amount of at least 0, got {value!r}")
    return number


def _positive_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(where, f"expected a whole number of at least 1, got {value!r:.80}")
    return value


def _time(value: object, where: str) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    moment = parse_rfc3339(value) if isinstance(value, str) else None
    if moment is None:
        raise _fail(where, f"expected an RFC 3339 time with a zone, got {value!r:.80}")
    return moment


def _choice(choices: tuple[str, ...]) -> Reader:
    def read(value: object, where: str) -> str:
        if value not in choices:
            raise _fail(where, f"{value!r:.80} is not one of {', '.join(choices)}")
        return str(value)

    return read


def _strings(value: object, where: str) -> tuple[str, ...]:
    """One string or a list of strings."""
    if isinstance(value, str):
        return (value,)
    return tuple(_str(v, f"{where}[{i}]") for i, v in enumerate(_list(value, where)))


def _fields(
    value: object, where: str, known: Mapping[str, Reader], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    raw = _mapping(value, where)
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise _fail(where, f"unknown key(s) {unknown}; allowed: {sorted(known)}")
    missing = [k for k in required if k not in raw]
    if missing:
        raise _fail(where, f"missing key(s) {missing}")
    return {k: known[k](v, f"{where}.{k}") for k, v in raw.items()}


# -- the parts of a case -----------------------------------------------------------

_DECISIONS = tuple(k.value for k in DecisionKind)
_MODES = tuple(m.wire_name for m in Mode)
_SEVERITIES = tuple(s.wire_name for s in Severity)
_DENIALS = tuple(d.value for d in DenialReason)


def _spend(value: object, where: str) -> dict[str, tuple[SpendItem, ...]]:
    out: dict[str, tuple[SpendItem, ...]] = {}
    for agent, items in _mapping(value, where).items():
        entries = []
        for i, item in enumerate(_list(items, f"{where}.{agent}")):
            f = _fields(item, f"{where}.{agent}[{i}]", {"at": _time, "usd": _usd}, ("at", "usd"))
            entries.append(SpendItem(f["at"], f["usd"]))
        out[agent] = tuple(entries)
    return out


def _calls(value: object, where: str) -> tuple[CallHistory, ...]:
    known = {"at": _time, "repeat": _positive_int, "every": _usd}
    return tuple(
        CallHistory(**_fields(item, f"{where}[{i}]", known, ("at",)))
        for i, item in enumerate(_list(value, where))
    )


def _metadata(value: object, where: str) -> dict[str, str]:
    return {k: _scalar_text(v, f"{where}.{k}") for k, v in _mapping(value, where).items()}


_CONTEXT_KINDS = tuple(k.value for k in ContextKind)


def _context(value: object, where: str) -> tuple[ContextItem, ...]:
    """Content the agent pulled in: ``[{content, kind, source}]``."""
    known = {"content": _str, "kind": _choice(_CONTEXT_KINDS), "source": _str}
    items = []
    for i, item in enumerate(_list(value, where)):
        fields = _fields(item, f"{where}[{i}]", known, ("content",))
        kind = ContextKind(fields.get("kind", ContextKind.UNSPECIFIED.value))
        items.append(ContextItem(fields["content"], kind, fields.get("source", "")))
    return tuple(items)


def _validator_answer(value: object, where: str) -> Answer:
    """``{allow: bool, message: str}`` or ``{failure: str}``."""
    fields = _fields(value, where, {"allow": _bool, "message": _str, "failure": _str})
    if ("allow" in fields) == ("failure" in fields):
        raise _fail(where, "give allow (with an optional message) or failure")
    if "failure" in fields:
        if "message" in fields:
            raise _fail(where, "a failure has no message")
        return ValidatorFailure(fields["failure"])
    return ValidatorAnswer(fields["allow"], fields.get("message", ""))


def _validators(value: object, where: str) -> dict[str, Answer]:
    return {k: _validator_answer(v, f"{where}.{k}") for k, v in _mapping(value, where).items()}


def _violation(value: object, where: str) -> ExpectedViolation:
    if isinstance(value, str):
        return ExpectedViolation(value)
    known = {
        "policy": _str,
        "mode": _choice(_MODES),
        "severity": _choice(_SEVERITIES),
        "message_contains": _strings,
    }
    return ExpectedViolation(**_fields(value, where, known, ("policy",)))


def _violations(value: object, where: str) -> tuple[ExpectedViolation, ...]:
    return tuple(_violation(v, f"{where}[{i}]") for i, v in enumerate(_list(value, where)))


_ENFORCE_EXPECT: dict[str, Reader] = {
    "decision": _choice(_DECISIONS),
    "violations": _violations,
    "masked_input": _opt_str,
    "masked_output": _opt_str,
    "pii": _strings,
}
_AUTHORIZE_EXPECT: dict[str, Reader] = {"allowed": _bool, "denial": _choice(_DENIALS)}


def _enforce_expect(value: object, where: str) -> EnforceExpect:
    return EnforceExpect(**_fields(value, where, _ENFORCE_EXPECT, ("decision",)))


def _authorize_expect(value: object, where: str) -> AuthorizeExpect:
    fields = _fields(value, where, _AUTHORIZE_EXPECT, ("allowed",))
    if fields["allowed"] == ("denial" in fields):
        raise _fail(where, "name a denial exactly when allowed is false")
    return AuthorizeExpect(**fields)


def _authorize(value: object, where: str) -> tuple[str, str, str]:
    known = {"source": _str, "target": _str, "action": _choice(tuple(sorted(ACTIONS)))}
    fields = _fields(value, where, known, ("source", "target", "action"))
    return fields["source"], fields["target"], fields["action"]


def _anything(value: object, where: str) -> object:
    return value


# What a request carries: case key -> (EnforceInput keyword, reader).
_REQUEST: dict[str, tuple[str, Reader]] = {
    "agent": ("agent_id", _str),
    "input": ("input", _opt_str),
    "output": ("output", _opt_str),
    "cost": ("estimated_cost_usd", _usd),
    "tool": ("tool", _str),
    "model": ("model", _str),
    "metadata": ("metadata", _metadata),
    "context": ("context", _context),
    "request_id": ("request_id", _str),
}
_CASE: dict[str, Reader] = {
    "name": _str,
    "note": _str,
    "now": _time,
    "spend": _spend,
    "calls": _calls,
    "authorize": _authorize,
    "validators": _validators,
    "expect": _anything,  # read once the kind of case is known
    **{key: reader for key, (_, reader) in _REQUEST.items()},
}
_FILE: dict[str, Reader] = {
    "snapshot": _anything,
    "description": _str,
    "now": _time,
    "spend": _spend,
    "tests": _list,
}


def _case(raw: dict[str, Any], top: Mapping[str, Any], where: str) -> PolicyTest:
    fields = _fields(raw, where, _CASE, ("name", "expect"))
    asks = [k for k in _REQUEST if k in fields]
    if "authorize" in fields:
        extra = [k for k in ("calls", "validators") if k in fields]
        if asks or extra:
            listed = ", ".join([*asks, *extra])
            raise _fail(where, f"an authorize case takes no request fields ({listed})")
        expect: EnforceExpect | AuthorizeExpect = _authorize_expect(
            fields["expect"], f"{where}.expect"
        )
        request = None
    else:
        if "agent" not in fields:
            raise _fail(where, "give agent (an Enforce case) or authorize")
        request = {_REQUEST[k][0]: fields[k] for k in asks}
        expect = _enforce_expect(fields["expect"], f"{where}.expect")
    now: datetime | None = fields.get("now", top.get("now"))
    calls: tuple[CallHistory, ...] = fields.get("calls", ())
    if calls and now is None:
        raise _fail(where, "calls need a fixed clock: give `now` in the case or the file")
    if now is not None and any(t > now for entry in calls for t in entry.times()):
        raise _fail(where, "a call in `calls` comes after `now`")
    return PolicyTest(
        name=fields["name"],
        now=now,
        spend=fields.get("spend", top.get("spend", {})),
        calls=calls,
        request=request,
        authorize=fields.get("authorize"),
        expect=expect,
        validators=fields.get("validators", {}),
    )


# -- matrix expansion ---------------------------------------------------------------

_VARYING = set(_CASE) - {"name", "note"}


def _expand(raw: object, where: str) -> list[tuple[dict[str, Any], str]]:
    """The cases one written case stands for, each with where it was written."""
    case = _mapping(raw, where)
    if "matrix" not in case:
        return [(case, where)]
    base = {k: v for k, v in case.items() if k != "matrix"}
    name = _str(base.get("name"), f"{where}.name")
    matrix = case["matrix"]
    rows: list[dict[str, Any]]
    if isinstance(matrix, dict):
        axes = {k: _list(v, f"{where}.matrix.{k}") for k, v in _mapping(matrix, where).items()}
        if not axes or any(not values for values in axes.values()):
            raise _fail(f"{where}.matrix", "every key needs at least one value")
        if "expect" in axes:
            raise _fail(f"{where}.matrix", "expect varies by row: write the matrix as rows")
        if math.prod(len(values) for values in axes.values()) > MAX_CASES:
            raise _fail(f"{where}.matrix", f"expands to more than {MAX_CASES} cases")
        rows = [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
    else:
        rows = [_mapping(r, f"{where}.matrix[{i}]") for i, r in enumerate(_list(matrix, where))]
        if not rows:
            raise _fail(f"{where}.matrix", "list at least one row")
    out = []
    for i, row in enumerate(rows):
        unknown = sorted(set(row) - _VARYING)
        if unknown:
            raise _fail(f"{where}.matrix", f"cannot vary {unknown}; allowed: {sorted(_VARYING)}")
        expanded = {**base, **row, "name": _row_name(name, row)}
        out.append((expanded, f"{where} (matrix row {i + 1})"))
    return out


def _row_name(template: str, row: Mapping[str, Any]) -> str:
    name = template
    for key, value in row.items():
        name = name.replace("{" + key + "}", _short(value))
    if name != template:
        return name
    shown = ", ".join(f"{k}={_short(v)}" for k, v in row.items() if k != "expect")
    return f"{template} [{shown}]"


def _short(value: object) -> str:
    if isinstance(value, dict):
        text = ", ".join(f"{k}={v}" for k, v in value.items()) or "{}"
    else:
        text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- the file -------------------------------------------------------------------------


def load_test_file(path: Path) -> TestFile:
    """Reads one test file; raises TestFileError on anything malformed."""
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(label, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise _fail(label, f"not valid UTF-8 at byte {exc.start}") from None
    try:
        document = load_strict(text)
    except yaml.YAMLError as exc:
        raise _fail(label, f"invalid YAML: {exc}") from None
    top = _fields(document, label, _FILE, ("tests",))
    snapshot = top.get("snapshot")
    located: Path | Mapping[str, Any] | None
    if snapshot is None:
        located = None
    elif isinstance(snapshot, str):
        located = (path.parent / snapshot).resolve()
    elif isinstance(snapshot, dict):
        located = snapshot
    else:
        raise _fail(f"{label}.snapshot", "expected a file path or an inline snapshot document")
    written = top["tests"]
    if not written:
        raise _fail(f"{label}.tests", "no tests")
    cases: list[PolicyTest] = []
    for i, raw in enumerate(written):
        name = _mapping(raw, f"{label}: tests[{i}]").get("name")
        where = f"{label}: test {name!r}" if isinstance(name, str) else f"{label}: tests[{i}]"
        for expanded, at in _expand(raw, where):
            cases.append(_case(expanded, top, at))
            if len(cases) > MAX_CASES:
                raise _fail(label, f"more than {MAX_CASES} cases after matrix expansion")
    twice = sorted(n for n, count in Counter(c.name for c in cases).items() if count > 1)
    if twice:
        raise _fail(label, f"test name(s) used twice: {twice}")
    return TestFile(path, located, tuple(cases))
