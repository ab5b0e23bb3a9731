"""Trains the learned tier of the built-in injection detector and writes
``pdp/engine/data/injection_model.json``.

    .venv/bin/pip install -e '.[train]'
    .venv/bin/python train/train_injection_model.py

Data: ``train/injection_data.py`` (sources and licences in
``train/SOURCES.md``), read from local mirrors of the public repositories.
Each text falls in one split by a hash of its normalised form: the model is
fitted on ``train``, the thresholds are chosen on ``calibrate``, and
``test`` is only reported. Sets kept for independent measurement (garak,
CyberSecEval, BIPIA, Tensor Trust, the agent-governance-toolkit corpus,
Alpaca/AlpacaEval) are not read at all, and the PIGuard evaluation files in
``../shared/data/injection`` are removed from the training data by text.

Model: logistic regression over the presence of word 1-3 grams (and
character bigrams of unspaced scripts) in windows of normalised text, the
exact features and windows that ``pdp.engine._injection_model`` sums at run
time,
with every single word's weight bounded above by ``WORD_CAP``; the
strongest ``--features`` weights are kept. Thresholds per sensitivity:
``high`` lets ~2% of each kind of benign calibration text, and of each benign
source with at least ``SOURCE_MIN`` calibration texts, through, ``medium``
1%, ``low`` none.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.sparse import csr_matrix, diags
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pdp.engine._injection_model import (  # noqa: E402
    InjectionModel,
    key_set,
    model_keys,
    window_keys,
    windows,
)
from pdp.engine._mentions import mask_mentions  # noqa: E402
from pdp.engine._normalize import normalize  # noqa: E402
from train.injection_data import SOURCES, Example, load_all  # noqa: E402

OUT = REPO / "pdp" / "engine" / "data" / "injection_model.json"
WINDOW = int(os.environ.get("PDP_MODEL_WINDOW", "768"))
OVERLAP = 64
MIN_DOCS = 3
PERCENTILES = {"high": 98.0, "medium": 99.0, "low": 100.0}
# Role-play prompts ("I want you to act as ...") are the benign texts closest
# to a jailbreak in wording: weighed double in the fit, so the model keeps
# them under the threshold that jailbreaks must cross (chosen on calibrate).
SOURCE_WEIGHTS = {"awesome_chatgpt_prompts": 2.0}
# Hard negatives (texts about attacks, attack strings in code) are a few
# hundred among thousands: weighed triple, as their threshold binds with the
# role-play prompts'.
KIND_WEIGHTS = {"hard negative": 3.0}
# The most one single word may add to a score: with the bias (about -3.2)
# even four such words in a short text stay below the `medium` threshold
# (about 2.3), so no year, id, site name or "please" decides on its own.
# Chosen on `calibrate` among 1, 1.25, 1.5 and 2 (train/README.md).
WORD_CAP = 1.5
# A benign source with this many calibration texts is calibrated on its own
# as well as with its kind.
SOURCE_MIN = 100


def evaluation_texts() -> frozenset[str]:
    """Normalised texts of the shared evaluation sets, kept out of training."""
    shared = REPO.parent / "shared" / "data" / "injection"
    if not shared.is_dir():
        shared = Path("/work/shared/data/injection")
    texts: set[str] = set()
    for path in shared.glob("*.json"):
        for row in json.loads(path.read_text("utf-8")):
            texts.add(normalize(str(row["prompt"])))
    return frozenset(texts)


def vocabulary(examples: list[Example], max_df: float, word_min_docs: int) -> list[str]:
    """Keys in at least MIN_DOCS texts and at most ``max_df`` of them: a key
    in most texts (" the ", " you ") says little and costs a match each time.
    A single word must be in ``word_min_docs`` texts: a rare word (a year, a
    site's name) found in a few attacks would otherwise carry their label."""
    docs: Counter[str] = Counter()
    for example in examples:
        docs.update(set(model_keys(normalize(example.text))))
    most = max_df * len(examples)
    return sorted(
        key
        for key, n in docs.items()
        if (word_min_docs if key.count(" ") == 2 else MIN_DOCS) <= n <= most
    )


def text_windows(keys: object, text: str) -> list[set[int]]:
    """The feature indices present in each window, as ``InjectionModel.score``
    windows the text."""
    padded = f" {normalize(text)} "
    return [
        window_keys(keys, padded, start, end)
        for start, end in windows(len(padded), WINDOW, OVERLAP)
    ]


def matrix(rows: list[set[int]], width: int) -> csr_matrix:
    data, indices, indptr = [], [], [0]
    for row in rows:
        for index in row:
            indices.append(index)
            data.append(1.0)
        indptr.append(len(indices))
    return csr_matrix((data, indices, indptr), shape=(len(rows), width))


def fit(
    examples: list[Example],
    keys: list[str],
    c: float,
    penalty: str,
    word_scale: float,
    source_weights: dict[str, float],
    word_cap: float,
) -> tuple[np.ndarray, float]:
    """Logistic regression on the windows' key sets. Single words enter at
    ``word_scale`` (a phrase at 1): with one L2 penalty for all, a word then
    needs more evidence to reach a given weight, so no one word carries a
    decision that phrases around it do not support."""
    keys_set = key_set(keys)
    rows: list[set[int]] = []
    labels: list[int] = []
    sample_weights: list[float] = []
    for example in examples:
        for window in text_windows(keys_set, example.text):
            rows.append(window)
            labels.append(int(example.injection))
            sample_weights.append(
                source_weights.get(example.source, KIND_WEIGHTS.get(example.kind, 1.0))
            )
    scale = np.array([word_scale if key.count(" ") == 2 else 1.0 for key in keys])
    x = matrix(rows, len(keys)) @ diags(scale)
    if np.isfinite(word_cap):
        words = np.array([key.count(" ") == 2 for key in keys])
        return capped_fit(x, np.array(labels), np.array(sample_weights), c, words, word_cap)
    model = LogisticRegression(
        C=c,
        l1_ratio=1.0 if penalty == "l1" else 0.0,
        class_weight="balanced",
        max_iter=2000,
        solver="liblinear",
    )
    model.fit(x, np.array(labels), sample_weight=np.array(sample_weights))
    return model.coef_[0] * scale, float(model.intercept_[0])


def capped_fit(
    x: csr_matrix,
    labels: np.ndarray,
    sample_weights: np.ndarray,
    c: float,
    words: np.ndarray,
    word_cap: float,
) -> tuple[np.ndarray, float]:
    """The same L2 logistic regression as liblinear's (balanced classes, the
    intercept penalised like a weight), with every single word's weight
    bounded above by ``word_cap``: no one ordinary word ("2022", "id",
    "instagram") can then carry a short text over the threshold, and the
    phrases around it take up what the words can no longer say."""
    counts = np.bincount(labels, minlength=2)
    weight = sample_weights * (len(labels) / (2.0 * counts))[labels]
    sign = np.where(labels == 1, 1.0, -1.0)
    width = x.shape[1]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        margin = sign * (x @ theta[:width] + theta[width])
        # log(1 + exp(-m)) and its derivative, stable for large |m|.
        value = np.logaddexp(0.0, -margin)
        slope = -weight * sign * np.exp(-np.logaddexp(0.0, margin))
        grad = np.empty(width + 1)
        grad[:width] = c * (x.T @ slope) + theta[:width]
        grad[width] = c * slope.sum() + theta[width]
        return float(c * (weight @ value) + 0.5 * theta @ theta), grad

    bounds = [(None, word_cap) if word else (None, None) for word in words] + [(None, None)]
    result = minimize(
        loss,
        np.zeros(width + 1),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 5000, "maxcor": 20, "ftol": 1e-12, "gtol": 1e-6},
    )
    return result.x[:width], float(result.x[width])


