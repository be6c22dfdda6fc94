"""Emotion over time: a song of any length analysed in 30 s windows.

The model rates one 30 s clip. For a whole song, `analyse_timeline` cuts it into
windows of `window_seconds` every `hop_seconds`, asks the model about each window
(in batches) and returns valence/arousal/quadrant per window; `plot_timeline`
draws them.

Windows start at 0, hop, 2*hop, ... while they fit in the song; when the last one
ends before the song does, one more window ending exactly at the song's end is
added, so every sample is analysed. A song no longer than one window gives a
single window (the model loops it to 30 s, as in training).

Examples:

>>> window_starts(num_samples=95 * 100, sample_rate=100, window_seconds=30, hop_seconds=10).tolist()
[0, 1000, 2000, 3000, 4000, 5000, 6000, 6500]
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import List, Union

import numpy as np

from mer_tfx.errors import ParameterError
from mer_tfx.serve.predictions import Prediction

PathLike = Union[str, os.PathLike]

# Russell's quadrants: colour of the band behind the curves.
QUADRANT_COLOURS = {"Q1": "#f4a261", "Q2": "#e76f51", "Q3": "#577590", "Q4": "#90be6d"}
QUADRANT_NAMES = {
    "Q1": "Q1 +V +A (happy)",
    "Q2": "Q2 -V +A (angry)",
    "Q3": "Q3 -V -A (sad)",
    "Q4": "Q4 +V -A (calm)",
}


def window_starts(
    *, num_samples: int, sample_rate: int, window_seconds: float, hop_seconds: float
) -> np.ndarray:
    """Start offsets (samples) of the analysis windows; see the module docstring.

    Returns:
        int64 [num_windows].
    """
    if num_samples < 1:
        raise ParameterError(f"num_samples must be >= 1. Received: num_samples={num_samples}")
    if window_seconds <= 0 or hop_seconds <= 0:
        raise ParameterError(
            f"window_seconds and hop_seconds must be positive. Received: window_seconds={window_seconds}, "
            f"hop_seconds={hop_seconds}"
        )
    window = int(round(window_seconds * sample_rate))
    hop = max(1, int(round(hop_seconds * sample_rate)))
    if num_samples <= window:
        return np.zeros([1], np.int64)
    starts = np.arange(0, num_samples - window + 1, hop, dtype=np.int64)
    if starts[-1] + window < num_samples:
        starts = np.append(starts, num_samples - window)
    return starts


@dataclasses.dataclass(frozen=True)
class Timeline:
    """Predictions of consecutive windows of one song.

    Attributes:
        path: the song's file (or a label).
        seconds: the song's duration.
        window_seconds, hop_seconds: the analysis settings.
        starts, ends: float64 [num_windows] window bounds in seconds.
        predictions: one per window.
    """

    path: str
    seconds: float
    window_seconds: float
    hop_seconds: float
    starts: np.ndarray
    ends: np.ndarray
    predictions: List[Prediction]

    def __len__(self) -> int:
        return len(self.predictions)

    def to_dict(self) -> dict:
        return {
            "file": self.path,
            "seconds": round(self.seconds, 3),
            "window_seconds": self.window_seconds,
            "hop_seconds": self.hop_seconds,
            "windows": [
                {"start": round(float(s), 3), "end": round(float(e), 3), **p.to_dict()}
                for s, e, p in zip(self.starts, self.ends, self.predictions, strict=True)
            ],
        }


def analyse_timeline(
    waveform: np.ndarray,
    *,
    model,
    sample_rate: int,
    window_seconds: float = 30.0,
    hop_seconds: float = 10.0,
    batch_size: int = 8,
    path: str = "<waveform>",
) -> Timeline:
    """Predicts every window of a song.

    Args:
        waveform: float32 [samples] at the model's `sample_rate`.
        model: a `RestModel` or `LocalModel` (anything with `predict(waveforms)`).
        sample_rate: the waveform's (= the model's) rate.
        window_seconds: window length. Defaults to 30 (the model's clip).
        hop_seconds: seconds between window starts. Defaults to 10.
        batch_size: windows per model call. Defaults to 8.
        path: name stored in the result.
    """
    waveform = np.asarray(waveform, np.float32).reshape(-1)
    starts = window_starts(
        num_samples=len(waveform),
        sample_rate=sample_rate,
        window_seconds=window_seconds,
        hop_seconds=hop_seconds,
    )
    window = int(round(window_seconds * sample_rate))
    windows = [waveform[s : s + window] for s in starts]
    predictions: List[Prediction] = []
    for first in range(0, len(windows), max(1, batch_size)):
        predictions.extend(model.predict(windows[first : first + batch_size]))
    ends = np.minimum(starts + window, len(waveform))
    return Timeline(
        path=path,
        seconds=len(waveform) / sample_rate,
        window_seconds=float(window_seconds),
        hop_seconds=float(hop_seconds),
        starts=starts / sample_rate,
        ends=ends / sample_rate,
        predictions=predictions,
    )


def format_timeline(timeline: Timeline) -> str:
    """A text table of the windows."""
    lines = [
        f"{timeline.path}: {timeline.seconds:.1f} s, {len(timeline)} window(s) of "
        f"{timeline.window_seconds:g} s every {timeline.hop_seconds:g} s",
        f"  {'start':>7}  {'end':>7}  {'valence':<10}  {'arousal':<10}  quadrant",
    ]
    for start, end, p in zip(timeline.starts, timeline.ends, timeline.predictions, strict=True):
        lines.append(
            f"  {start:7.1f}  {end:7.1f}  {p.valence_probability:.3f} {'high' if p.valence_label else 'low ':<4}"
            f"  {p.arousal_probability:.3f} {'high' if p.arousal_label else 'low ':<4}  {p.quadrant}"
        )
    return "\n".join(lines)


def plot_timeline(timeline: Timeline, *, path: PathLike, title: str | None = None) -> Path:
    """Draws valence and arousal P(high) against time, with quadrant colour bands.

    Each window is drawn at its centre; the band behind it spans the time it
    represents (half-way to its neighbours) in its quadrant's colour.

    Returns:
        The PNG's path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    centres = (timeline.starts + timeline.ends) / 2.0
    valence = [p.valence_probability for p in timeline.predictions]
    arousal = [p.arousal_probability for p in timeline.predictions]
    # Band edges: half-way between window centres, clamped to the song.
    edges = np.concatenate([[0.0], (centres[1:] + centres[:-1]) / 2.0, [timeline.seconds]])

    fig, ax = plt.subplots(figsize=(10, 4), dpi=110)
    try:
        for left, right, p in zip(edges[:-1], edges[1:], timeline.predictions, strict=True):
            ax.axvspan(
                left,
                right,
                color=QUADRANT_COLOURS.get(p.quadrant, "#cccccc"),
                alpha=0.25,
                linewidth=0,
            )
        marker = "o" if len(timeline) < 60 else None
        ax.plot(
            centres, valence, marker=marker, color="#1d3557", linewidth=2, label="valence P(high)"
        )
        ax.plot(
            centres, arousal, marker=marker, color="#c1121f", linewidth=2, label="arousal P(high)"
        )
        ax.axhline(0.5, color="black", linestyle="--", linewidth=1, label="0.5 threshold")
        ax.set_xlim(0, max(timeline.seconds, 1e-3))
        ax.set_ylim(-0.03, 1.03)  # points at exactly 0 or 1 stay visible
        ax.set_xlabel("time (s), window centres")
        ax.set_ylabel("probability of high")
        ax.set_title(
            title
            or f"{Path(timeline.path).name}: {len(timeline)} windows of {timeline.window_seconds:g} s, "
            f"hop {timeline.hop_seconds:g} s"
        )
        used = [
            q
            for q in ("Q1", "Q2", "Q3", "Q4")
            if any(p.quadrant == q for p in timeline.predictions)
        ]
        handles, _ = ax.get_legend_handles_labels()
        handles += [
            Patch(color=QUADRANT_COLOURS[q], alpha=0.4, label=QUADRANT_NAMES[q]) for q in used
        ]
        ax.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False
        )
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out
