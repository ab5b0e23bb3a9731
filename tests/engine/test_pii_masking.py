"""Masking, checked as properties on seeded random texts: every reported
span is masked, nothing outside a span is, and a mask keeps no more than its
documented hints. Through the engine too: whatever several masking policies
find in an output is masked in ``masked_output``."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from bench import pii_records
from pdp.engine import NO_USAGE, Decision, EnforceInput, compile_snapshot
from pdp.engine._pii import PII_TYPES, PiiDetector, PiiMatch, mask_text

# Email masks shorten the local part; every other mask keeps the length.
SAME_LENGTH_TYPES = sorted(PII_TYPES - {"email", "api_key"})
_NOISE = "0123456789 -./()+:#abcXYZ\n"


def _texts(seed: int, count: int) -> list[str]:
    """Generated records glued together with random digits and separators,
    which make new chains across record boundaries."""
    records = [r.text for r in pii_records.generate(seed, per_kind=8)]
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = rng.sample(records, rng.randint(1, 3))
        noise = ["".join(rng.choice(_NOISE) for _ in range(rng.randint(0, 12))) for _ in parts]
        texts.append("".join(itertools.chain.from_iterable(zip(noise, parts, strict=True))))
    return texts


def _kept_hints(pii_type: str, value: str) -> int:
    """How many letters and digits of ``value`` its mask may leave as they are."""
    if pii_type in ("ssn", "credit_card"):
        return 4
    if pii_type == "phone":
        return 2
    if pii_type == "iban":
        return 6
    return 0


def assert_masked(text: str, matches: Sequence[PiiMatch], result: str) -> None:
    assert len(result) == len(text)
    ordered = sorted(matches, key=lambda m: (m.start, m.end))
    covered = [False] * len(text)
    secret = [False] * len(text)
    for match in ordered:
        covered[match.start : match.end] = [True] * (match.end - match.start)
        if match.pii_type in ("secret", "api_key"):
            secret[match.start : match.end] = [True] * (match.end - match.start)
    for index, (before, after) in enumerate(zip(text, result, strict=True)):
        if not covered[index]:
            assert after == before, f"{index}: {before!r} outside a span became {after!r}"
        elif secret[index] and not before.isspace():
            assert after == "*", f"{index}: {before!r} of a secret became {after!r}"
        else:
            assert after in (before, "*"), f"{index}: {before!r} became {after!r}"
    # Spans that overlap are masked together, without hints.
    for group in _overlapping(ordered):
        start, end = group[0].start, max(m.end for m in group)
        # A phone's extension keeps its "x" or "ext": only its digits count.
        counts = str.isdecimal if group[0].pii_type == "phone" else str.isalnum
        pairs = zip(text[start:end], result[start:end], strict=True)
        kept = sum(counts(a) and a == b for a, b in pairs)
        alone = all((m.start, m.end, m.pii_type) == (start, end, group[0].pii_type) for m in group)
        allowed = _kept_hints(group[0].pii_type, text[start:end]) if alone else 0
        assert kept <= allowed, (group, text[start:end], result[start:end])
        assert text[start:end] != result[start:end] or not any(c.isalnum() for c in text[start:end])


def _overlapping(ordered: Sequence[PiiMatch]) -> list[list[PiiMatch]]:
    groups: list[list[PiiMatch]] = []
    for match in ordered:
        if groups and match.start < max(m.end for m in groups[-1]):
            groups[-1].append(match)
        else:
            groups.append([match])
    return groups


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_reported_span_is_masked_and_nothing_else_is(seed: int) -> None:
    rng = random.Random(seed)
    for text in _texts(seed, 150):
        types = rng.sample(SAME_LENGTH_TYPES, rng.randint(1, len(SAME_LENGTH_TYPES)))
        matches = PiiDetector(types).find(text)
        assert_masked(text, matches, mask_text(text, matches))


@pytest.mark.parametrize("seed", [4, 5])
def test_spans_of_several_policies_are_masked_together(seed: int) -> None:
    rng = random.Random(seed)
    for text in _texts(seed, 100):
        first, second = (
            PiiDetector(rng.sample(SAME_LENGTH_TYPES, rng.randint(1, 3))) for _ in range(2)
        )
        matches = first.find(text) + second.find(text)
        assert_masked(text, matches, mask_text(text, matches))


def test_an_email_keeps_only_its_first_character_and_domain() -> None:
    for text in _texts(6, 200):
        matches = PiiDetector(["email"]).find(text)
        result = mask_text(text, matches)
        for match in matches:
            local, _, domain = text[match.start : match.end].partition("@")
            assert f"{local[0]}***@{domain}" in result
            if len(local) > 3:
                assert local not in result.replace(f"{local[0]}***@{domain}", "")


def test_the_engine_masks_every_finding_of_every_masking_policy() -> None:
    rng = random.Random(9)
    now = datetime(2026, 3, 15, 12, tzinfo=UTC)
    for _ in range(20):
        type_sets = [rng.sample(SAME_LENGTH_TYPES, rng.randint(1, 3)) for _ in range(2)]
        snapshot = compile_snapshot(
            {
                "agents": [{"id": "agent-1", "name": "bot"}],
                "policies": [
                    {
                        "name": f"PII {index}",
                        "policyType": "pii_access",
                        "enforcementMode": rng.choice(["monitor", "warn", "block"]),
                        "ruleDefinition": {"denied_pii_types": types, "mask_output": True},
                    }
                    for index, types in enumerate(type_sets)
                ],
            }
        )
        for text in _texts(rng.randint(10, 10_000), 10):
            request = EnforceInput(agent_id="agent-1", output=text)
            decision = snapshot.enforce(request, NO_USAGE, now)
            assert isinstance(decision, Decision)
            findings = [
                PiiMatch(f.pii_type, f.start, f.end)
                for f in decision.pii_findings
                if f.field == "output"
            ]
            if findings:
                assert decision.masked_output is not None
                assert_masked(text, findings, decision.masked_output)
