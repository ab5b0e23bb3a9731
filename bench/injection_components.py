"""The injection scan's text preparation against another checkout's, in one
process: ``normalize``, the readings (``ScanText.variants``) and quotation
masking (``mask_mentions``), alternating, CPU time per KB of all texts.

Run: ``.venv/bin/python bench/injection_components.py OTHER_CHECKOUT
[ROUNDS]`` (e.g. a worktree of main). Texts: the held-out split of every
local training mirror and the PIGuard sets in ``$PDP_SHARED/data/injection``
(when present); masking is timed on the texts the scan matches, as a scan
masks only those. The other checkout's readings use this one's
``normalize``, so that row compares the readings alone.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
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


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print("usage: injection_components.py OTHER_CHECKOUT [ROUNDS]", file=sys.stderr)
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
