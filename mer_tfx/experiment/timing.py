"""Wall time of a protocol run: what finished folds cost, and what a full run would."""

from __future__ import annotations

import math
from typing import Dict, List, Sequence

import numpy as np


def fold_cost(group: Sequence[dict]) -> float:
    """Seconds one fold x variant took: its measured `fold_seconds`, else the sum of its
    stages (the autoencoder once, every head)."""
    value = group[0].get("fold_seconds")
    if value is not None and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    return group[0]["ae_seconds"] + sum(r["head_seconds"] for r in group)


def sum_fold_seconds(rows: Sequence[dict]) -> float:
    """Training wall time summed over every fold x variant of `rows`."""
    jobs: Dict[tuple, List[dict]] = {}
    for r in rows:
        jobs.setdefault((r["preset"], r["variant"], r["round"], r["fold"]), []).append(r)
    return float(sum(fold_cost(group) for group in jobs.values()))


def estimate_seconds(rows: Sequence[dict], *, folds: int, rounds: int) -> Dict[str, float]:
    """Extrapolates the wall time of a full run from the rows of a partial one.

    Returns:
        preset/variant -> seconds for `folds * rounds` folds, from the mean wall time
        of one fold (`fold_seconds`: the autoencoder, encoding, every head x target and
        scoring; the feature cache is not included).
    """
    out: Dict[str, float] = {}
    groups: Dict[tuple, Dict[tuple, List[dict]]] = {}
    for r in rows:
        groups.setdefault((r["preset"], r["variant"]), {}).setdefault(
            (r["round"], r["fold"]), []).append(r)
    for (preset, variant), per_fold in groups.items():
        costs = [fold_cost(group) for group in per_fold.values()]
        out[f"{preset} {variant}"] = float(np.mean(costs)) * folds * rounds if costs else math.nan
    return out
