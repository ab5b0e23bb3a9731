"""The policy type registry: one entry per module of ``pdp/engine/_checks``,
and the documentation's table of types derived from it."""

from __future__ import annotations

import pytest

from pdp.engine import POLICY_TYPES, SnapshotError, compile_snapshot
from pdp.engine._registry import REGISTRY
from tests.engine._docs import DOCS, assert_generated_table

BEGIN = "<!-- policy types: from the registry, checked by tests/engine/test_registry.py -->"
END = "<!-- end of policy types -->"


def type_rows() -> list[str]:
    """The table of types docs/policies.md holds between BEGIN and END."""
    rows = [
        "| type | fires when | `ruleDefinition` keys | default severity |",
        "|---|---|---|---|",
    ]
    for name, entry in REGISTRY.items():
        keys = ", ".join(f"`{key}`" for key in entry.rule_fields)
        severity = entry.default_severity.wire_name
        rows.append(f"| [`{name}`](#{name}) | {entry.summary} | {keys} | {severity} |")
    return rows


def test_the_docs_table_of_types_is_the_registry() -> None:
    assert_generated_table(BEGIN, type_rows(), END)


@pytest.mark.parametrize("policy_type", POLICY_TYPES)
def test_every_type_has_a_section_in_the_docs(policy_type: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert f"\n### `{policy_type}`\n" in text, f"{DOCS} has no section for {policy_type}"
    # Every key the type accepts is documented in its section.
    section = text.split(f"\n### `{policy_type}`\n", 1)[1].split("\n## ", 1)[0]
    section = section.split("\n### ", 1)[0]
    for key in REGISTRY[policy_type].rule_fields:
        assert key in section, f"the {policy_type} section of {DOCS} does not mention {key}"


def test_policy_types_are_the_registry_in_name_order() -> None:
    assert tuple(REGISTRY) == POLICY_TYPES == tuple(sorted(POLICY_TYPES))
    for name, entry in REGISTRY.items():
        assert entry.name == name
        assert len(set(entry.rule_fields)) == len(entry.rule_fields)


@pytest.mark.parametrize("policy_type", POLICY_TYPES)
def test_a_rule_key_the_type_does_not_declare_is_rejected(policy_type: str) -> None:
    policy = {
        "name": "p",
        "policyType": policy_type,
        "enforcementMode": "block",
        "ruleDefinition": {"no_such_key": 1},
    }
    with pytest.raises(SnapshotError) as raised:
        compile_snapshot({"policies": [policy]})
    (unknown,) = [
        e for e in raised.value.errors if e.path == "policies[0].ruleDefinition.no_such_key"
    ]
    for key in REGISTRY[policy_type].rule_fields:
        assert key in unknown.message


def test_an_unknown_type_lists_the_registered_ones() -> None:
    policy = {"name": "p", "policyType": "nope", "enforcementMode": "block", "ruleDefinition": {}}
    with pytest.raises(SnapshotError) as raised:
        compile_snapshot({"policies": [policy]})
    (error,) = raised.value.errors
    assert error.path == "policies[0].policyType"
    assert all(name in error.message for name in POLICY_TYPES)
