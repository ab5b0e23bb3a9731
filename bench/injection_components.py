"""The injection scan's text preparation against another checkout's, in one
process: ``normalize``, the readings (``ScanText.variants``) and quotation
masking (``mask_mentions``), alternating, CPU time per KB of all texts.

Run: ``.venv/bin/python bench/injection_components.py OTHER_CHECKOUT
[ROUNDS]`` (e.g. a worktree of main). Texts: the held-out split of every
local training mirror and the PIGuard sets in ``$PDP_SHARED/data/injection``
(when present); masking is timed on the texts the scan matches, as a scan
masks only those. The other checkout's readings use this one's
``normalize``, so that row compares the readings alone.

``--findings OTHER_CHECKOUT`` compares what the two checkouts find instead:
every text of every split and set, the strings of the engine cases, and
obfuscated forms of a sample (each reading's trigger), scanned at each
sensitivity as an input and as a context item, each checkout in a process
of its own; it prints how many findings differ (a speed change must leave
them all as they were). ``PDP_PURE_PYTHON=1`` compares the Python paths.
"""

from __future__ import annotations

import base64
import codecs
import importlib.util
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.injection_quality import builtin_scanner, data_dir, load_labelled, load_not_inject
from pdp.engine import _deobfuscate, _mentions, _normalize
from train.injection_data import load_all


def _load(checkout: Path, module: str) -> ModuleType:
    # Named inside pdp.engine so that its relative imports resolve (to this
    # checkout's modules).
    path = checkout / "pdp" / "engine" / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"pdp.engine._other{module}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def _texts() -> list[str]:
    examples, _ = load_all()
    texts = [example.text for example in examples if example.split == "test"]
    directory = data_dir()
    if directory.is_dir():
        texts += load_not_inject(directory) + [row.prompt for row in load_labelled(directory)]
    return texts


# Run in a process per checkout, that checkout first on the path.
_DUMP_FINDINGS = """
import json, sys
sys.path.insert(0, sys.argv[1])
from bench.injection_quality import builtin_scanner
from pdp.engine._deobfuscate import ScanText
with open(sys.argv[2], encoding="utf-8") as file:
    texts = json.load(file)
found = []
for sensitivity in ("low", "medium", "high"):
    scanner = builtin_scanner(sensitivity)
    for in_context in (False, True):
        for text in texts:
            finding = scanner.scan(ScanText(text), in_context)
            found.append(None if finding is None else [finding.label, finding.transformation])
with open(sys.argv[3], "w", encoding="utf-8") as file:
    json.dump(found, file)
"""
_LEET = str.maketrans("aeiostlg", "4310$7|9")


def _obfuscated(text: str, rng: random.Random) -> list[str]:
    """``text`` in the forms each reading undoes."""
    words = text[:1500].split(" ")
    encoded = text[:1500].encode("utf-8")
    return [
        text.translate(_LEET),
        " ".join(" ".join(word) if rng.random() < 0.3 else word for word in words),
        " ".join(rng.choice(".-_*·|").join(w) if rng.random() < 0.3 else w for w in words),
        f"Here is the data: {base64.b64encode(encoded).decode()} thanks",
        f"payload {base64.urlsafe_b64encode(encoded).decode()}",
        f"hex: {encoded.hex()} end",
        " ".join(f"\\x{byte:02x}" for byte in encoded[:100]),
        f"rot13: {codecs.encode(text, 'rot13')}",
        "url " + "".join(f"%{byte:02X}" for byte in encoded[:200]),
        text.replace("o", "\u043e").replace("e", "\u0435"),
        "".join(char + "\u200b" if rng.random() < 0.2 else char for char in text),
    ]


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    values = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    return [string for value in values for string in _strings(value)]


