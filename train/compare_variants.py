"""Compares variants of the learned injection tier with the committed
training settings, on the ``calibrate`` split (and, for reference, ``test``).

    .venv/bin/python train/compare_variants.py            # about 20 minutes on 2 busy cores
    .venv/bin/python train/compare_variants.py committed text-weight

Nothing is written: this is how the variants in ``train/README.md`` ("Tried
for recall on held-out jailbreaks") were measured. Every variant is fitted
on ``train`` and its `medium` threshold chosen on ``calibrate`` by the
committed rule (each benign kind, and each benign source with at least
``SOURCE_MIN`` calibration texts, at most 1% above it) unless it says
otherwise; it counts the jailbreaks (``jailbreak_llms``) and tool-result
injections (``asb_tool_injections``) at or above the threshold, and the
benign texts above it.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import csc_matrix, csr_matrix
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pdp.engine._injection_model import InjectionModel, key_set, model_keys  # noqa: E402
from pdp.engine._normalize import normalize  # noqa: E402
from train import train_injection_model as training  # noqa: E402
from train.extra_jailbreaks import EXTRA_JAILBREAKS, extra_jailbreaks, repeats, shingles  # noqa: E402
from train.injection_data import SOURCES, Example, load_all  # noqa: E402

C, WORD_CAP, MIN_WEIGHT, MIN_WORD_WEIGHT = 2.0, training.WORD_CAP, 0.1, 0.3

# Wording of a role-play jailbreak's structure, for counting the misses.
CUES = {
    "persona": r"\b(you are|act as|pretend|roleplay|role-play|persona|character named"
    r"|you will be)\b",
    "rule suspension": r"\b(no (rules|restrictions|limits|filters|guidelines)|ignore|bypass"
    r"|unfiltered|uncensored|without (any )?(restrictions|censorship|filter)|polic(y|ies)"
    r"|guidelines)\b",
    "stay in character": r"\b(stay in character|break character|never break"
    r"|remain in character|stay as)\b",
}


@dataclass
class Windows:
    """The training texts' windows as rows of key presence."""

    keys: list[str]
    x: csc_matrix
    text_of: np.ndarray  # the training text of each row
    labels: np.ndarray
    weights: np.ndarray  # the committed sample weights


def windows_of(train: list[Example], max_n: int = 3) -> Windows:
    docs: Counter[str] = Counter()
    for example in train:
        docs.update(set(model_keys(normalize(example.text), max_n)))
    most = 0.1 * len(train)
    keys = sorted(key for key, n in docs.items() if training.MIN_DOCS <= n <= most)
    automaton = key_set(keys)
    rows: list[set[int]] = []
    text_of: list[int] = []
    for i, example in enumerate(train):
        for window in training.text_windows(automaton, example.text):
            rows.append(window)
            text_of.append(i)
    owner = np.array(text_of)
    labels = np.array([int(train[i].injection) for i in owner])
    weights = np.array(
        [
            training.SOURCE_WEIGHTS.get(
                train[i].source, training.KIND_WEIGHTS.get(train[i].kind, 1.0)
            )
            for i in owner
        ]
    )
    return Windows(keys, training.matrix(rows, len(keys)).tocsc(), owner, labels, weights)


def fit_document(
    w: Windows,
    rows: np.ndarray,
    weights: np.ndarray,
    c: float = C,
    min_weight: float = MIN_WEIGHT,
    min_word_weight: float = MIN_WORD_WEIGHT,
) -> dict[str, object]:
    """The committed two-step fit (fit, drop weak keys, fit again) on ``rows``."""
    words = np.array([key.count(" ") == 2 for key in w.keys])
    x, labels = csr_matrix(w.x[rows]), w.labels[rows]
    coef, bias = training.capped_fit(x, labels, weights[rows], c, words, WORD_CAP)
    floor = np.where(words, min_word_weight, min_weight)
    kept = np.flatnonzero(np.abs(coef) >= floor)
    coef, bias = training.capped_fit(
        csr_matrix(x[:, kept]), labels, weights[rows], c, words[kept], WORD_CAP
    )
    features = sorted((w.keys[k], round(float(v), 4)) for k, v in zip(kept, coef, strict=True))
    return {
        "version": 2,
        "window": training.WINDOW,
        "overlap": training.OVERLAP,
        "bias": round(bias, 4),
        "thresholds": {"medium": 0.0},
        "features": features,
    }


