"""The engine alone, in-process: one decision for the example policy set on
1 KB and 100 KB inputs (and the same decision explained, as ``pdp eval``
does: explanation mode leaves ``enforce`` untouched), and an injection_scan
policy with 1,000 patterns against one with 5.

    .venv/bin/python bench/bench_engine.py

Back-to-back calls find every cache warm. In a server, the network stack,
gRPC and the event loop run between two decisions and evict the engine's
code and data, so a decision there costs several times more CPU. The "caches
evicted" line approximates that: it writes 8 MB of other memory before each
timed call.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO, WORDS, FixedSpend, median_us, text_of
from pdp.engine import EnforceInput, compile_snapshot, parse_document, utc_now


def injection_snapshot(patterns: list[str]) -> object:
    policy = {
        "name": "inj",
        "policyType": "injection_scan",
        "enforcementMode": "block",
        "ruleDefinition": {"patterns": patterns, "scan_input": True},
    }
    return compile_snapshot({"policies": [policy]})


def main() -> None:
    snapshot = compile_snapshot(parse_document((REPO / "examples" / "policies.yaml").read_bytes()))
    spend = FixedSpend(12.5)
    now = utc_now()
    print("engine alone, example policies (4 baseline + 1 expression), median per decision")
    for size, runs in ((1024, 20_000), (100 * 1024, 500)):
        request = EnforceInput(
            agent_id="my-chatbot", input=text_of(size), estimated_cost_usd=0.02, model="gpt"
        )
        us = median_us(lambda r=request: snapshot.enforce(r, spend, now), runs)  # type: ignore[misc]
        print(f"  {size // 1024:>4} KB input: {us:8.1f} us")
        if size == 1024:
            us = median_us(lambda r=request: snapshot.enforce(r, spend, now), 2000, evict=True)  # type: ignore[misc]
            print(f"  {size // 1024:>4} KB input: {us:8.1f} us, caches evicted before each call")
            # Explanation mode (pdp eval) is a method of its own: enforce above is untouched.
            us = median_us(lambda r=request: snapshot.explain(r, spend, now), 5000)  # type: ignore[misc]
            print(f"  {size // 1024:>4} KB input: {us:8.1f} us explained (every policy's result)")

    rng = random.Random(1)
    vocabulary = [f"{rng.choice(WORDS)} {rng.choice(WORDS)} zq{i}" for i in range(1000)]
    request = EnforceInput(agent_id="a", input=text_of(1024))
    results = {}
    for n in (5, 1000):
        snap = injection_snapshot(vocabulary[:n])
        results[n] = median_us(lambda s=snap: s.enforce(request, spend, now), 20_000)  # type: ignore[misc]
        print(f"  injection_scan with {n:>4} patterns, 1 KB: {results[n]:6.1f} us")
    print(f"  ratio 1000/5 patterns: {results[1000] / results[5]:.2f}x")


if __name__ == "__main__":
    main()
