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
from collections.abc import Mapping
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
)

from ._readers import (
    Reader,
    TestFileError,
    fail,
    read_bool,
    read_choice,
    read_fields,
    read_list,
    read_mapping,
    read_opt_str,
    read_positive_int,
    read_scalar_text,
    read_str,
    read_strings,
    read_time,
    read_usd,
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


# -- the parts of a case -----------------------------------------------------------

_DECISIONS = tuple(k.value for k in DecisionKind)
_MODES = tuple(m.wire_name for m in Mode)
_SEVERITIES = tuple(s.wire_name for s in Severity)
_DENIALS = tuple(d.value for d in DenialReason)


def _spend(value: object, where: str) -> dict[str, tuple[SpendItem, ...]]:
    out: dict[str, tuple[SpendItem, ...]] = {}
    for agent, items in read_mapping(value, where).items():
        entries = []
        for i, item in enumerate(read_list(items, f"{where}.{agent}")):
            f = read_fields(
                item, f"{where}.{agent}[{i}]", {"at": read_time, "usd": read_usd}, ("at", "usd")
            )
            entries.append(SpendItem(f["at"], f["usd"]))
        out[agent] = tuple(entries)
    return out


def _calls(value: object, where: str) -> tuple[CallHistory, ...]:
    known = {"at": read_time, "repeat": read_positive_int, "every": read_usd}
    return tuple(
        CallHistory(**read_fields(item, f"{where}[{i}]", known, ("at",)))
        for i, item in enumerate(read_list(value, where))
    )


def _metadata(value: object, where: str) -> dict[str, str]:
    return {k: read_scalar_text(v, f"{where}.{k}") for k, v in read_mapping(value, where).items()}


_CONTEXT_KINDS = tuple(k.value for k in ContextKind)


def _context(value: object, where: str) -> tuple[ContextItem, ...]:
    """Content the agent pulled in: ``[{content, kind, source}]``."""
    known = {"content": read_str, "kind": read_choice(_CONTEXT_KINDS), "source": read_str}
    items = []
    for i, item in enumerate(read_list(value, where)):
        fields = read_fields(item, f"{where}[{i}]", known, ("content",))
        kind = ContextKind(fields.get("kind", ContextKind.UNSPECIFIED.value))
        items.append(ContextItem(fields["content"], kind, fields.get("source", "")))
    return tuple(items)


def _validator_answer(value: object, where: str) -> Answer:
    """``{allow: bool, message: str}`` or ``{failure: str}``."""
    fields = read_fields(
        value, where, {"allow": read_bool, "message": read_str, "failure": read_str}
    )
    if ("allow" in fields) == ("failure" in fields):
        raise fail(where, "give allow (with an optional message) or failure")
    if "failure" in fields:
        if "message" in fields:
            raise fail(where, "a failure has no message")
        return ValidatorFailure(fields["failure"])
    return ValidatorAnswer(fields["allow"], fields.get("message", ""))


def _validators(value: object, where: str) -> dict[str, Answer]:
    return {k: _validator_answer(v, f"{where}.{k}") for k, v in read_mapping(value, where).items()}


def _violation(value: object, where: str) -> ExpectedViolation:
    if isinstance(value, str):
        return ExpectedViolation(value)
    known = {
        "policy": read_str,
        "mode": read_choice(_MODES),
        "severity": read_choice(_SEVERITIES),
        "message_contains": read_strings,
    }
    return ExpectedViolation(**read_fields(value, where, known, ("policy",)))


def _violations(value: object, where: str) -> tuple[ExpectedViolation, ...]:
    return tuple(_violation(v, f"{where}[{i}]") for i, v in enumerate(read_list(value, where)))


_ENFORCE_EXPECT: dict[str, Reader] = {
    "decision": read_choice(_DECISIONS),
    "violations": _violations,
    "masked_input": read_opt_str,
    "masked_output": read_opt_str,
    "pii": read_strings,
}
_AUTHORIZE_EXPECT: dict[str, Reader] = {"allowed": read_bool, "denial": read_choice(_DENIALS)}


def _enforce_expect(value: object, where: str) -> EnforceExpect:
    return EnforceExpect(**read_fields(value, where, _ENFORCE_EXPECT, ("decision",)))


def _authorize_expect(value: object, where: str) -> AuthorizeExpect:
    fields = read_fields(value, where, _AUTHORIZE_EXPECT, ("allowed",))
    if fields["allowed"] == ("denial" in fields):
        raise fail(where, "name a denial exactly when allowed is false")
    return AuthorizeExpect(**fields)


def _authorize(value: object, where: str) -> tuple[str, str, str]:
    known = {"source": read_str, "target": read_str, "action": read_choice(tuple(sorted(ACTIONS)))}
    fields = read_fields(value, where, known, ("source", "target", "action"))
    return fields["source"], fields["target"], fields["action"]


def _anything(value: object, where: str) -> object:
    return value


# What a request carries: case key -> (EnforceInput keyword, reader).
_REQUEST: dict[str, tuple[str, Reader]] = {
    "agent": ("agent_id", read_str),
    "input": ("input", read_opt_str),
    "output": ("output", read_opt_str),
    "cost": ("estimated_cost_usd", read_usd),
    "tool": ("tool", read_str),
    "model": ("model", read_str),
    "metadata": ("metadata", _metadata),
    "context": ("context", _context),
    "request_id": ("request_id", read_str),
}
_CASE: dict[str, Reader] = {
    "name": read_str,
    "note": read_str,
    "now": read_time,
    "spend": _spend,
    "calls": _calls,
    "authorize": _authorize,
    "validators": _validators,
    "expect": _anything,  # read once the kind of case is known
    **{key: reader for key, (_, reader) in _REQUEST.items()},
}
_FILE: dict[str, Reader] = {
    "snapshot": _anything,
    "description": read_str,
    "now": read_time,
    "spend": _spend,
    "tests": read_list,
}


def _case(raw: dict[str, Any], top: Mapping[str, Any], where: str) -> PolicyTest:
    fields = read_fields(raw, where, _CASE, ("name", "expect"))
    asks = [k for k in _REQUEST if k in fields]
    if "authorize" in fields:
        extra = [k for k in ("calls", "validators") if k in fields]
        if asks or extra:
            listed = ", ".join([*asks, *extra])
            raise fail(where, f"an authorize case takes no request fields ({listed})")
        expect: EnforceExpect | AuthorizeExpect = _authorize_expect(
            fields["expect"], f"{where}.expect"
        )
        request = None
    else:
        if "agent" not in fields:
            raise fail(where, "give agent (an Enforce case) or authorize")
        request = {_REQUEST[k][0]: fields[k] for k in asks}
        expect = _enforce_expect(fields["expect"], f"{where}.expect")
    now: datetime | None = fields.get("now", top.get("now"))
    calls: tuple[CallHistory, ...] = fields.get("calls", ())
    if calls and now is None:
        raise fail(where, "calls need a fixed clock: give `now` in the case or the file")
    if now is not None and any(t > now for entry in calls for t in entry.times()):
        raise fail(where, "a call in `calls` comes after `now`")
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
    case = read_mapping(raw, where)
    if "matrix" not in case:
        return [(case, where)]
    base = {k: v for k, v in case.items() if k != "matrix"}
    name = read_str(base.get("name"), f"{where}.name")
    matrix = case["matrix"]
    rows: list[dict[str, Any]]
    if isinstance(matrix, dict):
        axes = {
            k: read_list(v, f"{where}.matrix.{k}") for k, v in read_mapping(matrix, where).items()
        }
        if not axes or any(not values for values in axes.values()):
            raise fail(f"{where}.matrix", "every key needs at least one value")
        if "expect" in axes:
            raise fail(f"{where}.matrix", "expect varies by row: write the matrix as rows")
        if math.prod(len(values) for values in axes.values()) > MAX_CASES:
            raise fail(f"{where}.matrix", f"expands to more than {MAX_CASES} cases")
        rows = [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
    else:
        rows = [
            read_mapping(r, f"{where}.matrix[{i}]") for i, r in enumerate(read_list(matrix, where))
        ]
        if not rows:
            raise fail(f"{where}.matrix", "list at least one row")
    out = []
    for i, row in enumerate(rows):
        unknown = sorted(set(row) - _VARYING)
        if unknown:
            raise fail(f"{where}.matrix", f"cannot vary {unknown}; allowed: {sorted(_VARYING)}")
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
        raise fail(label, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise fail(label, f"not valid UTF-8 at byte {exc.start}") from None
    try:
        document = load_strict(text)
    except yaml.YAMLError as exc:
        raise fail(label, f"invalid YAML: {exc}") from None
    top = read_fields(document, label, _FILE, ("tests",))
    snapshot = top.get("snapshot")
    located: Path | Mapping[str, Any] | None
    if snapshot is None:
        located = None
    elif isinstance(snapshot, str):
        located = (path.parent / snapshot).resolve()
    elif isinstance(snapshot, dict):
        located = snapshot
    else:
        raise fail(f"{label}.snapshot", "expected a file path or an inline snapshot document")
    written = top["tests"]
    if not written:
        raise fail(f"{label}.tests", "no tests")
    cases: list[PolicyTest] = []
    for i, raw in enumerate(written):
        name = read_mapping(raw, f"{label}: tests[{i}]").get("name")
        where = f"{label}: test {name!r}" if isinstance(name, str) else f"{label}: tests[{i}]"
        for expanded, at in _expand(raw, where):
            cases.append(_case(expanded, top, at))
            if len(cases) > MAX_CASES:
                raise fail(label, f"more than {MAX_CASES} cases after matrix expansion")
    twice = sorted(n for n, count in Counter(c.name for c in cases).items() if count > 1)
    if twice:
        raise fail(label, f"test name(s) used twice: {twice}")
    return TestFile(path, located, tuple(cases))
