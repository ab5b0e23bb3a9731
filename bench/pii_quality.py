"""Precision and recall of the PII detector, per type, on two data sets.

Usage: .venv/bin/python bench/pii_quality.py [--data PATH] [--per-kind N]
       [--seed N] [--by-kind] [--show-errors] [--speed]

- presidio: presidio-research's synthetic sentences
  (``pii/presidio-research-synth_dataset_v2.json`` under the shared data
  directory: ``$PDP_SHARED/data`` or ``<repo>/../shared/data``), 1,500
  records with ``full_text`` and labelled ``spans``. A finding is right when
  it overlaps a labelled span of its type (the labels are loose about
  separators and prefixes).
- generated: the seeded records of ``bench/pii_records.py``, every PII type
  in the formats people write and the numbers that resemble them (order,
  ticket and tracking numbers, coordinates, dates, checksum-failing card
  numbers, hashes). A finding is right only when it is exactly a labelled
  span: a partly masked value counts as a miss and a false positive.

Each type is measured with a detector for that type alone, as a policy that
denies only that type would scan. Exits 1 when a type is under its floor
(``FLOORS``); ``--speed`` also times ``find`` in-process on English text
and on hostile 100 KB inputs.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import pii_records
from bench._common import median_us, shared_data_dir
from pdp.engine._pii import PII_TYPES, PiiDetector

__all__ = [
    "DATASET_TYPES",
    "FLOORS",
    "TYPES",
    "Record",
    "TypeScore",
    "below_floor",
    "default_data_path",
    "generated_records",
    "load_records",
    "score",
]

# Our type -> presidio's entity_type.
DATASET_TYPES: Mapping[str, str] = {
    "credit_card": "CREDIT_CARD",
    "ssn": "US_SSN",
    "email": "EMAIL_ADDRESS",
    "phone": "PHONE_NUMBER",
    "iban": "IBAN_CODE",
    "ip_address": "IP_ADDRESS",
}
TYPES = ("credit_card", "ssn", "email", "phone", "iban", "ip_address", "secret")
# (data set, type) -> (precision, recall) the detector must reach.
FLOORS: Mapping[tuple[str, str], tuple[float, float]] = {
    ("presidio", "credit_card"): (0.99, 0.99),
    ("presidio", "ssn"): (0.99, 0.99),
    ("generated", "credit_card"): (0.99, 0.99),
    ("generated", "ssn"): (0.99, 0.99),
    ("generated", "phone"): (0.95, 0.95),
    ("generated", "iban"): (0.99, 0.99),
    ("generated", "email"): (0.99, 0.99),
    ("generated", "ip_address"): (0.99, 0.99),
    ("generated", "secret"): (0.99, 0.99),
}
DATA_RELATIVE = Path("pii/presidio-research-synth_dataset_v2.json")


def default_data_path() -> Path:
    return shared_data_dir() / DATA_RELATIVE


@dataclass(frozen=True, slots=True)
class Record:
    text: str
    spans: tuple[tuple[str, int, int], ...]  # (our pii_type, start, end)
    kind: str = ""


@dataclass(slots=True)
class TypeScore:
    support: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    errors: list[str] = field(default_factory=list)
    error_kinds: Counter[str] = field(default_factory=Counter)

    @property
    def precision(self) -> float:
        predicted = self.tp + self.fp
        return self.tp / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        return (self.support - self.fn) / self.support if self.support else 1.0


def load_records(path: Path) -> list[Record]:
    """presidio's records, with their entity types named as ours."""
    ours = {entity: pii_type for pii_type, entity in DATASET_TYPES.items()}
    raw: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return [
        Record(
            text=item["full_text"],
            spans=tuple(
                (ours[span["entity_type"]], int(span["start_position"]), int(span["end_position"]))
                for span in item["spans"]
                if span["entity_type"] in ours
            ),
        )
        for item in raw
    ]


