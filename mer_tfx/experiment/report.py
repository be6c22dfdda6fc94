"""Scores, statistics and the Markdown report of an experiment run.

Everything here works on plain Python rows (one dict per fold x round x
duration x target x variant, the rows of `results.csv`), so the tables can be
rebuilt from a `results.csv` without rerunning anything:

>>> rows = read_results("runs/4q/results.csv")     # doctest: +SKIP
>>> print(performance_table(rows))                  # doctest: +SKIP

Layout follows He & Ferguson: Table 4 (time per epoch and per fold), Table 5
(mean ± std over folds and rounds per segment duration and target), Table 6
(variants compared), plus paired t-tests on matched fold x round scores. When a
comparison spans several rounds, each round gets its own paired t-test and the pooled
scores get the Nadeau–Bengio corrected resampled t-test (`corrected_ttest`), because the
folds of different rounds share songs.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mer_tfx.errors import ParameterError
from mer_tfx.experiment import csv_rows

# Columns of results.csv, in order.
RESULT_FIELDS = (
    "dataset",
    "preset",
    "segment_seconds",
    "variant",
    "head",
    "target",
    "round",
    "fold",
    "accuracy",
    "f1",
    "val_accuracy",
    "majority_accuracy",
    "majority_f1",
    "unlabeled_clips",
    "ae_epochs",
    "ae_best_epoch",
    "ae_seconds",
    "head_epochs",
    "head_best_epoch",
    "head_seconds",
    "fold_seconds",
    "n_train",
    "n_val",
    "n_test",
    "seed",
)
_INT_FIELDS = {"round", "fold", "unlabeled_clips", "ae_epochs", "ae_best_epoch", "head_epochs", "head_best_epoch",
               "n_train", "n_val", "n_test", "seed"}
_FLOAT_FIELDS = {"segment_seconds", "accuracy", "f1", "val_accuracy", "majority_accuracy", "majority_f1",
                 "ae_seconds", "head_seconds", "fold_seconds"}


# --------------------------------------------------------------------------- scores


def binary_scores(*, y_true: Sequence[int], y_pred: Sequence[int]) -> Tuple[float, float]:
    """Accuracy and binary F1 with positive class 1 ("high").

    Args:
        y_true: int [songs], 0/1.
        y_pred: int [songs], 0/1.

    Returns:
        (accuracy, f1). F1 is 0.0 when no song is predicted or labelled high
        (sklearn's `zero_division=0`).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or y_true.size == 0:
        raise ParameterError(
            "y_true and y_pred must be non-empty 1-D arrays of the same length. Received: "
            f"y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )
    bad = set(np.unique(np.concatenate([y_true, y_pred]))) - {0, 1}
    if bad:
        raise ParameterError(f"Labels must be 0 or 1. Received: {sorted(bad)}")
    from sklearn.metrics import accuracy_score, f1_score

    accuracy = accuracy_score(y_true, y_pred)
    f1 = f1_score(y_true, y_pred, pos_label=1, average="binary", zero_division=0)
    return float(accuracy), float(f1)


def majority_class_scores(
    *, train_labels: Sequence[int], test_labels: Sequence[int]
) -> Tuple[float, float]:
    """Scores of always predicting the training fold's majority class.

    This is the floor every model must beat. Ties go to class 1 ("high").

    Args:
        train_labels: int [train songs], 0/1.
        test_labels: int [test songs], 0/1.

    Returns:
        (accuracy, f1) on `test_labels`.
    """
    train_labels = np.asarray(train_labels, dtype=np.int64)
    if train_labels.size == 0:
        raise ParameterError("train_labels must not be empty. Received: 0 labels")
    counts = np.bincount(train_labels, minlength=2)
    majority = 1 if counts[1] >= counts[0] else 0
    test_labels = np.asarray(test_labels, dtype=np.int64)
    return binary_scores(y_true=test_labels, y_pred=np.full_like(test_labels, majority))


@dataclasses.dataclass(frozen=True)
class PairedTTest:
    """Result of a paired t-test of `a` against `b` (mean_diff = mean(a - b))."""

    t: float
    p: float
    n: int
    mean_diff: float


def paired_ttest(a: Sequence[float], b: Sequence[float]) -> PairedTTest:
    """`scipy.stats.ttest_rel` on matched scores (same fold x round in the same order).

    With fewer than 2 pairs t and p are NaN; when every difference is the same
    number the test is degenerate: t = ±inf, p = 0 if that number is non-zero,
    t = NaN, p = 1 if it is zero.
    """
    a, b = _paired_arrays(a, b)
    degenerate = _degenerate(a - b)
    if degenerate is not None:
        return degenerate
    from scipy import stats

    result = stats.ttest_rel(a, b)
    return PairedTTest(t=float(result.statistic), p=float(result.pvalue), n=int(a.size),
                       mean_diff=float(np.mean(a - b)))


def corrected_ttest(a: Sequence[float], b: Sequence[float], *, n_train: float, n_test: float
                    ) -> PairedTTest:
    """The Nadeau–Bengio corrected resampled t-test on matched fold x round scores.

    When k-fold cross-validation is repeated for r rounds, the J = k·r scores are not
    independent (every two training sets share most of their songs), so the paired
    t-test's variance var(d) / J is too small and its p too low. The correction adds
    n_test / n_train to the 1 / J factor:

        t = mean(d) / sqrt((1/J + n_test/n_train) · var(d, ddof=1)),  df = J − 1,

    with d = a − b and p two-sided from Student's t. Degenerate cases as in
    `paired_ttest`: fewer than 2 pairs gives t = p = NaN; identical differences give
    t = ±inf, p = 0 when they are non-zero and t = NaN, p = 1 when they are zero.

    Args:
        a: float [J], one score of setting A per fold x round.
        b: float [J], the scores of setting B on the same folds x rounds, same order.
        n_train: songs a model was fitted on. `comparisons` passes the mean of
            `n_train + n_val` over the matched rows of both settings: the early-stopping
            songs come from the training side and choose the weights, so they count.
        n_test: songs a fold is scored on (`comparisons` passes the mean `n_test`).

    Returns:
        `PairedTTest` with n = J and mean_diff = mean(a − b).

    Reference:
        Nadeau & Bengio, "Inference for the generalization error", Machine Learning 52,
        2003; Bouckaert & Frank, "Evaluating the replicability of significance tests for
        comparing learning algorithms", PAKDD 2004.
    """
    a, b = _paired_arrays(a, b)
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if not (isinstance(value, (int, float, np.number)) and np.isfinite(value) and value > 0):
            raise ParameterError(f"{name} must be a positive number. Received: {name}={value}")
    diff = a - b
    degenerate = _degenerate(diff)
    if degenerate is not None:
        return degenerate
    from scipy import stats

    n = int(diff.size)
    t = float(np.mean(diff) / math.sqrt((1 / n + n_test / n_train) * np.var(diff, ddof=1)))
    p = float(2 * stats.t.sf(abs(t), df=n - 1))
    return PairedTTest(t=t, p=p, n=n, mean_diff=float(np.mean(diff)))


def _paired_arrays(a: Sequence[float], b: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ParameterError(
            f"a and b must be 1-D and matched. Received: a.shape={a.shape}, b.shape={b.shape}"
        )
    return a, b


def _degenerate(diff: np.ndarray) -> Optional[PairedTTest]:
    """The result when there is no variance to test with (< 2 pairs, equal differences)."""
    n = int(diff.size)
    mean_diff = float(np.mean(diff)) if n else math.nan
    if n < 2:
        return PairedTTest(t=math.nan, p=math.nan, n=n, mean_diff=mean_diff)
    if np.allclose(diff, diff[0], rtol=0.0, atol=1e-12):
        if abs(diff[0]) <= 1e-12:
            return PairedTTest(t=math.nan, p=1.0, n=n, mean_diff=mean_diff)
        return PairedTTest(t=math.copysign(math.inf, diff[0]), p=0.0, n=n, mean_diff=mean_diff)
    return None


# --------------------------------------------------------------------------- rows


def write_results(rows: Iterable[Mapping], path: Path) -> Path:
    """Writes rows to a CSV with the `RESULT_FIELDS` columns (extra keys are dropped)."""
    return csv_rows.write_rows(rows, path, RESULT_FIELDS)


def read_results(path: Path) -> List[dict]:
    """Reads `results.csv` back into typed rows."""
    return csv_rows.read_rows(path, ints=_INT_FIELDS, floats=_FLOAT_FIELDS)


def _group(rows: Iterable[Mapping], keys: Sequence[str]) -> Dict[tuple, List[Mapping]]:
    groups: Dict[tuple, List[Mapping]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups


def _mean_std(values: Sequence[float]) -> Tuple[float, float]:
    values = np.asarray([v for v in values if v is not None and not math.isnan(v)], float)
    if values.size == 0:
        return math.nan, math.nan
    std = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    return float(np.mean(values)), std


def _pct(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "–"
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def _seconds(value: float) -> str:
    if math.isnan(value):
        return "–"
    if value >= 3600:
        return f"{value / 3600:.2f} h"
    return f"{value:.1f} s"


def _duration_key(row: Mapping) -> Tuple[float, str]:
    return (float(row["segment_seconds"]), str(row["preset"]))


def _markdown(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in line) + " |" for line in body]
    return "\n".join(lines)


# --------------------------------------------------------------------------- tables


def time_table(rows: Sequence[Mapping]) -> str:
    """Table 4: mean time per epoch, epochs per fold and time per fold, per stage.

    The autoencoder is trained once per fold x round x duration x masking variant
    and shared by the targets, so its cost is counted once per such group.
    """
    body = []
    for (preset, seconds, variant, head), group in sorted(
        _group(rows, ("preset", "segment_seconds", "variant", "head")).items(),
        key=lambda item: (item[0][1], item[0][2], item[0][3]),
    ):
        ae_runs = {
            (r["round"], r["fold"]): (r["ae_seconds"], r["ae_epochs"])
            for r in group
            if r["ae_epochs"] not in (None, "", 0)
        }
        ae_per_epoch = [s / e for s, e in ae_runs.values() if e]
        ae_epochs = [e for _, e in ae_runs.values()]
        ae_fold = [s for s, _ in ae_runs.values()]
        head_per_epoch = [r["head_seconds"] / r["head_epochs"] for r in group if r["head_epochs"]]
        head_epochs = [r["head_epochs"] for r in group if r["head_epochs"]]
        head_fold = [r["head_seconds"] for r in group if r["head_epochs"]]
        stage1 = (
            f"{_seconds(_mean_std(ae_per_epoch)[0])}/epoch, {_mean_std(ae_epochs)[0]:.0f} epochs, "
            f"{_seconds(_mean_std(ae_fold)[0])}/fold"
            if ae_runs
            else "–"
        )
        stage2 = (
            f"{_seconds(_mean_std(head_per_epoch)[0])}/epoch, {_mean_std(head_epochs)[0]:.0f} "
            f"epochs, {_seconds(_mean_std(head_fold)[0])}/fold"
            if head_epochs
            else "–"
        )
        body.append([preset, f"{seconds:g} s", variant, head, stage1, stage2])
    header = ["preset", "segment", "variant", "head", "stage 1: autoencoder (per fold)",
              "stage 2: head per target (baseline: joint CNN+BiLSTM)"]
    return _markdown(header, body)


def performance_table(rows: Sequence[Mapping], *, variant: Optional[str] = None) -> str:
    """Table 5: accuracy and F1 (mean ± std over folds x rounds, in %) per duration x target.

    Args:
        rows: result rows.
        variant: the variant to tabulate. Defaults to the first variant in `rows`.

    Returns:
        A Markdown table with the majority-class baseline beside each score.
    """
    if not rows:
        return "(no results)"
    variant = variant or rows[0]["variant"]
    chosen = [r for r in rows if r["variant"] == variant]
    targets = list(dict.fromkeys(r["target"] for r in chosen))
    header = ["preset", "segment", "head"]
    for target in targets:
        header += [f"{target} accuracy", f"{target} F1", f"{target} majority acc / F1"]
    body = []
    for (preset, seconds, head), group in sorted(
        _group(chosen, ("preset", "segment_seconds", "head")).items(),
        key=lambda item: (item[0][1], item[0][2]),
    ):
        line = [preset, f"{seconds:g} s", head]
        for target in targets:
            tg = [r for r in group if r["target"] == target]
            line.append(_pct(*_mean_std([r["accuracy"] for r in tg])))
            line.append(_pct(*_mean_std([r["f1"] for r in tg])))
            line.append(
                f"{_pct(*_mean_std([r['majority_accuracy'] for r in tg]))} / "
                f"{_pct(*_mean_std([r['majority_f1'] for r in tg]))}"
            )
        body.append(line)
    return _markdown(header, body)


def variants_table(rows: Sequence[Mapping]) -> str:
    """Table 6: every variant and head compared, per duration and target (mean ± std, %)."""
    body = []
    for (seconds, target), group in sorted(
        _group(rows, ("segment_seconds", "target")).items(), key=lambda item: item[0]
    ):
        for (variant, head), vg in _group(group, ("variant", "head")).items():
            body.append([
                f"{seconds:g} s",
                target,
                variant,
                head,
                _pct(*_mean_std([r["accuracy"] for r in vg])),
                _pct(*_mean_std([r["f1"] for r in vg])),
                _pct(*_mean_std([r.get("val_accuracy", math.nan) for r in vg])),
                str(len(vg)),
            ])
        body.append([
            f"{seconds:g} s",
            target,
            "majority class",
            "–",
            _pct(*_mean_std([r["majority_accuracy"] for r in group])),
            _pct(*_mean_std([r["majority_f1"] for r in group])),
            "",
            "",
        ])
    return _markdown(["segment", "target", "variant", "head", "accuracy", "F1",
                      "validation accuracy", "runs"], body)


PAIRED_T = "paired t"
CORRECTED_T = "corrected resampled t"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One t-test between two settings on matched fold x round scores.

    `rounds` names the scores tested: one round ("round 1 (split seed 102)") or, on the
    pooled line of a comparison that spans several rounds, "2 rounds pooled". `method` is
    `PAIRED_T` (`paired_ttest`) or, on pooled lines, `CORRECTED_T` (`corrected_ttest`).
    """

    kind: str  # "durations", "masking", "heads", "vs baseline", ...
    target: str
    metric: str
    a: str
    b: str
    test: PairedTTest
    rounds: str = ""
    method: str = PAIRED_T


def _round_label(round_: int, rows: Sequence[Mapping]) -> str:
    seeds = {r.get("seed") for r in rows}
    if len(seeds) != 1 or None in seeds:
        return f"round {round_}"
    # make_folds shuffles round r with random_state = seed + r.
    return f"round {round_} (split seed {seeds.pop() + round_})"


def _tests(kind: str, target: str, metric: str, a_name: str, b_name: str,
           rows_a: Sequence[Mapping], rows_b: Sequence[Mapping]) -> List[Comparison]:
    """A against B on their matched fold x round scores: one paired t-test when they share
    one round; else a paired t-test per round, then the corrected test over all rounds."""
    a = {(r["round"], r["fold"]): r for r in rows_a}
    b = {(r["round"], r["fold"]): r for r in rows_b}
    keys = sorted(a.keys() & b.keys())
    by_round: Dict[int, list] = {}
    for key in keys:
        by_round.setdefault(key[0], []).append(key)

    def scores(some):
        return [a[k][metric] for k in some], [b[k][metric] for k in some]

    def line(test, rounds, method=PAIRED_T):
        return Comparison(kind, target, metric, a_name, b_name, test, rounds, method)

    out = [line(paired_ttest(*scores(some)), _round_label(round_, [a[k] for k in some]))
           for round_, some in by_round.items()]
    if len(by_round) < 2:
        return out or [line(paired_ttest([], []), "")]
    matched = [a[k] for k in keys] + [b[k] for k in keys]
    n_test = _mean_std([r.get("n_test") for r in matched])[0]
    n_train = _mean_std([r["n_train"] + (r.get("n_val") or 0) for r in matched
                         if r.get("n_train") is not None])[0]
    if math.isnan(n_test) or math.isnan(n_train) or n_test <= 0 or n_train <= 0:
        diff = np.subtract(*scores(keys))  # rows without song counts: nothing to correct with
        test = PairedTTest(t=math.nan, p=math.nan, n=len(keys), mean_diff=float(np.mean(diff)))
    else:
        test = corrected_ttest(*scores(keys), n_train=n_train, n_test=n_test)
    return out + [line(test, f"{len(by_round)} rounds pooled", CORRECTED_T)]


def comparisons(rows: Sequence[Mapping], *, metrics: Sequence[str] = ("accuracy", "f1")
                ) -> List[Comparison]:
    """Paired t-tests between durations (same variant, head, target), between each
    masking variant and "no-mask" (same duration, head, target), between a share of the
    labels with the rest of the training audio given to stage 1 ("... +rest") and
    without it, between each head and
    the first head run (same duration, variant, target), and between every setting and
    each reference: the jointly trained "baseline" and the "logreg" floor (same
    duration, target).

    A comparison whose matched scores come from one round is one paired t-test. One
    that spans several rounds is a paired t-test per round (over its k folds) followed
    by the pooled line: `corrected_ttest` over all k x r scores, since the folds of
    different rounds share songs and the plain paired t-test over them is
    anti-conservative."""
    out: List[Comparison] = []

    def pair(kind, target, rows_a, rows_b, a_name, b_name):
        for metric in metrics:
            out.extend(_tests(kind, target, metric, a_name, b_name, rows_a, rows_b))

    by_setting = _group(rows, ("segment_seconds", "variant", "head", "target"))
    settings = sorted(by_setting)
    for i, (sec_a, var_a, head_a, tgt_a) in enumerate(settings):
        for sec_b, var_b, head_b, tgt_b in settings[i + 1:]:
            if (var_a, head_a, tgt_a) != (var_b, head_b, tgt_b) or sec_a == sec_b:
                continue
            pair("durations", tgt_a, by_setting[(sec_a, var_a, head_a, tgt_a)],
                 by_setting[(sec_b, var_b, head_b, tgt_b)], f"{sec_a:g} s {var_a} {head_a}",
                 f"{sec_b:g} s {var_b} {head_b}")
    for (seconds, variant, head, target), group in sorted(by_setting.items()):
        if not variant.startswith("mask-") or (seconds, "no-mask", head, target) not in by_setting:
            continue
        pair("masking", target, group, by_setting[(seconds, "no-mask", head, target)],
             f"{seconds:g} s {variant} {head}", f"{seconds:g} s no-mask {head}")
    for (seconds, variant, head, target), group in sorted(by_setting.items()):
        without = (seconds, variant[: -len(" +rest")], head, target)
        if not variant.endswith(" +rest") or without not in by_setting:
            continue
        pair("unlabelled audio", target, group, by_setting[without],
             f"{seconds:g} s {variant} {head}", f"{seconds:g} s {without[1]} {head}")
    fixed = ("baseline", "logreg")  # variants with one model of their own, no head to choose

    def is_fixed(variant: str) -> bool:  # also on a share of the labels ("baseline labels=25%")
        return variant.partition(" labels=")[0] in fixed

    first_head = next(iter(dict.fromkeys(r["head"] for r in rows if not is_fixed(r["variant"]))),
                      None)
    for (seconds, variant, head, target), group in sorted(by_setting.items()):
        reference = (seconds, variant, first_head, target)
        if is_fixed(variant) or head == first_head or reference not in by_setting:
            continue
        pair("heads", target, group, by_setting[reference],
             f"{seconds:g} s {variant} {head}", f"{seconds:g} s {variant} {first_head}")
    for reference_variant in fixed:  # every other setting against the two references
        for (seconds, variant, head, target), group in sorted(by_setting.items()):
            reference = [k for k in by_setting if k[0] == seconds and k[1] == reference_variant
                         and k[3] == target]
            if variant == reference_variant or not reference or (
                    reference_variant == "logreg" and is_fixed(variant)):
                continue
            pair(f"vs {reference_variant}", target, group, by_setting[reference[0]],
                 f"{seconds:g} s {variant} {head}", f"{seconds:g} s {reference_variant}")
    return out


def ttest_table(tests: Sequence[Comparison]) -> str:
    """The t-tests as a Markdown table. When some comparison spans several rounds, a
    "rounds" and a "test" column say which scores and which test each line is."""
    if not tests:
        return "(no paired comparisons: run more than one duration, or a mask-* variant with no-mask)"
    pooled = any(c.method != PAIRED_T for c in tests)
    body = [
        [c.kind, c.target, c.metric, c.a, c.b] + ([c.rounds, c.method] if pooled else [])
        + [f"{100 * c.test.mean_diff:+.2f}", f"{c.test.t:.3f}", f"{c.test.p:.4f}", str(c.test.n)]
        for c in tests
    ]
    header = ["comparison", "target", "metric", "A", "B"] + (["rounds", "test"] if pooled else [])
    return _markdown(header + ["mean(A−B) %", "t", "p", "n"], body)


def _ttest_section(rows: Sequence[Mapping]) -> List[str]:
    tests = comparisons(rows)
    if not any(c.method == CORRECTED_T for c in tests):
        return ["## Paired t-tests (scipy.stats.ttest_rel on matched fold x round scores)", "",
                ttest_table(tests), ""]
    return [
        "## Paired t-tests (per round: scipy.stats.ttest_rel on matched folds; pooled: "
        "corrected resampled t-test)",
        "",
        "The rounds reshuffle the same songs, so the fold x round scores of different rounds "
        "are not independent and a plain paired t-test over all of them is anti-conservative. "
        "Each comparison has a paired t-test per round (over its folds) and a pooled line "
        "with the Nadeau–Bengio corrected resampled t-test over the J folds x rounds: "
        "t = mean(d) / sqrt((1/J + n_test/n_train) · var(d)), df = J − 1, with n_train the "
        "songs a model was fitted on (training and early-stopping songs) and n_test the test "
        "songs of a fold, both averaged over the rows (Nadeau & Bengio 2003; Bouckaert & Frank "
        "2004).",
        "",
        ttest_table(tests),
        "",
    ]


def write_report(
    rows: Sequence[Mapping],
    path: Path,
    *,
    title: str = "Experiment report",
    notes: Sequence[str] = (),
    plots: Sequence[str] = (),
    predictions: Optional[Sequence[Mapping]] = None,
) -> Path:
    """Writes report.md: Tables 4, 5 (one per variant) and 6, the t-tests, the quadrant
    scores (from `predictions`, the rows of predictions.csv, when given), the data curve
    (when the rows hold one) and the plots."""
    from mer_tfx.experiment import curve, quadrants

    variants = list(dict.fromkeys(r["variant"] for r in rows))
    parts = [f"# {title}", ""]
    parts += [f"- {note}" for note in notes]
    parts += [
        "",
        "Scores are mean ± standard deviation over folds x rounds, in %. F1 is binary with "
        "positive class = high. \"Majority\" always predicts the training fold's majority class.",
        "",
        "## Table 4 — training time",
        "",
        time_table(rows),
        "",
    ]
    for variant in variants:
        parts += [f"## Table 5 — segment durations ({variant})", "",
                  performance_table(rows, variant=variant), ""]
    parts += ["## Table 6 — variants compared", "", variants_table(rows), ""]
    parts += _ttest_section(rows)
    parts += quadrants.quadrant_section(predictions or [])
    parts += curve.curve_section(rows)
    if plots:
        parts += ["## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots] + [""]
    path = Path(path)
    path.write_text("\n".join(parts))
    return path
