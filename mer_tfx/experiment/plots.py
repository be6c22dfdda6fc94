"""PNG plots of an experiment run, after the paper's Figures 3 and 4.

- `fold_scores.png` (Fig. 4): accuracy and F1 of every fold x round, one line per
  variant (masking vs no masking vs baseline), one panel per target x metric.
- `labels.png` (Fig. 3): valence-arousal scatter with the k-means centres, their
  midpoint and the thresholds for continuous labels (PMEmo); bars of the quadrant
  and high/low counts for quadrant-labelled data (4Q), which has no continuous values.
- `training_curves.png`: autoencoder loss and head accuracy per epoch (train and
  validation) for every fold, one panel per stage.

Matplotlib's non-interactive "Agg" backend is used, so plotting works without a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Mapping, Optional, Sequence

import numpy as np

_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fold_scores(rows: Sequence[Mapping], path: Path) -> Optional[Path]:
    """Fig. 4: per-fold accuracy and F1, one line per variant/head, per duration.

    Args:
        rows: result rows (results.csv).
        path: PNG to write.

    Returns:
        `path`, or None when there are no rows.
    """
    if not rows:
        return None
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    targets = list(dict.fromkeys(r["target"] for r in rows))
    durations = sorted({float(r["segment_seconds"]) for r in rows})
    metrics = ("accuracy", "f1")
    fig, axes = plt.subplots(
        len(durations), len(targets) * 2, figsize=(4.2 * len(targets) * 2, 3.2 * len(durations)),
        squeeze=False)
    for i, seconds in enumerate(durations):
        for j, target in enumerate(targets):
            for k, metric in enumerate(metrics):
                ax = axes[i][j * 2 + k]
                chosen = [r for r in rows
                          if float(r["segment_seconds"]) == seconds and r["target"] == target]
                settings = list(dict.fromkeys((r["variant"], r["head"]) for r in chosen))
                for c, (variant, head) in enumerate(settings):
                    line = sorted((r for r in chosen if (r["variant"], r["head"]) == (variant, head)),
                                  key=lambda r: (r["round"], r["fold"]))
                    label = variant if head == "bilstm" else f"{variant} ({head})"
                    # Distinct markers and dashes keep coinciding lines visible.
                    ax.plot(np.arange(1, len(line) + 1), [100 * r[metric] for r in line],
                            marker="osD^v<>"[c % 7], ms=6 - c % 3, ls=("-", "--", "-.")[c % 3],
                            mfc="none" if c % 2 else None, color=_COLOURS[c % len(_COLOURS)],
                            label=label)
                majority = sorted({(r["round"], r["fold"]): r[f"majority_{metric}"]
                                   for r in chosen}.items())
                ax.plot(np.arange(1, len(majority) + 1), [100 * v for _, v in majority],
                        ls=":", color="grey", label="majority class")
                ax.set_title(f"{target} {'F1' if metric == 'f1' else metric}, {seconds:g} s segments",
                             fontsize=9)
                ax.set_xlabel("fold (rounds in sequence)", fontsize=8)
                ax.set_ylabel("%", fontsize=8)
                ax.set_ylim(-2, 102)
                ax.grid(alpha=0.3)
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.tick_params(labelsize=7)
                if i == 0 and j == 0 and k == 0:
                    ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("Scores per fold (cf. He & Ferguson Fig. 4)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_labels(records: Sequence, path: Path, *, label_info=None) -> Optional[Path]:
    """Fig. 3: the labels the targets come from.

    Continuous labels: scatter of (valence, arousal) with the two k-means centres,
    their midpoint and the two thresholds. Quadrant labels: counts per quadrant and
    per high/low class of each target.

    Args:
        records: the dataset's records (with `valence`, `arousal`, `valence_high`,
            `arousal_high`, `quadrant`).
        path: PNG to write.
        label_info: the dataset's `label_info` (a `LabelThresholds` or a dict with
            `valence_threshold`, `arousal_threshold`, `centres`), if any.

    Returns:
        `path`, or None when there are no records.
    """
    if not records:
        return None
    plt = _pyplot()
    valence = np.array([_float(getattr(r, "valence", None)) for r in records])
    arousal = np.array([_float(getattr(r, "arousal", None)) for r in records])
    continuous = np.isfinite(valence).all() and np.isfinite(arousal).all()
    if continuous:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        high_v = np.array([int(r.valence_high) for r in records])
        high_a = np.array([int(r.arousal_high) for r in records])
        for c, (hv, ha, name) in enumerate(((1, 1, "Q1"), (0, 1, "Q2"), (0, 0, "Q3"),
                                             (1, 0, "Q4"))):
            sel = (high_v == hv) & (high_a == ha)
            ax.scatter(valence[sel], arousal[sel], s=8, alpha=0.6, color=_COLOURS[c],
                       label=f"{name} ({sel.sum()})")
        info = _info_dict(label_info)
        if info.get("centres") is not None:
            centres = np.asarray(info["centres"], dtype=float).reshape(-1, 2)
            ax.scatter(centres[:, 0], centres[:, 1], marker="X", s=120, color="black",
                       label="k-means centres")
            mid = centres.mean(axis=0)
            ax.scatter([mid[0]], [mid[1]], marker="*", s=160, color="gold", edgecolor="black",
                       label="midpoint", zorder=5)
        if info.get("valence_threshold") is not None:
            ax.axvline(info["valence_threshold"], color="black", ls="--", lw=1,
                       label=f"valence threshold {info['valence_threshold']:.3f}")
        if info.get("arousal_threshold") is not None:
            ax.axhline(info["arousal_threshold"], color="black", ls="-.", lw=1,
                       label=f"arousal threshold {info['arousal_threshold']:.3f}")
        ax.set_xlabel("valence")
        ax.set_ylabel("arousal")
        ax.set_title("Static annotations and k-means thresholds (cf. Fig. 3)", fontsize=10)
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    else:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
        quadrants = [str(r.quadrant) for r in records]
        names = sorted(set(quadrants))
        counts = [quadrants.count(q) for q in names]
        axes[0].bar(names, counts, color=_COLOURS[: len(names)])
        for x, n in enumerate(counts):
            axes[0].text(x, n, str(n), ha="center", va="bottom", fontsize=8)
        axes[0].set_title("songs per quadrant", fontsize=10)
        width = 0.38
        for k, target in enumerate(("valence", "arousal")):
            high = sum(int(getattr(r, f"{target}_high")) for r in records)
            values = [len(records) - high, high]
            xs = np.arange(2) + (k - 0.5) * width
            axes[1].bar(xs, values, width, label=target, color=_COLOURS[k])
            for x, n in zip(xs, values, strict=True):
                axes[1].text(x, n, str(n), ha="center", va="bottom", fontsize=8)
        axes[1].set_xticks([0, 1], ["low (0)", "high (1)"])
        axes[1].set_title("binary targets from quadrants", fontsize=10)
        axes[1].set_ylim(0, 1.25 * max(1, axes[1].get_ylim()[1]))
        axes[1].legend(fontsize=8, loc="upper center", ncol=2)
        axes[0].set_ylim(0, 1.15 * max(1, max(counts)))
        fig.suptitle("Quadrant labels: no continuous values, so no k-means scatter (cf. Fig. 3)",
                     fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_training_curves(histories: Sequence[Mapping], path: Path) -> Optional[Path]:
    """Autoencoder loss and head (or baseline) accuracy per epoch, every fold overlaid.

    Args:
        histories: entries of histories.json (`stage`, `preset`, `variant`, `history`).
        path: PNG to write.

    Returns:
        `path`, or None when no history has values.
    """
    panels = []
    for stage, keys, ylabel in (("autoencoder", ("loss", "val_loss"), "Huber loss"),
                                ("head", ("accuracy", "val_accuracy"), "accuracy"),
                                ("baseline", ("accuracy", "val_accuracy"), "accuracy")):
        chosen = [h for h in histories if h.get("stage") == stage and
                  any(h.get("history", {}).get(k) for k in keys)]
        if chosen:
            panels.append((stage, keys, ylabel, chosen))
    if not panels:
        return None
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, (stage, keys, ylabel, chosen) in zip(axes[0], panels, strict=True):
        groups = list(dict.fromkeys(_curve_group(h) for h in chosen))
        for c, group in enumerate(groups):
            colour = _COLOURS[c % len(_COLOURS)]
            for n, h in enumerate(x for x in chosen if _curve_group(x) == group):
                for key, style in zip(keys, ("-", "--"), strict=True):
                    values = h["history"].get(key) or []
                    ax.plot(np.arange(1, len(values) + 1), values, ls=style, color=colour,
                            alpha=0.6, lw=1, marker="o", ms=2,
                            label=f"{group} {'train' if style == '-' else 'val'}" if n == 0 else None)
        ax.set_title({"autoencoder": "stage 1: autoencoder", "head": "stage 2: head",
                      "baseline": "baseline (joint CNN+BiLSTM)"}[stage], fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    fig.suptitle("Training curves, every fold x round (solid: train, dashed: validation)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _curve_group(h: Mapping) -> str:
    parts = [f"{float(h.get('segment_seconds', 0)):g}s", str(h.get("variant", ""))]
    if h.get("stage") in ("head", "baseline"):
        parts.append(str(h.get("target", "")))
        if h.get("head") not in (None, "bilstm"):
            parts.append(str(h["head"]))
    return " ".join(parts)


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _info_dict(label_info) -> dict:
    if label_info is None:
        return {}
    if isinstance(label_info, Mapping):
        return dict(label_info)
    return {k: getattr(label_info, k, None)
            for k in ("valence_threshold", "arousal_threshold", "centres")}


def plot_data_curve(rows: Sequence[Mapping], path: Path) -> Optional[Path]:
    """Accuracy against labelled training songs (log x), one line per model and target
    (the mean over folds x rounds at each n), the fit accuracy = a + b·ln n dashed and
    its prediction at n = 810 marked with the 95 % interval (`curve.curve_fits`).

    Returns:
        `path`, or None when the rows hold no curve.
    """
    from mer_tfx.experiment import curve

    points = curve.curve_points(rows) if curve.has_curve(rows) else {}
    if not points:
        return None
    fits = curve.curve_fits(rows)
    plt = _pyplot()
    panels = sorted({(seconds, target) for seconds, target, _ in points})
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
    for ax, (seconds, target) in zip(axes[0], panels, strict=True):
        models = [m for s, t, m in sorted(points) if (s, t) == (seconds, target)]
        ticks = {int(curve.PAPER_TRAIN_SONGS)}  # the measured n and the predicted one
        for c, model in enumerate(models):
            colour = _COLOURS[c % len(_COLOURS)]
            pts = points[(seconds, target, model)]
            ns = sorted({n for n, _ in pts})
            ticks.update(ns)
            means = [100 * np.mean([a for m, a in pts if m == n]) for n in ns]
            ax.plot(ns, means, marker="o", color=colour, label=model)
            fit = fits[(seconds, target, model)]
            grid = np.geomspace(min(ns), fit.at, 50)
            ax.plot(grid, 100 * fit(grid), ls="--", color=colour)
            error = (None if np.isnan(fit.low) else
                     [[100 * (fit.prediction - fit.low)], [100 * (fit.high - fit.prediction)]])
            ax.errorbar([fit.at], [100 * fit.prediction], yerr=error, marker="*", ms=10,
                        capsize=4, color=colour)
        ax.set_xscale("log")
        # As plain numbers, not powers of ten.
        ax.set_xticks(sorted(ticks), [str(n) for n in sorted(ticks)])
        ax.minorticks_off()
        ax.set_title(f"{target}, {seconds:g} s segments (dashed: a + b·ln n; "
                     f"star: n = {curve.PAPER_TRAIN_SONGS})", fontsize=8)
        ax.set_xlabel("labelled training songs n", fontsize=8)
        ax.set_ylabel("accuracy %", fontsize=8)
        ax.grid(alpha=0.3, which="both")
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Data curve", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def write_plots(*, rows: Sequence[Mapping], histories: Sequence[Mapping], index, song_ids,
                out_dir: Path) -> List[Path]:
    """Writes every plot into `out_dir` and returns the paths written."""
    out_dir = Path(out_dir)
    used = set(song_ids)
    records = [r for r in index.records if r.song_id in used]
    written = [
        plot_fold_scores(rows, out_dir / "fold_scores.png"),
        plot_labels(records, out_dir / "labels.png", label_info=getattr(index, "label_info", None)),
        plot_training_curves(histories, out_dir / "training_curves.png"),
        plot_data_curve(rows, out_dir / "data_curve.png"),
    ]
    return [p for p in written if p is not None]