def _all_texts() -> list[str]:
    import yaml

    examples, _ = load_all()
    texts = [example.text for example in examples]
    directory = data_dir()
    if directory.is_dir():
        texts += load_not_inject(directory) + [row.prompt for row in load_labelled(directory)]
    cases = Path(__file__).resolve().parent.parent / "tests" / "engine" / "cases"
    for path in sorted(cases.glob("*.yaml")):
        texts += _strings(yaml.safe_load(path.read_text("utf-8")))
    # Obfuscated forms of injections above all: those are what the readings reveal.
    rng = random.Random(13)
    attacks = [example.text for example in examples if example.injection]
    benign = [example.text for example in examples if not example.injection]
    sample = rng.sample(attacks, min(600, len(attacks))) + rng.sample(benign, min(400, len(benign)))
    texts += [form for text in sample for form in _obfuscated(text, rng)]
    return texts


def compare_findings(other: Path) -> int:
    texts = _all_texts()
    this = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as directory:
        texts_file = Path(directory) / "texts.json"
        texts_file.write_text(json.dumps(texts), "utf-8")
        found = {}
        for name, checkout in (("other", other.resolve()), ("this", this)):
            out = Path(directory) / f"{name}.json"
            command = [
                sys.executable,
                "-c",
                _DUMP_FINDINGS,
                str(checkout),
                str(texts_file),
                str(out),
            ]
            subprocess.run(command, cwd=checkout, check=True)
            found[name] = json.loads(out.read_text("utf-8"))
    changed = [
        (i % len(texts), a, b)
        for i, (a, b) in enumerate(zip(found["other"], found["this"], strict=True))
        if a != b
    ]
    flagged = sum(1 for finding in found["this"] if finding is not None)
    print(
        f"{len(texts)} texts x 3 sensitivities x input/context item: "
        f"{len(found['this'])} scans, {flagged} findings; changed: {len(changed)}"
    )
    for index, before, after in changed[:20]:
        print(f"  {texts[index][:60]!r}: {before} -> {after}")
    return 1 if changed else 0


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--findings":
        return compare_findings(Path(sys.argv[2]))
    if len(sys.argv) not in (2, 3):
        print(
            "usage: injection_components.py OTHER_CHECKOUT [ROUNDS] | --findings OTHER_CHECKOUT",
            file=sys.stderr,
        )
        return 2
    other = Path(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) == 3 else 7
    modules = {
        "other": (
            _load(other, "_normalize"),
            _load(other, "_deobfuscate"),
            _load(other, "_mentions"),
        ),
        "this": (_normalize, _deobfuscate, _mentions),
    }
    texts = _texts()
    size_kb = sum(len(text.encode("utf-8", "surrogatepass")) for text in texts) / 1024
    scanner = builtin_scanner()
    matched = [t for t in texts if scanner.scan(_deobfuscate.ScanText(t)) is not None]
    plains = [_normalize.normalize(text) for text in texts]

    def work(version: str) -> dict[str, Callable[[], object]]:
        normalize, deobfuscate, mentions = modules[version]
        return {
            "normalize": lambda: [normalize.normalize(t) for t in texts],
            "readings": lambda: [
                deobfuscate.ScanText(t, p).variants() for t, p in zip(texts, plains, strict=True)
            ],
            "masking": lambda: [mentions.mask_mentions(t) for t in matched],
        }

    times: dict[tuple[str, str], list[float]] = {}
    for version in modules:  # once untimed: RE2 builds its DFA states on first use
        for run in work(version).values():
            run()
    for _ in range(rounds):
        for version in modules:
            for name, run in work(version).items():
                start = time.thread_time()
                run()
                elapsed = time.thread_time() - start
                times.setdefault((name, version), []).append(elapsed * 1e6 / size_kb)
    print(f"{len(texts)} texts, {len(matched)} matched; {rounds} rounds, µs per KB of all texts")
    for (name, version), values in times.items():
        print(
            f"  {name:10s} {version:6s} median {statistics.median(values):6.1f} "
            f"[{min(values):.1f}-{max(values):.1f}]"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
