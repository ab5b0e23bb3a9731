"""Loads the data-driven engine cases in ``tests/engine/cases/*.yaml``.

The format of a case file is described in ``test_cases.py``.

The loader is strict on purpose: an unknown or duplicated key anywhere in a
case file is an error naming the file and the case, so a misspelt expectation
can never make a case pass by checking nothing. The loader does not
use the engine: it turns YAML (read by the strict loader that ``pdp test``
uses for people's test files) into plain data that the test module checks.
"""

from __future__ import annotations

import copy
import enum
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from pdp.policytest import StrictLoader as _StrictLoader

__all__ = [
    "ABSENT",
    "AuthorizeCheck",
    "Case",
    "CaseFileError",
    "EnforceCheck",
    "ErrorCheck",
    "ExpectedError",
    "HistoryEntry",
    "ScriptedAnswer",
    "SpendRecord",
    "case_strings",
    "load_all_cases",
    "load_case_file",
]

CASES_DIR = Path(__file__).parent / "cases"


class CaseFileError(Exception):
    """A case file is malformed; the message names the file and the place."""


class Absent(enum.Enum):
    """Marks an expectation the case does not state (as opposed to ``null``)."""

    ABSENT = "absent"


ABSENT = Absent.ABSENT


@dataclass(frozen=True, slots=True)
class SpendRecord:
    at: datetime
    usd: float


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """Enforce calls made before the case's request: ``request`` sent
    ``repeat`` times, ``every`` seconds apart, from ``at``."""

    at: datetime
    request: Mapping[str, Any]  # keyword arguments of EnforceInput
    repeat: int = 1
    every: float = 0.0

    def times(self) -> list[datetime]:
        return [self.at + timedelta(seconds=self.every * i) for i in range(self.repeat)]


Spend = Mapping[str, tuple[SpendRecord, ...]]  # canonical agent id -> records


@dataclass(frozen=True, slots=True)
class ExpectedViolation:
    policy: str  # the policy's name
    policy_id: str | None = None
    type: str | None = None
    mode: str | None = None
    severity: str | None = None
    retry_after_ms: int | None = None
    message_contains: tuple[str, ...] = ()
    message_excludes: tuple[str, ...] = ()


Finding = tuple[str, str, int | None, int | None]  # field, type, start, end (None: any span)


@dataclass(frozen=True, slots=True)
class ExpectedError:
    path: str | None = None
    path_prefix: str | None = None
    message_contains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScriptedAnswer:
    """A custom validator's answer, given to the engine when it asks:
    ``allow`` with ``message``, or ``failure`` (no usable answer came)."""

    allow: bool | None = None
    message: str = ""
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class EnforceCheck:
    request: Mapping[str, Any]  # keyword arguments of EnforceInput
    decision: str
    answers: Mapping[str, ScriptedAnswer] = field(default_factory=dict)  # by policy name
    asked: tuple[tuple[str, ...], ...] | None = None  # policy names asked, per round
    violations: tuple[ExpectedViolation, ...] = ()  # exact, in order
    masked_input: str | Absent | None = ABSENT
    masked_output: str | Absent | None = ABSENT
    pii: tuple[Finding, ...] | None = None  # None: not checked
    agent: Mapping[str, object] | None = None  # expected AgentInfo attributes
    revision: int | None = None


@dataclass(frozen=True, slots=True)
class AuthorizeCheck:
    source: str
    target: str
    action: str
    allowed: bool
    denial: str | None = None
    reason_contains: tuple[str, ...] = ()
    grant_expires_at: datetime | Absent | None = ABSENT


@dataclass(frozen=True, slots=True)
class ErrorCheck:
    errors: tuple[ExpectedError, ...]  # each must be among the reported errors


@dataclass(frozen=True, slots=True)
class Case:
    file: str
    name: str
    snapshot: dict[str, Any]
    now: datetime | None
    spend: Spend
    history: tuple[HistoryEntry, ...]
    check: EnforceCheck | AuthorizeCheck | ErrorCheck

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


# -- typed readers: (value, where) -> parsed value, naming `where` on error ------

Reader = Callable[[object, str], Any]


