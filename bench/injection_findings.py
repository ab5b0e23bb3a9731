"""Per-text findings of the built-in injection scan, to check that a change
meant to make the scan faster leaves every decision as it was.

Run: ``.venv/bin/python bench/injection_findings.py write FILE`` before the
change, ``... check FILE`` after it (exit status 1 and the first differences
when any text's result changed). For every text of every local training
mirror (all splits) and the PIGuard sets in ``$PDP_SHARED/data/injection``
(those present), it records the scan's finding (label and transformation) at
each sensitivity, as text and as a context item, and a digest of the text's
normalised form, its readings and its quotation-masked form, which the
ROC AUC column of ``injection_quality`` is computed from.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.injection_quality import builtin_scanner, data_dir, load_labelled, load_not_inject
from pdp.engine._deobfuscate import ScanText
from pdp.engine._injection_scan import SENSITIVITIES, Finding
from train.injection_data import load_all


def texts() -> list[str]:
    """Every local text, first occurrence only."""
    examples, _ = load_all()
    found = [example.text for example in examples]
    directory = data_dir()
    if directory.is_dir():
        found += [row.prompt for row in load_labelled(directory)] + load_not_inject(directory)
    return list(dict.fromkeys(found))


def _finding(found: Finding | None) -> str:
    return "-" if found is None else f"{found.label}|{found.transformation}"


def _readings_digest(text: str) -> str:
    scan_text = ScanText(text)
    masked = scan_text.mentions_masked()
    parts = [scan_text.plain, *(f"{n}\0{f}" for n, f in scan_text.variants())]
    parts.append("\1" if masked is None else masked.text)
    return hashlib.sha256("\2".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def findings(all_texts: list[str]) -> dict[str, list[str]]:
    """Text digest to its results (see the module docstring)."""
    scanners = [builtin_scanner(sensitivity) for sensitivity in SENSITIVITIES]
    results: dict[str, list[str]] = {}
    for text in all_texts:
        row = [_readings_digest(text)]
        for scanner in scanners:
            for in_context in (False, True):
                row.append(_finding(scanner.scan(ScanText(text), in_context)))
        key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]
        results[key] = row
    return results


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        print("usage: injection_findings.py write|check FILE", file=sys.stderr)
        return 2
    path = Path(sys.argv[2])
    current = findings(texts())
    if sys.argv[1] == "write":
        path.write_text(json.dumps(current, sort_keys=True), "utf-8")
        print(f"{len(current)} texts written to {path}")
        return 0
    before: dict[str, list[str]] = json.loads(path.read_text("utf-8"))
    changed = [key for key in before.keys() & current.keys() if before[key] != current[key]]
    for key in changed[:10]:
        print(f"{key}: {before[key]} -> {current[key]}")
    compared = len(before.keys() & current.keys())
    print(f"{compared} texts compared, {len(changed)} changed")
    return 1 if changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
