"""The data curve: accuracy against the number of labelled training songs, fitted as
accuracy = a + b·ln(n) per model and extrapolated to more songs.

The points are the result rows of a `--label-fraction` run: one per fold x round at
each share, n being the labelled songs the model actually trained on (`n_train +
n_val`: the training side the labels were kept for). The fit is ordinary least
squares; the interval at a new n is the 95 % confidence interval of the mean
accuracy there (the fitted line's uncertainty, not that of one more fold's score):

    se(n0) = s · sqrt(1/m + (ln n0 − mean ln n)² / Σ (ln n − mean ln n)²),
    a + b·ln n0 ± t(0.975, m − 2) · se(n0)

with m points and s² the residual variance (m − 2 degrees of freedom).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from mer_tfx.errors import ParameterError
from mer_tfx.experiment.fold_runner import parse_variant

# The paper's training side: 9/10 of 4Q's 900 clips.
PAPER_TRAIN_SONGS = 810


@dataclasses.dataclass(frozen=True)
class LogFit:
    """accuracy = a + b·ln(n), fitted on `m` points, evaluated at `at`.

    Attributes:
        a, b: intercept and slope (per unit of ln n).
        m: number of points.
        at: the n predicted at.
        prediction: a + b·ln(at).
        low, high: the confidence interval of the mean accuracy at `at` (NaN with
            fewer than 3 points).
        level: the interval's confidence level.
    """

    a: float
    b: float
    m: int
    at: float
    prediction: float
    low: float
    high: float
    level: float

    def __call__(self, n) -> np.ndarray:
        return self.a + self.b * np.log(np.asarray(n, dtype=np.float64))


def fit_log_accuracy(n: Sequence[float], accuracy: Sequence[float], *,
                     at: float = PAPER_TRAIN_SONGS, level: float = 0.95) -> LogFit:
    """Least-squares fit of accuracy = a + b·ln(n) and its prediction at `at`.

    Args:
        n: [points] labelled training songs, each > 0, at least two distinct values.
        accuracy: [points] the scores at those n (shares or %, as given).
        at: the n to predict at. Defaults to 810 (9/10 of the paper's 900 clips).
        level: confidence level of the interval. Defaults to 0.95.

    Returns:
        A `LogFit`.
    """
    from scipy import stats

    x = np.log(np.asarray(n, dtype=np.float64))
    y = np.asarray(accuracy, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(np.unique(x)) < 2:
        raise ParameterError("n and accuracy must be matched 1-D arrays with at least two "
                             f"distinct n. Received: n={list(n)!r}")
    if at <= 0 or not 0.0 < level < 1.0:
        raise ParameterError(f"at must be positive and level in (0, 1). Received: at={at}, "
                             f"level={level}")
    m = len(x)
    x_mean = float(np.mean(x))
    sxx = float(np.sum((x - x_mean) ** 2))
    b = float(np.sum((x - x_mean) * (y - np.mean(y))) / sxx)
    a = float(np.mean(y) - b * x_mean)
    x0 = math.log(at)
    prediction = a + b * x0
    if m > 2:
        s = math.sqrt(float(np.sum((y - a - b * x) ** 2)) / (m - 2))
        half = float(stats.t.ppf(0.5 + level / 2, m - 2)) * s * math.sqrt(
            1.0 / m + (x0 - x_mean) ** 2 / sxx)
        low, high = prediction - half, prediction + half
    else:
        low = high = math.nan
    return LogFit(a=a, b=b, m=m, at=float(at), prediction=prediction, low=low, high=high,
                  level=level)


def curve_model(variant: str, head: str) -> str:
    """The model a curve row belongs to: its variant without the label share, "+rest"
    kept apart, and the head unless the variant has no head to choose."""
    base, _, rest = parse_variant(variant)
    name = base + (" +rest" if rest else "")
    return name if base in ("baseline", "logreg") else f"{name} {head}"


def has_curve(rows: Sequence[Mapping]) -> bool:
    """Whether `rows` hold a learning curve (some variant trained on a share of the labels)."""
    return any(parse_variant(r["variant"])[1] < 1.0 for r in rows)


def curve_points(rows: Sequence[Mapping]) -> Dict[Tuple[float, str, str], List[Tuple[int, float]]]:
    """(segment_seconds, target, model) -> [(n, accuracy)] of every fold x round.

    The rows with every label count for the "+rest" curve too (at a share of 1 there
    is no rest to give stage 1)."""
    models = {(float(r["segment_seconds"]), r["target"], curve_model(r["variant"], r["head"]))
              for r in rows}
    points: Dict[Tuple[float, str, str], List[Tuple[int, float]]] = {}
    for row in rows:
        seconds, target = float(row["segment_seconds"]), row["target"]
        model = curve_model(row["variant"], row["head"])
        n = int(row["n_train"]) + int(row["n_val"] or 0)
        names = [model]
        if parse_variant(row["variant"])[1] >= 1.0:
            rest = model.replace(" ", " +rest ", 1) if " " in model else model + " +rest"
            names += [rest] if (seconds, target, rest) in models else []
        for name in names:
            points.setdefault((seconds, target, name), []).append((n, float(row["accuracy"])))
    return {k: v for k, v in points.items() if len({n for n, _ in v}) >= 2}


def curve_fits(rows: Sequence[Mapping], *, at: float = PAPER_TRAIN_SONGS
               ) -> Dict[Tuple[float, str, str], LogFit]:
    """A `fit_log_accuracy` per (segment_seconds, target, model) of `curve_points`."""
    return {key: fit_log_accuracy([n for n, _ in pts], [acc for _, acc in pts], at=at)
            for key, pts in sorted(curve_points(rows).items())}


def curve_section(rows: Sequence[Mapping], *, at: float = PAPER_TRAIN_SONGS) -> List[str]:
    """report.md's data-curve part (empty without a curve)."""
    if not has_curve(rows):
        return []
    fits = curve_fits(rows, at=at)
    if not fits:
        return []
    body = ["| segment | target | model | points | a (%) | b (% per ln n) | "
            f"accuracy at n = {at:g} (%) | 95 % interval |", "|---|---|---|---|---|---|---|---|"]
    for (seconds, target, model), fit in fits.items():
        interval = ("–" if math.isnan(fit.low)
                    else f"{100 * fit.low:.2f} – {100 * fit.high:.2f}")
        body.append(f"| {seconds:g} s | {target} | {model} | {fit.m} | {100 * fit.a:.2f} | "
                    f"{100 * fit.b:.2f} | {100 * fit.prediction:.2f} | {interval} |")
    return ["## Data curve (accuracy = a + b·ln n, n = labelled training songs)", "",
            "One point per fold x round at each label share; ordinary least squares; the "
            "interval is the 95 % confidence interval of the mean accuracy at n "
            "(`mer_tfx.experiment.curve`). An extrapolation, not a measurement.", "",
            *body, ""]