def _fail(where: str, problem: str) -> CaseFileError:
    return CaseFileError(f"{where}: {problem}")


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _fail(where, f"expected a mapping with string keys, got {value!r:.80}")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, f"expected a list, got {value!r:.80}")
    return value


def _typed(kind: type, nullable: bool = False) -> Reader:
    def read(value: object, where: str) -> Any:
        if value is None and nullable:
            return None
        # bool is an int in Python; YAML `true` must not pass for a number.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise _fail(where, f"expected {kind.__name__}, got {value!r:.80}")
        return value

    return read


_str, _opt_str, _int, _bool = _typed(str), _typed(str, True), _typed(int), _typed(bool)


def _number(value: object, where: str) -> float | None:
    """A number (YAML int or float, made a float), or null."""
    if value is None or isinstance(value, float):
        return value
    return float(_int(value, where))


def _choice(*choices: str) -> Reader:
    def read(value: object, where: str) -> str:
        if value not in choices:
            raise _fail(where, f"{value!r} is not one of {list(choices)}")
        return str(value)

    return read


def _strings(value: object, where: str) -> tuple[str, ...]:
    """One string or a list of strings."""
    if isinstance(value, str):
        return (value,)
    return tuple(_str(v, f"{where}[{i}]") for i, v in enumerate(_list(value, where)))


def _list_of(item: Reader) -> Reader:
    def read(value: object, where: str) -> tuple[Any, ...]:
        return tuple(item(v, f"{where}[{i}]") for i, v in enumerate(_list(value, where)))

    return read


