"""The result values the SDK builds on every decision are the public
frozen dataclasses, field for field, however they are built."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from pdp_client import Decision, EnforceResult, PiiFinding, Violation
from pdp_client._types import decided_result

_VIOLATION = Violation("p1", "Notes", "expression", "low", "a draft", "warn")
_FINDING = PiiFinding("output", "ssn", 11, 22)
_EXPIRES = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_decided_result_is_the_enforce_result_of_its_fields() -> None:
    built = decided_result(
        Decision.PENDING_APPROVAL,
        [_VIOLATION],
        "masked in",
        "masked out",
        [_FINDING],
        "d-1",
        "a-1",
        7,
        _EXPIRES,
    )
    expected = EnforceResult(
        decision=Decision.PENDING_APPROVAL,
        violations=[_VIOLATION],
        masked_input="masked in",
        masked_output="masked out",
        pii_findings=[_FINDING],
        decision_id="d-1",
        approval_id="a-1",
        snapshot_revision=7,
        fail_open=False,
        approval_expires_at=_EXPIRES,
    )
    # Equality compares every field, so one the builder left unset fails here.
    assert built == expected
    assert repr(built) == repr(expected)
    assert built.warnings == [_VIOLATION]
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.decision_id = "d-2"  # type: ignore[misc]


def test_a_decided_allow_with_nothing_found_equals_the_defaults() -> None:
    first = decided_result(Decision.ALLOW, [], None, None, [], "d-1", None, 1, None)
    assert first == EnforceResult(decision=Decision.ALLOW, decision_id="d-1", snapshot_revision=1)
    assert first.fail_open is False