def document(
    keys: list[str],
    weights: np.ndarray,
    bias: float,
    top: int,
    min_weight: float,
    min_word_weight: float,
) -> dict[str, object]:
    """The model file: the ``top`` strongest weights, without weak ones.
    Single words are frequent, so each costs many matches: they must be
    stronger (``min_word_weight``) to be kept."""
    order = np.argsort(-np.abs(weights))[:top]
    features = sorted(
        (keys[i], round(float(weights[i]), 4))
        for i in order
        if abs(weights[i]) >= (min_word_weight if keys[i].count(" ") == 2 else min_weight)
    )
    return {"version": 2, "window": WINDOW, "overlap": OVERLAP, "bias": round(bias, 4),
            "thresholds": {}, "features": features}  # fmt: skip


def scan_score(model: InjectionModel, text: str, masked: bool) -> float:
    """The score the scan acts on: with ``masked`` (sensitivity low and
    medium), a text fires only if it also fires with quotations about an
    attack blanked out, so it counts as the lower of the two scores."""
    score = model.score(normalize(text))
    if masked:
        blanked = mask_mentions(text)
        if blanked is not None:
            score = min(score, model.score(normalize(blanked)))
    return score


def thresholds(
    model: InjectionModel, calibration: list[Example], source_min: int
) -> dict[str, float]:
    """Per sensitivity, the highest percentile of each benign kind and of
    each benign source with at least ``source_min`` calibration texts (so a
    large, easy source of a kind cannot hide a hard one)."""
    chosen: dict[str, float] = {}
    for name, percentile in PERCENTILES.items():
        groups: dict[str, list[float]] = {}
        for example in calibration:
            if not example.injection:
                score = scan_score(model, example.text, masked=name != "high")
                groups.setdefault(f"kind {example.kind}", []).append(score)
                groups.setdefault(f"source {example.source}", []).append(score)
        cut = max(
            float(np.percentile(scores, percentile))
            for group, scores in groups.items()
            if group.startswith("kind ") or len(scores) >= source_min
        )
        chosen[name] = round(cut + 1e-3, 4)
    return chosen


