"""Per-song test predictions (`predictions.csv`) and the quadrant scores built from them.

A two-target run answers two binary questions per test song, valence high? and
arousal high?; together they name one of the four quadrants of `mer_tfx.labels`
(Q1 +V+A, Q2 -V+A, Q3 -V-A, Q4 +V-A). The quadrant scores are computed from the
per-song rows alone, so they can be rebuilt from `predictions.csv`:

>>> rows = read_predictions("runs/4q/predictions.csv")   # doctest: +SKIP
>>> print(quadrant_table(rows))                          # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

import numpy as np

from mer_tfx.errors import ParameterError
from mer_tfx.experiment import csv_rows
from mer_tfx.labels import binary_to_quadrant

QUADRANTS = ("Q1", "Q2", "Q3", "Q4")

# Columns of predictions.csv, in order: one row per round x fold x duration x variant x
# head x target x test song.
PREDICTION_FIELDS = (
    "preset",
    "segment_seconds",
    "variant",
    "head",
    "target",
    "round",
    "fold",
    "song_id",
    "label",
    "probability_high",
    "predicted",
)
_INT_FIELDS = {"round", "fold", "label", "predicted"}
_FLOAT_FIELDS = {"segment_seconds", "probability_high"}
# What one model's answer for one song is keyed on, target aside.
_MODEL_KEYS = ("preset", "segment_seconds", "variant", "head", "round", "fold")


def prediction_rows(*, tag: Mapping, target: str, song_ids: Sequence[str],
                    labels: Sequence[int], probability_high: Sequence[float],
                    predicted: Sequence[int]) -> List[dict]:
    """The predictions.csv rows of one model and target on one fold's test songs.

    Args:
        tag: preset, segment_seconds, variant, head, round and fold of the model.
        target: "valence" or "arousal".
        song_ids: [test songs] ids.
        labels: int [test songs] true 0/1 labels.
        probability_high: float [test songs] the model's probability of "high".
        predicted: int [test songs] the label the model predicts (what the scores use).
    """
    return [{**{k: tag[k] for k in _MODEL_KEYS}, "target": target, "song_id": str(song),
             "label": int(y), "probability_high": float(p), "predicted": int(q)}
            for song, y, p, q in zip(song_ids, labels, probability_high, predicted, strict=True)]


def write_predictions(rows: Iterable[Mapping], path: Path) -> Path:
    """Writes rows to a CSV with the `PREDICTION_FIELDS` columns."""
    return csv_rows.write_rows(rows, path, PREDICTION_FIELDS)


def read_predictions(path: Path) -> List[dict]:
    """Reads `predictions.csv` back into typed rows."""
    return csv_rows.read_rows(path, ints=_INT_FIELDS, floats=_FLOAT_FIELDS)


@dataclasses.dataclass(frozen=True)
class QuadrantScores:
    """Four-class scores of quadrants named by two binary answers.

    Attributes:
        accuracy: share of songs whose quadrant is right.
        macro_f1: F1 per quadrant, averaged with equal weights.
        confusion: int [4, 4], rows the true quadrant, columns the predicted one, in
            `QUADRANTS` order.
        n: number of songs.
    """

    accuracy: float
    macro_f1: float
    confusion: np.ndarray
    n: int


def quadrant_scores(y_true: Sequence[str], y_pred: Sequence[str]) -> QuadrantScores:
    """scikit-learn's accuracy, macro-F1 (`zero_division=0`) and confusion matrix over
    the labels Q1..Q4 of true and predicted quadrant names."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    y_true, y_pred = list(y_true), list(y_pred)
    if not y_true or len(y_true) != len(y_pred):
        raise ParameterError("y_true and y_pred must be non-empty and of the same length. "
                             f"Received: {len(y_true)} and {len(y_pred)} quadrants")
    bad = sorted(set(y_true + y_pred) - set(QUADRANTS))
    if bad:
        raise ParameterError(f"Quadrants must be among {QUADRANTS}. Received: {bad}")
    return QuadrantScores(
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, labels=list(QUADRANTS), average="macro",
                                zero_division=0)),
        confusion=confusion_matrix(y_true, y_pred, labels=list(QUADRANTS)), n=len(y_true))