def group_rule(calibration: list[Example], scores: Sequence[float], floor: bool = False) -> float:
    """The committed threshold rule on any scores; ``floor``: let at most
    floor(1% of n) texts of each group at or above it, instead of the 99th
    percentile."""
    groups: dict[str, list[float]] = {}
    for example, score in zip(calibration, scores, strict=True):
        if not example.injection:
            groups.setdefault(f"kind {example.kind}", []).append(score)
            groups.setdefault(f"source {example.source}", []).append(score)
    cuts = []
    for name, values in groups.items():
        if name.startswith("kind ") or len(values) >= training.SOURCE_MIN:
            ordered = sorted(values, reverse=True)
            cuts.append(ordered[len(values) // 100] if floor else np.percentile(values, 99))
    return float(max(cuts)) + 1e-3


def line(name: str, part: list[Example], scores: Sequence[float], threshold: float) -> str:
    hit = [score >= threshold for score in scores]

    def count(source: str) -> str:
        found = [h for h, e in zip(hit, part, strict=True) if e.source == source]
        return f"{sum(found)}/{len(found)} = {sum(found) / max(1, len(found)):.3f}"

    benign = sum(h for h, e in zip(hit, part, strict=True) if not e.injection)
    return (
        f"{name:44} jailbreaks {count('jailbreak_llms')}  "
        f"tool results {count('asb_tool_injections')}  benign flagged {benign}"
    )


class Comparison:
    def __init__(self, examples: list[Example]) -> None:
        fitted = {s.name for s in SOURCES if s.fitted}
        self.train = [e for e in examples if e.split == "train" and e.source in fitted]
        self.calibrate = [e for e in examples if e.split == "calibrate"]
        self.test = [e for e in examples if e.split == "test"]
        self.windows = windows_of(self.train)

    def scan_scores(self, document: dict[str, object], part: list[Example]) -> list[float]:
        model = InjectionModel.from_document(document)
        return [training.scan_score(model, e.text, masked=True) for e in part]

    def report(self, name: str, document: dict[str, object], floor: bool = False) -> None:
        calibration = self.scan_scores(document, self.calibrate)
        threshold = group_rule(self.calibrate, calibration, floor)
        print(line(f"{name} (calibrate)", self.calibrate, calibration, threshold), flush=True)
        test = self.scan_scores(document, self.test)
        print(line(f"{name} (test)", self.test, test, threshold), flush=True)

    def windows_fit(self, weights: np.ndarray | None = None, **options: float) -> dict[str, object]:
        w = self.windows
        rows = np.arange(len(w.labels))
        return fit_document(w, rows, w.weights if weights is None else weights, **options)

    # The variants, by name.

    def committed(self) -> None:
        self.report("committed settings", self.windows_fit())

    def text_weight(self) -> None:
        """Each text's windows share one text's weight (1/n, 1/sqrt n)."""
        w = self.windows
        n = np.bincount(w.text_of)[w.text_of]
        self.report("windows weighed 1/n", self.windows_fit(w.weights / n))
        self.report("windows weighed 1/sqrt(n)", self.windows_fit(w.weights / np.sqrt(n)))
        self.report(
            "jailbreak windows weighed 1/n",
            self.windows_fit(np.where(w.labels == 1, w.weights / n, w.weights)),
        )

    def weak_windows(self) -> None:
        """Multiple instances: a jailbreak's windows scoring below 0 under
        the committed fit (its harmless parts) are dropped."""
        w = self.windows
        document = self.windows_fit()
        weight = dict(document["features"])  # type: ignore[call-overload]
        coef = np.array([weight.get(key, 0.0) for key in w.keys])
        score = csr_matrix(w.x) @ coef + float(document["bias"])  # type: ignore[arg-type]
        n = np.bincount(w.text_of)[w.text_of]
        keep = np.flatnonzero(~((w.labels == 1) & (n > 1) & (score < 0)))
        self.report("weak jailbreak windows dropped", fit_document(w, keep, w.weights))

    def pruning(self) -> None:
        self.report(
            "keys kept from 0.05, words from 0.2",
            self.windows_fit(min_weight=0.05, min_word_weight=0.2),
        )
        self.report("no keys dropped", self.windows_fit(min_weight=0.0, min_word_weight=0.0))

    def regularisation(self) -> None:
        for c in (1.5, 3.0):
            self.report(f"C={c}", self.windows_fit(c=c))

    def four_grams(self) -> None:
        saved = self.windows
        self.windows = windows_of(self.train, max_n=4)
        try:
            self.report("word 1-4 grams", self.windows_fit())
            self.report("word 1-4 grams, C=4", self.windows_fit(c=4.0))
        finally:
            self.windows = saved

    def roleplay_floor(self) -> None:
        """Role-play prompts weighed 3 (not 2), and the floor(1% n) rule."""
        w = self.windows
        roleplay = np.array([self.train[i].source == "awesome_chatgpt_prompts" for i in w.text_of])
        document = self.windows_fit(np.where(roleplay, w.weights * 1.5, w.weights))
        self.report("role-play x3, floor rule", document, floor=True)

    def cleaned(self) -> None:
        """Training jailbreaks that the other 4 of 5 folds score lowest
        (out of fold) are left out: some are ordinary prompts."""
        w = self.windows
        fold = np.array(
            [int(hashlib.sha256(e.text.encode()).hexdigest()[:6], 16) % 5 for e in self.train]
        )[w.text_of]
        words = np.array([key.count(" ") == 2 for key in w.keys])
        x = csr_matrix(w.x)
        best = np.full(len(self.train), -np.inf)
        for f in range(5):
            inside = fold != f
            coef, bias = training.capped_fit(
                x[inside], w.labels[inside], w.weights[inside], C, words, WORD_CAP
            )
            np.maximum.at(best, w.text_of[~inside], x[~inside] @ coef + bias)
        jailbreaks = [i for i, e in enumerate(self.train) if e.source == "jailbreak_llms"]
        for share in (5, 10):
            cut = np.percentile(best[jailbreaks], share)
            dropped = {i for i in jailbreaks if best[i] < cut}
            keep = np.flatnonzero([i not in dropped for i in w.text_of])
            self.report(f"lowest {share}% of jailbreaks left out", fit_document(w, keep, w.weights))

    def misses(self) -> None:
        """The committed model's caught and missed `calibrate` jailbreaks:
        length, windows, role-play structure; and what recall 0.90 costs."""
        calibration = self.scan_scores(self.windows_fit(), self.calibrate)
        jailbreaks, scores = zip(
            *(
                (e, score)
                for e, score in zip(self.calibrate, calibration, strict=True)
                if e.source == "jailbreak_llms"
            ),
            strict=True,
        )
        threshold = group_rule(self.calibrate, calibration)
        for caught in (True, False):
            texts = [
                normalize(e.text)
                for e, score in zip(jailbreaks, scores, strict=True)
                if (score >= threshold) == caught
            ]
            found = {name: [bool(re.search(cue, t)) for t in texts] for name, cue in CUES.items()}
            cues = ", ".join(f"{name} {sum(hits)}" for name, hits in found.items())
            print(
                f"{'caught' if caught else 'missed'} {len(texts)}: median "
                f"{int(np.median([len(t) for t in texts]))} characters, "
                f"{sum(len(t) + 2 > 1.5 * training.WINDOW for t in texts)} in more than one "
                f"window; {cues}; all three {sum(map(all, zip(*found.values(), strict=True)))}"
            )
        needed = sorted(scores, reverse=True)[int(np.ceil(0.9 * len(scores))) - 1]
        flagged = Counter(
            e.source
            for e, score in zip(self.calibrate, calibration, strict=True)
            if not e.injection and score >= needed
        )
        benign = sum(not e.injection for e in self.calibrate)
        print(
            f"recall 0.90 needs a threshold of {needed:.2f} (not {threshold:.2f}): "
            f"{flagged.total()} of {benign} benign texts flagged, {dict(flagged.most_common())}"
        )

    def more_jailbreaks(self) -> None:
        """The extra jailbreaks fitted on as well, except those that repeat
        (word 3-gram Jaccard similarity 0.5 or more) a held-out injection."""
        held_out = [shingles(e.text) for e in self.calibrate + self.test if e.injection]
        known = {normalize(e.text) for e in self.train + self.calibrate + self.test}
        added = [
            Example(text, True, "extra_jailbreaks", "jailbreak", "train")
            for text in extra_jailbreaks()
            if normalize(text) not in known and not repeats(text, held_out)
        ]
        if not added:
            print(f"no extra jailbreaks: fetch {EXTRA_JAILBREAKS[0]} first")
            return
        saved = self.train, self.windows
        self.train = self.train + added
        self.windows = windows_of(self.train)
        try:
            self.report(f"{len(added)} more jailbreaks fitted on", self.windows_fit())
        finally:
            self.train, self.windows = saved

    def short_model(self) -> None:
        """A second windowed model fitted on the texts of one window only,
        for the short jailbreaks: alone, as the better of the two margins
        over their thresholds, and in place of the committed one for texts
        of one window."""
        w = self.windows
        short_rows = np.flatnonzero(np.bincount(w.text_of)[w.text_of] == 1)
        margins = []
        for document in (self.windows_fit(), fit_document(w, short_rows, w.weights)):
            scores = np.array(self.scan_scores(document, self.calibrate))
            margins.append(scores - group_rule(self.calibrate, list(scores)))
        committed, short = margins
        one_window = np.array(
            [len(normalize(e.text)) + 2 < 1.5 * training.WINDOW for e in self.calibrate]
        )
        for name, scores in (
            ("model of one-window texts", short),
            ("max(committed, one-window model)", np.maximum(committed, short)),
            ("one-window model for one-window texts", np.where(one_window, short, committed)),
        ):
            cut = group_rule(self.calibrate, list(scores))
            print(line(f"{name} (calibrate)", self.calibrate, list(scores), cut), flush=True)

    def text_models(self) -> None:
        """Whole-text TF-IDF logistic regressions (word 1-3 grams,
        character 2-5 grams within words), alone and as a second model."""
        labels = np.array([int(e.injection) for e in self.train])
        weights = np.array(
            [
                training.SOURCE_WEIGHTS.get(e.source, training.KIND_WEIGHTS.get(e.kind, 1.0))
                for e in self.train
            ]
        )
        committed = self.scan_scores(self.windows_fit(), self.calibrate)
        base = np.array(committed) - group_rule(self.calibrate, committed)
        vectorizers: dict[str, Callable[[], TfidfVectorizer]] = {
            "word 1-3": lambda: TfidfVectorizer(
                ngram_range=(1, 3), min_df=3, max_df=0.1, sublinear_tf=True
            ),
            "char 2-5": lambda: TfidfVectorizer(
                analyzer="char_wb",
                ngram_range=(2, 5),
                min_df=3,
                sublinear_tf=True,
                max_features=300_000,
            ),
        }
        for name, make in vectorizers.items():
            vectorizer = make()
            x = vectorizer.fit_transform([normalize(e.text) for e in self.train])
            model = LogisticRegression(
                C=10, class_weight="balanced", max_iter=3000, solver="liblinear"
            ).fit(x, labels, sample_weight=weights)
            scores = model.decision_function(
                vectorizer.transform([normalize(e.text) for e in self.calibrate])
            )
            threshold = group_rule(self.calibrate, scores)
            print(line(f"text TF-IDF {name} (calibrate)", self.calibrate, scores, threshold))
            margin = scores - threshold
            for label, combined in (
                (f"max(committed, {name})", np.maximum(base, margin)),
                (f"committed + {name} / 2", base + margin / 2),
            ):
                cut = group_rule(self.calibrate, list(combined))
                print(line(f"{label} (calibrate)", self.calibrate, list(combined), cut))


VARIANTS = {
    "committed": Comparison.committed,
    "misses": Comparison.misses,
    "text-weight": Comparison.text_weight,
    "weak-windows": Comparison.weak_windows,
    "pruning": Comparison.pruning,
    "regularisation": Comparison.regularisation,
    "four-grams": Comparison.four_grams,
    "roleplay-floor": Comparison.roleplay_floor,
    "cleaned": Comparison.cleaned,
    "more-jailbreaks": Comparison.more_jailbreaks,
    "short-model": Comparison.short_model,
    "text-models": Comparison.text_models,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", metavar="VARIANT", help=f"of {', '.join(VARIANTS)}")
    args = parser.parse_args()
    unknown = [name for name in args.variants if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}: choose from {', '.join(VARIANTS)}")
    examples, missing = load_all(training.evaluation_texts())
    if missing:
        print(f"missing mirrors for {', '.join(missing)}: fetch them first", file=sys.stderr)
        return 1
    comparison = Comparison(examples)
    for name in args.variants or VARIANTS:
        VARIANTS[name](comparison)
    return 0


if __name__ == "__main__":
    sys.exit(main())
