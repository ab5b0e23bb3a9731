"""Precision and recall of the PII detector on labelled data.

Usage: .venv/bin/python bench/pii_quality.py [--data PATH] [--show-errors] [--speed]

The default data set is presidio-research's synthetic sentences
(``pii/presidio-research-synth_dataset_v2.json`` under the shared data
directory: ``$PDP_SHARED/data`` or ``<repo>/../shared/data``). Each record has
``full_text`` and ``spans`` with ``entity_type``, ``start_position`` and
``end_position``. A predicted span is a true positive when it overlaps a gold
span of the same type; every gold span overlapped by no prediction of its
type is a false negative. Exits 1 when card or SSN precision or recall is
under the floor. ``--speed`` also prints the time ``find`` takes in-process
on ordinary English text and on hostile 100 KB inputs.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import median_us, shared_data_dir
from pdp.engine._pii import PII_TYPES, PiiDetector

__all__ = [
    "DATASET_TYPES",
    "FLOOR",
    "FLOORED_TYPES",
    "TypeScore",
    "default_data_path",
    "load_records",
    "score",
]

# Our type -> the data set's entity_type.
DATASET_TYPES: Mapping[str, str] = {
    "credit_card": "CREDIT_CARD",
    "ssn": "US_SSN",
    "email": "EMAIL_ADDRESS",
    "phone": "PHONE_NUMBER",
    "iban": "IBAN_CODE",
    "ip_address": "IP_ADDRESS",
}
FLOORED_TYPES = ("credit_card", "ssn")
FLOOR = 0.99
DATA_RELATIVE = Path("pii/presidio-research-synth_dataset_v2.json")


def default_data_path() -> Path:
    return shared_data_dir() / DATA_RELATIVE


@dataclass(frozen=True, slots=True)
class Record:
    text: str
    spans: tuple[tuple[str, int, int], ...]  # (entity_type, start, end)


@dataclass(slots=True)
class TypeScore:
    support: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        predicted = self.tp + self.fp
        return self.tp / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        return (self.support - self.fn) / self.support if self.support else 1.0


def load_records(path: Path) -> list[Record]:
    raw: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return [
        Record(
            text=item["full_text"],
            spans=tuple(
                (span["entity_type"], int(span["start_position"]), int(span["end_position"]))
                for span in item["spans"]
            ),
        )
        for item in raw
    ]


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(
    records: Iterable[Record], types: Sequence[str] = tuple(DATASET_TYPES)
) -> dict[str, TypeScore]:
    detector = PiiDetector(types)
    scores = {pii_type: TypeScore() for pii_type in types}
    for record in records:
        found = detector.find(record.text)
        for pii_type in types:
            gold = [
                (start, end)
                for entity, start, end in record.spans
                if entity == DATASET_TYPES[pii_type]
            ]
            predicted = [(m.start, m.end) for m in found if m.pii_type == pii_type]
            result = scores[pii_type]
            result.support += len(gold)
            for span in predicted:
                if any(_overlaps(span, g) for g in gold):
                    result.tp += 1
                else:
                    result.fp += 1
                    result.errors.append(
                        f"FP {record.text[span[0] : span[1]]!r} in {record.text!r}"
                    )
            for span in gold:
                if not any(_overlaps(span, p) for p in predicted):
                    result.fn += 1
                    result.errors.append(
                        f"FN {record.text[span[0] : span[1]]!r} in {record.text!r}"
                    )
    return scores


def below_floor(scores: Mapping[str, TypeScore]) -> list[str]:
    failing = [
        (pii_type, scores[pii_type])
        for pii_type in FLOORED_TYPES
        if pii_type in scores
        and (scores[pii_type].precision < FLOOR or scores[pii_type].recall < FLOOR)
    ]
    return [f"{name}: precision {s.precision:.3f}, recall {s.recall:.3f}" for name, s in failing]


_ENGLISH = (
    "The committee reviewed the quarterly report and discussed how the onboarding process "
    "should work for every new team member, which tools they need, and who answers questions "
    "in the first weeks. In 2023 the team of 45 people shipped 12 releases. "
)


def _median_seconds(detector: PiiDetector, text: str, runs: int) -> float:
    return median_us(partial(detector.find, text), runs) / 1e6


def speed_report() -> list[str]:
    english_1k = (_ENGLISH * 8)[:1024]
    english_100k = (_ENGLISH * 500)[:102_400]
    rng = random.Random(1)
    hostile = {
        "digits/separators": "".join(rng.choice("0123456789 -.") for _ in range(100_000)),
        "'1 ' repeated": "1 " * 50_000,
        "'4111 ' repeated": "4111 " * 20_000,
        "mixed symbols": "".join(rng.choice("0123456789 -.:@+()x=_") for _ in range(100_000)),
    }
    lines = []
    for label, detector in (
        ("ssn+credit_card", PiiDetector(["ssn", "credit_card"])),
        ("all types", PiiDetector(PII_TYPES)),
    ):
        small = _median_seconds(detector, english_1k, 2000) * 1e6
        large = _median_seconds(detector, english_100k, 50) * 1e6
        lines.append(f"{label:<16} English 1 KB {small:8.1f} us   100 KB {large:9.1f} us (median)")
        for name, text in hostile.items():
            millis = _median_seconds(detector, text, 3) * 1e3
            lines.append(f"{label:<16} hostile 100 KB {name:<18} {millis:7.1f} ms")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="labelled JSON data set")
    parser.add_argument("--show-errors", action="store_true", help="print each FP and FN")
    parser.add_argument("--speed", action="store_true", help="also time find() in-process")
    args = parser.parse_args(argv)
    path: Path = args.data or default_data_path()
    if not path.is_file():
        print(f"data set not found: {path}", file=sys.stderr)
        return 2
    records = load_records(path)
    scores = score(records)
    print(f"{len(records)} records from {path}")
    print(
        f"{'type':<12} {'support':>7} {'TP':>5} {'FP':>5} {'FN':>5} {'precision':>9} {'recall':>7}"
    )
    for pii_type, result in scores.items():
        print(
            f"{pii_type:<12} {result.support:>7} {result.tp:>5} {result.fp:>5} {result.fn:>5}"
            f" {result.precision:>9.3f} {result.recall:>7.3f}"
        )
    if args.show_errors:
        for pii_type, result in scores.items():
            for error in result.errors:
                print(f"{pii_type}: {error}")
    if args.speed:
        print("\n".join(speed_report()))
    failures = below_floor(scores)
    for failure in failures:
        print(f"below the {FLOOR} floor: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
