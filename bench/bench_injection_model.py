"""The learned injection tier alone: the committed model's score of
normalised texts, by the C scorer and by the Python reference path, in turn
in one process (CPU time of this thread per KB of normalised text).

    .venv/bin/python bench/bench_injection_model.py     # --rounds N

Texts: the held-out ``test`` split of the training sources when their
mirrors are here (``train/SOURCES.md``), else generated English. Each round
also checks that both paths give every text the same score. Then one 1 KB
text at a time with 8 MB of other memory written before each call (as a
server's other work evicts the model's tables between two requests), and
the same warm.
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import describe_machine, median_us, text_of
from pdp.engine._injection_model import InjectionModel, load_model
from pdp.engine._normalize import normalize
from train.injection_data import SOURCES, load_all, mirror


def texts() -> tuple[str, list[str]]:
    if all(mirror(source.repo) is not None for source in SOURCES):
        examples, _ = load_all()
        return "held-out split", [normalize(e.text) for e in examples if e.split == "test"]
    return "generated English, 1 KB", [normalize(text_of(1024, seed=i)) for i in range(500)]


def us_per_kb(model: InjectionModel, corpus: list[str], kb: float) -> tuple[float, list[int]]:
    started = time.thread_time()
    scores = [model.score_units(text) for text in corpus]
    return (time.thread_time() - started) / kb * 1e6, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(describe_machine())
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    committed = load_model()
    if committed.native is None:
        sys.exit("the C scorer is not built (or PDP_PURE_PYTHON=1): nothing to compare")
    python = InjectionModel(
        committed.keys,
        committed.weight_units,
        committed.bias_units,
        committed.window,
        committed.overlap,
        committed.threshold_units,
    )
    name, corpus = texts()
    kb = sum(len(text.encode()) for text in corpus) / 1024
    native_us: list[float] = []
    python_us: list[float] = []
    for _ in range(args.rounds):
        native, native_scores = us_per_kb(committed, corpus, kb)
        reference, python_scores = us_per_kb(python, corpus, kb)
        if native_scores != python_scores:
            sys.exit("the C and Python scores differ")
        native_us.append(native)
        python_us.append(reference)
    print(
        f"learned tier, {name} ({len(corpus)} texts, {kb:.0f} KB normalised), CPU per KB, "
        f"median [range] of {args.rounds} rounds:\n"
        f"  C       {statistics.median(native_us):6.1f} us/KB "
        f"[{min(native_us):.1f}-{max(native_us):.1f}]\n"
        f"  Python  {statistics.median(python_us):6.1f} us/KB "
        f"[{min(python_us):.1f}-{max(python_us):.1f}]"
    )
    english = [normalize(text_of(1024, seed=i)) for i in range(64)]
    for label, model in (("C", committed), ("Python", python)):
        calls = itertools.cycle(english)

        def score(model: InjectionModel = model, calls: Iterator[str] = calls) -> None:
            model.score_units(next(calls))

        cold = median_us(score, 2000, evict=True)
        warm = median_us(score, 20_000)
        print(f"  {label:7} 1 KB English: {cold:6.1f} us caches evicted, {warm:6.1f} us warm")


if __name__ == "__main__":
    main()
