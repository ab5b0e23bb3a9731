"""A new revision reuses the compiled rules of the policies whose content did
not change, and compiles the others."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping

import pytest

from pdp.engine import NO_ITEMS, SnapshotError, compile_snapshot, parse_document_items
from tests.conftest import example_document


def test_unchanged_policies_keep_their_compiled_rules() -> None:
    first = compile_snapshot(example_document())
    document = copy.deepcopy(example_document())
    document["revision"] = 2
    changed = next(p for p in document["policies"] if p["policyType"] == "expression")
    changed["ruleDefinition"]["message"] = "changed"
    second = compile_snapshot(document, reuse=first)
    before = {p.name: p.check for p in first.policies}
    for policy in second.policies:
        if policy.name == changed["name"]:
            assert policy.check is not before[policy.name]
        else:
            assert policy.check is before[policy.name], policy.name
    assert len(second.rules) == len(first.rules)


def test_a_policy_renamed_or_switched_mode_is_compiled_again() -> None:
    first = compile_snapshot(example_document())
    document = copy.deepcopy(example_document())
    switched = document["policies"][0]
    switched["enforcementMode"] = "warn"
    second = compile_snapshot(document, reuse=first)
    before = {p.name: p.check for p in first.policies}
    after = {p.name: p.check for p in second.policies}
    assert after[switched["name"]] is not before[switched["name"]]
    assert sum(after[name] is before[name] for name in before) == len(before) - 1


def _parsed(
    document: dict[str, object], known: Mapping[str, object] = NO_ITEMS
) -> tuple[Mapping[str, object], Mapping[str, object]]:
    return parse_document_items(json.dumps(document), known)


def test_unchanged_items_of_a_parsed_document_are_not_read_again() -> None:
    document = example_document()
    old, items = _parsed(document)
    first = compile_snapshot(old)
    changed = copy.deepcopy(document)
    changed["revision"] = 2
    expression = next(p for p in changed["policies"] if p["policyType"] == "expression")
    expression["ruleDefinition"]["message"] = "changed"
    new, _ = _parsed(changed, items)
    second = compile_snapshot(new, reuse=first)
    before = {p.name: p.spec for p in first.policies}
    for policy in second.policies:
        if policy.name == expression["name"]:
            assert policy.spec is not before[policy.name]
            assert policy.spec.rule["message"] == "changed"
        else:
            assert policy.spec is before[policy.name], policy.name
    assert second.revision == 2


def test_a_policy_moved_to_another_place_is_read_again_with_its_new_path() -> None:
    document = example_document()
    old, items = _parsed(document)
    first = compile_snapshot(old)
    moved = copy.deepcopy(document)
    moved["policies"].reverse()
    moved["policies"][0]["prerequisites"] = [{"policy": "no such policy"}]
    new, _ = _parsed(moved, items)
    with pytest.raises(SnapshotError) as rejected:
        compile_snapshot(new, reuse=first)
    assert [e.path for e in rejected.value.errors] == ["policies[0].prerequisites[0].policy"]
    moved["policies"][0].pop("prerequisites")
    new, _ = _parsed(moved, items)
    second = compile_snapshot(new, reuse=first)
    assert {p.spec.path for p in second.policies} == {
        f"policies[{i}]" for i in range(len(moved["policies"]))
    } - {f"policies[{i}]" for i, p in enumerate(moved["policies"]) if not p.get("isActive", True)}