def song_quadrants(rows: Sequence[Mapping]) -> Dict[tuple, Tuple[List[str], List[str]]]:
    """(true, predicted) quadrants per model and fold, from prediction rows.

    Returns:
        (preset, segment_seconds, variant, head, round, fold) -> (true quadrants,
        predicted quadrants), one per test song with both a valence and an arousal row
        (songs with only one of the two are left out).
    """
    answers: Dict[tuple, Dict[str, Dict[str, Tuple[int, int]]]] = {}
    for row in rows:
        key = tuple(row[k] for k in _MODEL_KEYS)
        answers.setdefault(key, {}).setdefault(row["song_id"], {})[row["target"]] = (
            int(row["label"]), int(row["predicted"]))
    out = {}
    for key, songs in answers.items():
        both = [s for s in sorted(songs) if {"valence", "arousal"} <= songs[s].keys()]
        if both:
            out[key] = (
                [binary_to_quadrant(songs[s]["valence"][0], songs[s]["arousal"][0]) for s in both],
                [binary_to_quadrant(songs[s]["valence"][1], songs[s]["arousal"][1]) for s in both])
    return out


@dataclasses.dataclass(frozen=True)
class QuadrantSummary:
    """Quadrant scores of one setting (duration, variant, head) over its folds.

    Attributes:
        folds: one `QuadrantScores` per fold x round.
        pooled: the scores of every test song of every fold x round together.
    """

    segment_seconds: float
    variant: str
    head: str
    folds: List[QuadrantScores]
    pooled: QuadrantScores


def quadrant_summaries(rows: Sequence[Mapping]) -> List[QuadrantSummary]:
    """Per-fold and pooled quadrant scores of every setting that predicts both targets."""
    by_setting: Dict[tuple, List[Tuple[List[str], List[str]]]] = {}
    for key, pair in sorted(song_quadrants(rows).items(), key=lambda item: item[0][1:]):
        _, seconds, variant, head, _, _ = key
        by_setting.setdefault((float(seconds), variant, head), []).append(pair)
    out = []
    for (seconds, variant, head), pairs in by_setting.items():
        pooled = quadrant_scores([q for t, _ in pairs for q in t], [q for _, p in pairs for q in p])
        out.append(QuadrantSummary(seconds, variant, head,
                                   [quadrant_scores(t, p) for t, p in pairs], pooled))
    return out


def _pct(values: Sequence[float]) -> str:
    values = np.asarray(values, float)
    if values.size == 0:
        return "–"
    std = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    return f"{100 * float(np.mean(values)):.2f} ± {100 * std:.2f}"


def confusion_table(confusion: np.ndarray) -> str:
    """A 4x4 confusion matrix as Markdown: rows true, columns predicted quadrants."""
    lines = ["| true \\ predicted | " + " | ".join(QUADRANTS) + " |",
             "|---|" + "|".join("---" for _ in QUADRANTS) + "|"]
    lines += [f"| {q} | " + " | ".join(str(int(c)) for c in confusion[i]) + " |"
              for i, q in enumerate(QUADRANTS)]
    return "\n".join(lines)


def quadrant_section(rows: Sequence[Mapping]) -> List[str]:
    """report.md's quadrant part: a summary table, then each setting's pooled confusion
    matrix. Empty when no setting has both targets' predictions."""
    summaries = quadrant_summaries(rows)
    if not summaries:
        return []
    body = ["| segment | variant | head | accuracy (folds) | macro-F1 (folds) | accuracy "
            "(pooled) | macro-F1 (pooled) | songs |", "|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        body.append(f"| {s.segment_seconds:g} s | {s.variant} | {s.head} | "
                    f"{_pct([f.accuracy for f in s.folds])} | "
                    f"{_pct([f.macro_f1 for f in s.folds])} | {100 * s.pooled.accuracy:.2f} | "
                    f"{100 * s.pooled.macro_f1:.2f} | {s.pooled.n} |")
    parts = ["## Quadrants (the valence and arousal answers together)", "",
             "Q1 +V+A, Q2 −V+A, Q3 −V−A, Q4 +V−A. Per fold: mean ± std over folds x rounds; "
             "pooled: every test song of every fold x round at once (scikit-learn's "
             "`accuracy_score`, `f1_score(average=\"macro\")`, `confusion_matrix`), in %.",
             "", *body, ""]
    for s in summaries:
        parts += [f"### Pooled confusion matrix: {s.segment_seconds:g} s {s.variant} {s.head}", "",
                  confusion_table(s.pooled.confusion), ""]
    return parts


def mean_fold_scores(rows: Sequence[Mapping]) -> Tuple[float, float]:
    """(accuracy, macro-F1) of the quadrants averaged over every model x fold in `rows`
    (NaN, NaN when none predicts both targets)."""
    pairs = list(song_quadrants(rows).values())
    if not pairs:
        return math.nan, math.nan
    scores = [quadrant_scores(t, p) for t, p in pairs]
    return (float(np.mean([s.accuracy for s in scores])),
            float(np.mean([s.macro_f1 for s in scores])))