def generated_records(per_kind: int = 200, seed: int = pii_records.DEFAULT_SEED) -> list[Record]:
    return [Record(r.text, r.spans, r.kind) for r in pii_records.generate(seed, per_kind=per_kind)]


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(
    records: Iterable[Record], types: Sequence[str] = TYPES, exact: bool = False
) -> dict[str, TypeScore]:
    """Per type: a detector for that type alone over every record. With
    ``exact`` a finding must equal a labelled span, else overlap one."""
    records = list(records)
    scores = {}
    for pii_type in types:
        detector, result = PiiDetector([pii_type]), TypeScore()
        for record in records:
            gold = [(s, e) for t, s, e in record.spans if t == pii_type]
            predicted = [(m.start, m.end) for m in detector.find(record.text)]
            right = (lambda p, g: p == g) if exact else _overlaps
            result.support += len(gold)
            for span in predicted:
                if any(right(span, g) for g in gold):
                    result.tp += 1
                else:
                    result.fp += 1
                    result.error_kinds[f"FP {record.kind}"] += 1
                    result.errors.append(
                        f"FP {record.text[span[0] : span[1]]!r} in {record.text!r}"
                    )
            for span in gold:
                if not any(right(p, span) for p in predicted):
                    result.fn += 1
                    result.error_kinds[f"FN {record.kind}"] += 1
                    result.errors.append(
                        f"FN {record.text[span[0] : span[1]]!r} in {record.text!r}"
                    )
        scores[pii_type] = result
    return scores


def below_floor(data_set: str, scores: Mapping[str, TypeScore]) -> list[str]:
    failing = []
    for (name, pii_type), (precision, recall) in FLOORS.items():
        result = scores.get(pii_type)
        if name == data_set and result and (result.precision < precision or result.recall < recall):
            failing.append(
                f"{data_set} {pii_type}: precision {result.precision:.3f} (floor {precision}),"
                f" recall {result.recall:.3f} (floor {recall})"
            )
    return failing


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
        "mixed symbols": "".join(rng.choice("0123456789 -.:@+()x=_/") for _ in range(100_000)),
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


def _table(results: Mapping[str, tuple[int, dict[str, TypeScore]]]) -> list[str]:
    names = list(results)
    head = f"{'type':<12}" + "".join(f" | {n:>9} support  precision  recall" for n in names)
    lines = [head]
    for pii_type in TYPES:
        row = f"{pii_type:<12}"
        for name in names:
            result = results[name][1].get(pii_type)
            row += (
                f" | {'':>9} {result.support:>7}  {result.precision:>9.3f}  {result.recall:>6.3f}"
                if result
                else f" | {'':>9} {'-':>7}  {'-':>9}  {'-':>6}"
            )
        lines.append(row)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="presidio's labelled JSON")
    parser.add_argument("--per-kind", type=int, default=200, help="generated records per kind")
    parser.add_argument("--seed", type=int, default=pii_records.DEFAULT_SEED)
    parser.add_argument("--by-kind", action="store_true", help="errors per generated kind")
    parser.add_argument("--show-errors", action="store_true", help="print each FP and FN")
    parser.add_argument("--speed", action="store_true", help="also time find() in-process")
    args = parser.parse_args(argv)
    results: dict[str, tuple[int, dict[str, TypeScore]]] = {}
    path: Path = args.data or default_data_path()
    if path.is_file():
        presidio = load_records(path)
        results["presidio"] = (len(presidio), score(presidio, tuple(DATASET_TYPES)))
    else:
        print(f"presidio data not found, skipped: {path}", file=sys.stderr)
    generated = generated_records(args.per_kind, args.seed)
    results["generated"] = (len(generated), score(generated, exact=True))
    for name, (count, _) in results.items():
        print(f"{name}: {count} records")
    print("\n".join(_table(results)))
    for name, (_, scores) in results.items():
        for pii_type, result in scores.items():
            if args.by_kind:
                for kind, count in sorted(result.error_kinds.items()):
                    print(f"{name} {pii_type}: {count:>4} {kind}")
            if args.show_errors:
                for error in result.errors:
                    print(f"{name} {pii_type}: {error}")
    if args.speed:
        print("\n".join(speed_report()))
    failures = [f for name, (_, scores) in results.items() for f in below_floor(name, scores)]
    for failure in failures:
        print(f"below the floor: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
