"""The timeline without a model: its windows, when it names a quadrant, and its plot."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from mer_tfx.client.predictions import Prediction
from mer_tfx.client.timeline import (
    QUADRANT_MARGIN,
    Timeline,
    clear_quadrant,
    draw_timeline,
    plot_timeline,
    window_starts,
)
from mer_tfx.errors import ParameterError


# 30 s windows every 10 s at 100 Hz: the regular windows of a 90-99.99 s song start at
# 0..60 s and leave a tail of 0-9.99 s; the end window comes from half a hop (5 s) on.
@pytest.mark.parametrize(
    "num_samples, expected_last",
    [
        (9003, [6000]),  # a few samples past the last window: no window for them
        (9499, [6000]),  # one sample short of half a hop
        (9500, [6000, 6500]),  # half a hop: the end window
        (9501, [6000, 6501]),
        (9999, [6000, 6999]),  # the largest tail the regular windows leave
        (10000, [6000, 7000]),  # a whole hop: a regular window, no extra one
    ],
)
def test_the_end_window_needs_half_a_hop_of_new_audio(num_samples, expected_last):
    starts = window_starts(
        num_samples=num_samples, sample_rate=100, window_seconds=30, hop_seconds=10
    )
    assert starts.tolist()[-len(expected_last) :] == expected_last
    assert starts.tolist()[: -len(expected_last)] == list(range(0, 6000, 1000))


@pytest.mark.parametrize("tail, extra", [(3, False), (4, True)])
def test_the_end_window_with_an_odd_hop(tail, extra):
    # hop 7 samples: half a hop is 3.5, so a tail of 3 samples is left and 4 are analysed.
    num_samples = 20 + 2 * 7 + tail
    starts = window_starts(
        num_samples=num_samples, sample_rate=1, window_seconds=20, hop_seconds=7
    ).tolist()
    assert starts == [0, 7, 14] + ([num_samples - 20] if extra else [])


@pytest.mark.parametrize(
    "valence, arousal, expected",
    [
        (0.6, 0.9, "Q1"),  # exactly at the margin counts as clear
        (0.4, 0.6, "Q2"),
        (0.1, 0.4, "Q3"),
        (0.6, 0.4, "Q4"),
        (np.float32(0.4), np.float32(0.6), "Q2"),  # the model's float32 probabilities
        (0.599, 0.9, None),  # just inside the margin
        (0.9, 0.401, None),
        (0.498, 0.99, None),  # the model's label says low valence; too close to tell
        (0.5, 0.5, None),
    ],
)
def test_a_quadrant_only_where_both_probabilities_are_clear(valence, arousal, expected):
    assert clear_quadrant(float(valence), float(arousal), margin=0.1) == expected


def test_the_margin_is_a_parameter():
    assert QUADRANT_MARGIN == 0.1
    assert clear_quadrant(0.65, 0.8) == "Q1"
    assert clear_quadrant(0.65, 0.8, margin=0.2) is None
    # Margin 0: the model's own quadrant (high means P(high) > 0.5).
    assert clear_quadrant(0.5, 0.51, margin=0.0) == "Q2"
    for margin in (-0.1, 0.6):
        with pytest.raises(ParameterError, match=f"margin={margin}"):
            clear_quadrant(0.9, 0.9, margin=margin)


def _prediction(valence: float, arousal: float, quadrant: str) -> Prediction:
    return Prediction(
        valence_probability=valence,
        valence_label=int(valence > 0.5),
        arousal_probability=arousal,
        arousal_label=int(arousal > 0.5),
        quadrant=quadrant,  # what the model said, with no margin
    )


@pytest.fixture
def timeline():
    """Five 10 s windows every 5 s: clear Q1 twice, 0.498 valence (the model says Q2),
    clear Q3, clear Q4."""
    starts = np.arange(5) * 5.0
    return Timeline(
        path="song.wav",
        seconds=30.0,
        window_seconds=10.0,
        hop_seconds=5.0,
        starts=starts,
        ends=starts + 10.0,
        predictions=[
            _prediction(0.9, 0.8, "Q1"),
            _prediction(0.85, 0.95, "Q1"),
            _prediction(0.498, 0.9, "Q2"),
            _prediction(0.2, 0.1, "Q3"),
            _prediction(0.7, 0.3, "Q4"),
        ],
    )


def _spans(axes):
    """(left, right) of each vertical span on `axes`."""
    return [(p.get_x(), p.get_x() + p.get_width()) for p in axes.patches]


def test_the_plot_has_two_probability_lines_and_names_only_clear_quadrants(timeline):
    fig = draw_timeline(timeline)
    strip, curves = fig.axes[:2]

    centres = [5.0, 10.0, 15.0, 20.0, 25.0]
    data_lines = [line for line in curves.lines if list(line.get_xdata()) == centres]
    assert [line.get_label() for line in data_lines] == ["valence P(high)", "arousal P(high)"]
    assert list(data_lines[0].get_ydata()) == [0.9, 0.85, 0.498, 0.2, 0.7]
    assert list(data_lines[1].get_ydata()) == [0.8, 0.95, 0.9, 0.1, 0.3]
    assert any(list(line.get_ydata()) == [0.5, 0.5] for line in curves.lines)  # the 0.5 line

    # One name per run of clear windows; nothing for the uncertain window at 15 s.
    assert [t.get_text() for t in strip.texts] == ["Q1 +V +A", "Q3 -V -A", "Q4 +V -A"]
    spans = _spans(strip)
    assert spans == [(0.0, 12.5), (17.5, 22.5), (22.5, 30.0)]
    assert not any(left <= 15.0 <= right for left, right in spans)
    legend = [t.get_text() for t in curves.get_legend().get_texts()]
    assert "Q2 -V +A" not in legend and "Q1 +V +A" in legend

    caption = " ".join(t.get_text() for t in fig.texts)
    assert "quadrant shown where both probabilities are at least 0.1 from 0.5" in caption.lower()


def test_a_wider_margin_names_fewer_quadrants_and_says_so(timeline):
    fig = draw_timeline(timeline, margin=0.35)
    strip = fig.axes[0]
    # Only the second window (0.85 and 0.95) is at least 0.35 from 0.5 on both.
    assert [t.get_text() for t in strip.texts] == ["Q1 +V +A"]
    assert _spans(strip) == [(7.5, 12.5)]
    assert "at least 0.35 from 0.5" in " ".join(t.get_text() for t in fig.texts)


def test_plot_timeline_writes_a_png(timeline, tmp_path):
    out = plot_timeline(timeline, path=tmp_path / "plots" / "timeline.png")
    data = out.read_bytes()
    assert out == tmp_path / "plots" / "timeline.png"
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    # 10 x 4.6 inches at 110 dpi; 4.6 * 110 is 505.99999... in floating point.
    assert width == 1100 and abs(height - 506) <= 1