def keys_per_kb(model: InjectionModel, examples: list[Example]) -> float:
    """Distinct keys found per KB of benign text (each adds a weight)."""
    size = found = 0
    for example in examples:
        if not example.injection:
            text = f" {normalize(example.text)} "
            size += len(text)
            found += len(window_keys(model.keys, text, 0, len(text)))
    return found / (size / 1024)


def report(model: InjectionModel, examples: list[Example], split: str) -> None:
    part = [e for e in examples if e.split == split]
    scores = [model.score(normalize(e.text)) for e in part]
    labels = [e.injection for e in part]
    print(f"== {split}: {len(part)} texts, ROC AUC {roc_auc_score(labels, scores):.4f}")
    for name, cut in model.thresholds.items():
        flagged = [scan_score(model, e.text, name != "high") >= cut for e in part]
        print(f"  {name:6} threshold {cut:8.3f}")
        for source in sorted({e.source for e in part}):
            rows = [f for f, e in zip(flagged, part, strict=True) if e.source == source]
            kind = "recall" if next(e for e in part if e.source == source).injection else "FPR"
            print(f"    {source:26} {len(rows):5}  {kind} {sum(rows) / len(rows):.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=30_000, help="weights kept")
    parser.add_argument(
        "--c",
        type=float,
        default=2.0,
        help="inverse regularisation (chosen on `calibrate`, see train/README.md)",
    )
    parser.add_argument("--penalty", choices=("l1", "l2"), default="l2")
    parser.add_argument(
        "--min-weight", type=float, default=0.1, help="drop weaker features (fewer keys)"
    )
    parser.add_argument(
        "--min-word-weight", type=float, default=0.3, help="the same for single words"
    )
    parser.add_argument("--max-df", type=float, default=0.1, help="drop keys in more texts")
    parser.add_argument(
        "--word-min-docs", type=int, default=MIN_DOCS, help="single words in fewer texts dropped"
    )
    parser.add_argument(
        "--word-scale", type=float, default=1.0, help="single words' value in the fit"
    )
    parser.add_argument(
        "--source-weight",
        action="append",
        default=[],
        metavar="SOURCE=WEIGHT",
        help=f"weigh a source's training texts (default 1; {SOURCE_WEIGHTS})",
    )
    parser.add_argument(
        "--source-min",
        type=int,
        default=SOURCE_MIN,
        help="calibrate each benign source with at least this many calibration texts on its own",
    )
    parser.add_argument(
        "--word-cap",
        type=float,
        default=WORD_CAP,
        help="bound above every single word's weight (inf: no bound, liblinear's fit)",
    )
    parser.add_argument(
        "--leave-out",
        action="append",
        default=[],
        metavar="SOURCE",
        help="neither fit nor calibrate on a source",
    )
    parser.add_argument(
        "--also-fit",
        action="append",
        default=[],
        metavar="SOURCE",
        help="fit on the train split of a source that is only calibrated on by default",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    source_weights = SOURCE_WEIGHTS | {
        name: float(weight)
        for name, _, weight in (item.partition("=") for item in args.source_weight)
    }
    started = time.monotonic()
    examples, missing = load_all(evaluation_texts())
    if missing:
        print(f"missing mirrors for {', '.join(missing)}: fetch them first", file=sys.stderr)
        return 1
    examples = [e for e in examples if e.source not in args.leave_out]
    fitted = {s.name for s in SOURCES if s.fitted} | set(args.also_fit)
    train = [e for e in examples if e.split == "train" and e.source in fitted]
    keys = vocabulary(train, args.max_df, args.word_min_docs)
    print(f"{len(train)} training texts, {len(keys)} candidate features")
    weights, bias = fit(
        train, keys, args.c, args.penalty, args.word_scale, source_weights, args.word_cap
    )
    kept = document(keys, weights, bias, args.features, args.min_weight, args.min_word_weight)
    # Fit again on the kept keys only, so the weights make up for the rest.
    keys = [key for key, _ in kept["features"]]  # type: ignore[attr-defined]
    weights, bias = fit(
        train, keys, args.c, args.penalty, args.word_scale, source_weights, args.word_cap
    )
    doc = document(keys, weights, bias, len(keys), 0.0, 0.0)
    doc["thresholds"] = {"high": 0.0, "medium": 0.0, "low": 0.0}
    model = InjectionModel.from_document(doc)
    calibration = [e for e in examples if e.split == "calibrate"]
    doc["thresholds"] = thresholds(model, calibration, args.source_min)
    model = InjectionModel.from_document(doc)
    report(model, examples, "calibrate")
    report(model, examples, "test")
    print(f"{keys_per_kb(model, examples):.0f} keys found per KB of benign text")
    args.out.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
    size = args.out.stat().st_size
    print(f"{len(doc['features'])} features, {size / 1e6:.2f} MB -> {args.out}")  # type: ignore[arg-type]
    print(f"{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