def _time(value: object, where: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise _fail(where, str(exc)) from exc
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise _fail(where, f"expected an RFC 3339 time with an offset, got {value!r}")
    return value


def _opt_time(value: object, where: str) -> datetime | None:
    return None if value is None else _time(value, where)


def _fields(
    value: object,
    where: str,
    required: Mapping[str, Reader],
    optional: Mapping[str, Reader] | None = None,
) -> dict[str, Any]:
    """Read a mapping whose keys are exactly known: an unknown key is an error."""
    raw = _mapping(value, where)
    readers = {**required, **(optional or {})}
    unknown = sorted(set(raw) - set(readers))
    if unknown:
        raise _fail(where, f"unknown key(s) {unknown}; allowed: {sorted(readers)}")
    missing = [k for k in required if k not in raw]
    if missing:
        raise _fail(where, f"missing key(s) {missing}")
    return {k: readers[k](v, f"{where}.{k}") for k, v in raw.items()}


def _record(cls: type, required: Mapping[str, Reader], optional: Mapping[str, Reader]) -> Reader:
    def read(value: object, where: str) -> Any:
        return cls(**_fields(value, where, required, optional))

    return read


# -- the parts of a case -------------------------------------------------------

_MODES = ("monitor", "warn", "require_approval", "block")
_SEVERITIES = ("low", "medium", "high", "critical")
_DECISIONS = ("ALLOW", "ALLOW_WITH_WARNINGS", "BLOCK", "PENDING_APPROVAL", "AGENT_PAUSED")
_DENIALS = (
    "no_grant",
    "grant_expired",
    "action_not_granted",
    "source_paused",
    "target_paused",
    "unknown_agent",
)


def _usd(value: object, where: str) -> float:
    usd = _number(value, where)
    if usd is None or not math.isfinite(usd):
        raise _fail(where, f"expected a finite number, got {value!r}")
    return usd


def _spend(value: object, where: str) -> Spend:
    records = _list_of(_record(SpendRecord, {"at": _time, "usd": _usd}, {}))
    return {a: records(v, f"{where}.{a}") for a, v in _mapping(value, where).items()}


def _metadata(value: object, where: str) -> dict[str, str]:
    return {k: _str(v, f"{where}.{k}") for k, v in _mapping(value, where).items()}


def _context_item(value: object, where: str) -> dict[str, str]:
    return _fields(value, where, {"content": _str}, {"kind": _str, "source": _str})


_REQUEST = {
    "context": _list_of(_context_item),
    "input": _opt_str,
    "output": _opt_str,
    "estimated_cost_usd": _number,
    "model": _str,
    "tool": _str,
    "metadata": _metadata,
    "request_id": _str,
}

_violation = _record(
    ExpectedViolation,
    {"policy": _str},
    {
        "policy_id": _str,
        "type": _str,
        "mode": _choice(*_MODES),
        "severity": _choice(*_SEVERITIES),
        "retry_after_ms": _int,
        "message_contains": _strings,
        "message_excludes": _strings,
    },
)


def _finding(value: object, where: str) -> Finding:
    optional = {"start": _int, "end": _int}
    fields = _fields(value, where, {"field": _choice("input", "output"), "type": _str}, optional)
    if ("start" in fields) != ("end" in fields):
        raise _fail(where, "give both start and end, or neither")
    return (fields["field"], fields["type"], fields.get("start"), fields.get("end"))


_AGENT = {
    "id": _str,
    "name": _str,
    "known": _bool,
    "paused": _bool,
    "pause_reason": _str,
    "paused_since": _opt_time,
}
_ENFORCE_EXPECT = {
    "violations": _list_of(_violation),
    "masked_input": _opt_str,
    "masked_output": _opt_str,
    "pii": _list_of(_finding),
    "agent": lambda value, where: _fields(value, where, {}, _AGENT),
    "revision": _int,
    "asked": _list_of(_list_of(_str)),
}

_AUTHORIZE_EXPECT = {"denial": _choice(*_DENIALS), "reason_contains": _strings}


def _request(value: object, where: str) -> dict[str, Any]:
    return _fields(value, where, {"agent_id": _str}, _REQUEST)


def _positive_int(value: object, where: str) -> int:
    number: int = _int(value, where)
    if number < 1:
        raise _fail(where, f"expected a whole number of at least 1, got {number}")
    return number


def _seconds(value: object, where: str) -> float:
    number = _number(value, where)
    if number is None or not 0 <= number < math.inf:
        raise _fail(where, f"expected a finite number of seconds >= 0, got {value!r}")
    return number


_history = _list_of(
    _record(
        HistoryEntry,
        {"at": _time, "request": _request},
        {"repeat": _positive_int, "every": _seconds},
    )
)


def _answer(value: object, where: str) -> ScriptedAnswer:
    fields = _fields(value, where, {}, {"allow": _bool, "message": _str, "failure": _str})
    if ("allow" in fields) == ("failure" in fields):
        raise _fail(where, "give exactly one of allow and failure")
    if "failure" in fields and "message" in fields:
        raise _fail(where, "a failure has no message")
    return ScriptedAnswer(**fields)


def _answers(value: object, where: str) -> dict[str, ScriptedAnswer]:
    return {k: _answer(v, f"{where}.{k}") for k, v in _mapping(value, where).items()}


def _enforce_check(request: object, expect: object, answers: object, where: str) -> EnforceCheck:
    question = _request(request, f"{where}.request")
    fields = _fields(expect, f"{where}.expect", {"decision": _choice(*_DECISIONS)}, _ENFORCE_EXPECT)
    given = {} if answers is None else _answers(answers, f"{where}.answers")
    return EnforceCheck(request=question, answers=given, **fields)


def _authorize_check(question: object, expect: object, where: str) -> AuthorizeCheck:
    names = {"source": _str, "target": _str, "action": _str}
    asked = _fields(question, f"{where}.authorize", names)
    optional = {**_AUTHORIZE_EXPECT, "grant_expires_at": _opt_time}
    fields = _fields(expect, f"{where}.expect", {"allowed": _bool}, optional)
    if fields["allowed"] == ("denial" in fields):
        raise _fail(f"{where}.expect", "name a denial reason exactly when allowed is false")
    return AuthorizeCheck(**asked, **fields)


def _expected_error(value: object, where: str) -> ExpectedError:
    optional = {"path": _str, "path_prefix": _str, "message_contains": _strings}
    fields = _fields(value, where, {}, optional)
    if ("path" in fields) == ("path_prefix" in fields):
        raise _fail(where, "give exactly one of path and path_prefix")
    return ExpectedError(**fields)


def _error_check(value: object, where: str) -> ErrorCheck:
    errors = _list_of(_expected_error)(value, where)
    if not errors:
        raise _fail(where, "list at least one expected error")
    return ErrorCheck(errors)


def _anything(value: object, where: str) -> object:
    return value


_FILE_KEYS = {
    "name": _str,
    "description": _str,
    "snapshot": _mapping,
    "now": _time,
    "spend": _spend,
    "history": _history,
}
_CASE_KEYS = {
    "note": _str,
    "snapshot": _mapping,
    "policies": _list,
    "unknown_agents": _str,
    "now": _time,
    "spend": _spend,
    "history": _history,
    "request": _anything,  # read with its expectation below
    "answers": _anything,
    "authorize": _anything,
    "expect": _anything,
    "expect_error": _anything,
}


def _case(raw_case: object, top: Mapping[str, Any], file: str, index: int) -> Case:
    where = f"{file}: cases[{index}]"
    name = _str(_mapping(raw_case, where).get("name"), f"{where}.name")
    where = f"{file}: case {name!r}"
    raw = _fields(raw_case, where, {"name": _str}, _CASE_KEYS)

    kinds = [k for k in ("request", "authorize", "expect_error") if k in raw]
    if len(kinds) != 1:
        raise _fail(where, "give exactly one of request, authorize, expect_error")
    if (kinds[0] == "expect_error") == ("expect" in raw):
        raise _fail(where, "request and authorize need expect; expect_error does not")
    if "snapshot" in raw and "policies" in raw:
        raise _fail(where, "give snapshot or policies, not both")
    if "answers" in raw and kinds[0] != "request":
        raise _fail(where, "answers go with a request")
    document: dict[str, Any] | None = raw.get("snapshot", top.get("snapshot"))
    if document is None:
        raise _fail(where, "no snapshot in the case or the file")
    # A deep copy: the engine must never see another case's document.
    snapshot = copy.deepcopy(document)
    if "policies" in raw:
        snapshot["policies"] = copy.deepcopy(raw["policies"])
    if "unknown_agents" in raw:
        snapshot["unknownAgents"] = raw["unknown_agents"]
    now: datetime | None = raw.get("now", top.get("now"))
    spend: Spend = raw.get("spend", top.get("spend", {}))
    history: tuple[HistoryEntry, ...] = raw.get("history", top.get("history", ()))
    if now is not None and any(t > now for entry in history for t in entry.times()):
        raise _fail(where, "a history entry comes after `now`")

    check: EnforceCheck | AuthorizeCheck | ErrorCheck
    if kinds[0] == "expect_error":
        check = _error_check(raw["expect_error"], f"{where}.expect_error")
    elif now is None:
        raise _fail(where, "no `now` in the case or the file")
    elif kinds[0] == "request":
        check = _enforce_check(raw["request"], raw["expect"], raw.get("answers"), where)
    else:
        check = _authorize_check(raw["authorize"], raw["expect"], where)
    return Case(
        file=file,
        name=name,
        snapshot=snapshot,
        now=now,
        spend=spend,
        history=history,
        check=check,
    )


def load_case_file(path: Path) -> list[Case]:
    """Parse one case file; raise CaseFileError on anything malformed."""
    file = path.stem
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise _fail(file, str(exc)) from exc
    top = _fields(document, file, {"cases": _list}, _FILE_KEYS)
    if top.get("name", file) != file:
        raise _fail(file, f"name {top['name']!r} differs from the file name")
    cases = [_case(c, top, file, i) for i, c in enumerate(top["cases"])]
    if not cases:
        raise _fail(file, "no cases")
    names = [case.name for case in cases]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise _fail(file, f"case name(s) used twice: {twice}")
    return cases


def load_all_cases(directory: Path = CASES_DIR) -> list[Case]:
    """Every case of every ``*.yaml`` file in ``directory``, files in name order."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise _fail(str(directory), "no case files")
    return [case for path in files for case in load_case_file(path)]


def case_strings(directory: Path = CASES_DIR) -> Iterator[str]:
    """Every string in every case file (texts, names, expectations): a
    corpus of the inputs the engine is tested on, for tests that compare two
    implementations over them."""
    for path in sorted(directory.glob("*.yaml")):
        yield from _strings_in(yaml.safe_load(path.read_text("utf-8")))


def _strings_in(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings_in(value)
