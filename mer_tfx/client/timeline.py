"""Emotion over time: a song of any length analysed in 30 s windows.

The model rates one 30 s clip. For a whole song, `analyse_timeline` cuts it into
windows of `window_seconds` every `hop_seconds`, asks the model about each window
(in batches) and returns valence/arousal/quadrant per window; `plot_timeline`
draws them.

Windows start at 0, hop, 2*hop, ... while they fit in the song. The regular
windows leave less than a hop at the end; when that tail is at least half a hop,
one more window ending exactly at the song's end is added, so the end is
analysed. A shorter tail is left out: the extra window would repeat the last one
for a few samples more. A song no longer than one window gives a single window
(the model loops it to 30 s, as in training).

The plot names a quadrant only where both probabilities are at least `margin`
(default `QUADRANT_MARGIN`, 0.1) from 0.5 (`clear_quadrant`); elsewhere it names
none, since a probability near 0.5 says little about the side.

Examples:

>>> window_starts(num_samples=95 * 100, sample_rate=100, window_seconds=30, hop_seconds=10).tolist()
[0, 1000, 2000, 3000, 4000, 5000, 6000, 6500]
>>> window_starts(num_samples=94 * 100, sample_rate=100, window_seconds=30, hop_seconds=10).tolist()
[0, 1000, 2000, 3000, 4000, 5000, 6000]
>>> clear_quadrant(0.72, 0.35), clear_quadrant(0.498, 0.9)
('Q4', None)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import List, Union

import numpy as np

from mer_tfx.client.predictions import Prediction
from mer_tfx.contract import QUADRANT_BY_INDEX
from mer_tfx.errors import ParameterError

PathLike = Union[str, os.PathLike]

#: How far from 0.5 both P(high) must be for the plot to name a quadrant.
QUADRANT_MARGIN = 0.1
# Russell's quadrants: the colour of the plot's quadrant strip and their names
# (the signs the model predicts, no mood words: it rates valence and arousal only).
QUADRANT_COLOURS = {"Q1": "#f4a261", "Q2": "#e76f51", "Q3": "#577590", "Q4": "#90be6d"}
QUADRANT_NAMES = {"Q1": "Q1 +V +A", "Q2": "Q2 -V +A", "Q3": "Q3 -V -A", "Q4": "Q4 +V -A"}
# Probabilities come from float32 (0.4 is stored as 0.39999999...) and 0.6 - 0.5 is
# 0.09999999999999998 in float64: a probability that prints as 0.400 or 0.600 is at
# the margin 0.1, not inside it.
_ROUNDING = 1e-6


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
    tail = num_samples - (starts[-1] + window)  # not analysed yet; always < hop
    if 2 * tail >= hop:
        starts = np.append(starts, num_samples - window)
    return starts


def clear_quadrant(
    valence_probability: float, arousal_probability: float, *, margin: float = QUADRANT_MARGIN
) -> str | None:
    """The quadrant ("Q1".."Q4") when both P(high) are at least `margin` from 0.5, else None.

    A margin of 0 gives the model's own quadrant (high means P(high) > 0.5).

    Args:
        valence_probability, arousal_probability: P(high), in [0, 1].
        margin: in [0, 0.5]. Defaults to `QUADRANT_MARGIN` (0.1).
    """
    _check_margin(margin)
    if min(abs(valence_probability - 0.5), abs(arousal_probability - 0.5)) < margin - _ROUNDING:
        return None
    return QUADRANT_BY_INDEX[int(valence_probability > 0.5) + 2 * int(arousal_probability > 0.5)]


def _check_margin(margin: float) -> None:
    if not 0.0 <= margin <= 0.5:
        raise ParameterError(f"margin must be in [0, 0.5]. Received: margin={margin}")


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


def draw_timeline(timeline: Timeline, *, margin: float = QUADRANT_MARGIN, title: str | None = None):
    """Valence and arousal P(high) against time, and the quadrant where both are clear.

    The lower panel has two lines, valence and arousal P(high) at each window's
    centre, the 0.5 line and a grey band within `margin` of it. The strip above
    names a quadrant only for windows whose two probabilities are both at least
    `margin` from 0.5 (`clear_quadrant`), over the time each window represents
    (half-way to its neighbours); it is blank elsewhere. A caption says so.

    Args:
        timeline: what `analyse_timeline` returned.
        margin: in [0, 0.5]. Defaults to `QUADRANT_MARGIN` (0.1).
        title: the plot's title. Defaults to the file's name and the window settings.

    Returns:
        A `matplotlib.figure.Figure` (no pyplot state: nothing to close). Its axes are
        `[strip, curves]`.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    _check_margin(margin)
    centres = (timeline.starts + timeline.ends) / 2.0
    valence = [p.valence_probability for p in timeline.predictions]
    arousal = [p.arousal_probability for p in timeline.predictions]
    quadrants = [clear_quadrant(v, a, margin=margin) for v, a in zip(valence, arousal, strict=True)]
    # The time each window represents: half-way between window centres, clamped to the song.
    edges = np.concatenate([[0.0], (centres[1:] + centres[:-1]) / 2.0, [timeline.seconds]])
    seconds = max(timeline.seconds, 1e-3)

    fig = Figure(figsize=(10, 4.6), dpi=110)
    strip, ax = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 6], "hspace": 0.06}
    )

    # Runs of consecutive windows with the same clear quadrant, one span and one name each.
    first = 0
    for last in range(len(quadrants)):
        if last + 1 < len(quadrants) and quadrants[last + 1] == quadrants[first]:
            continue
        quadrant = quadrants[first]
        if quadrant is not None:
            left, right = edges[first], edges[last + 1]
            strip.axvspan(left, right, color=QUADRANT_COLOURS[quadrant], alpha=0.6, linewidth=0)
            name = QUADRANT_NAMES[quadrant] if right - left > 0.09 * seconds else quadrant
            if right - left > 0.025 * seconds:
                strip.text((left + right) / 2.0, 0.5, name, ha="center", va="center", fontsize=8)
        first = last + 1
    strip.set_ylim(0, 1)
    strip.set_yticks([])
    strip.set_ylabel("quadrant", rotation=0, ha="right", va="center", fontsize=9)
    strip.tick_params(axis="x", bottom=False)
    strip.set_title(
        title
        or f"{Path(timeline.path).name}: {len(timeline)} windows of {timeline.window_seconds:g} s, "
        f"hop {timeline.hop_seconds:g} s"
    )

    ax.axhspan(
        0.5 - margin,
        0.5 + margin,
        color="#999999",
        alpha=0.18,
        linewidth=0,
        label=f"within {margin:g} of 0.5",
    )
    ax.axhline(0.5, color="black", linestyle="--", linewidth=1, label="0.5")
    marker = "o" if len(timeline) < 60 else None
    ax.plot(centres, valence, marker=marker, color="#1d3557", linewidth=2, label="valence P(high)")
    ax.plot(centres, arousal, marker=marker, color="#c1121f", linewidth=2, label="arousal P(high)")
    ax.set_xlim(0, seconds)
    ax.set_ylim(-0.03, 1.03)  # points at exactly 0 or 1 stay visible
    ax.set_xlabel("time (s), window centres")
    ax.set_ylabel("probability of high")

    handles, labels = ax.get_legend_handles_labels()
    order = ["valence P(high)", "arousal P(high)", "0.5", f"within {margin:g} of 0.5"]
    handles = [handles[labels.index(label)] for label in order]
    handles += [
        Patch(color=QUADRANT_COLOURS[q], alpha=0.6, label=QUADRANT_NAMES[q])
        for q in ("Q1", "Q2", "Q3", "Q4")
        if q in quadrants
    ]
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False
    )
    fig.text(
        0.01,
        0.01,
        f"Quadrant shown where both probabilities are at least {margin:g} from 0.5; "
        "blank where either is closer (uncertain).",
        fontsize=8,
        color="#444444",
    )
    fig.subplots_adjust(left=0.08, right=0.78, top=0.92, bottom=0.16)
    return fig


def plot_timeline(
    timeline: Timeline,
    *,
    path: PathLike,
    title: str | None = None,
    margin: float = QUADRANT_MARGIN,
) -> Path:
    """Writes `draw_timeline`'s figure as a PNG.

    Args:
        timeline: what `analyse_timeline` returned.
        path: the PNG to write; its folder is created.
        title: as in `draw_timeline`.
        margin: as in `draw_timeline`. Defaults to `QUADRANT_MARGIN` (0.1).

    Returns:
        The PNG's path.
    """
    fig = draw_timeline(timeline, margin=margin, title=title)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
