"""A new revision reuses the compiled rules of the policies whose content did
not change, and compiles the others."""

from __future__ import annotations

import copy

from pdp.engine import compile_snapshot
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
