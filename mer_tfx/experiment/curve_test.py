import math

import numpy as np
import pytest

from mer_tfx.errors import ParameterError
from mer_tfx.experiment import curve

# Student's t, 97.5th percentile with 1 degree of freedom (statistical tables).
T_975_1 = 12.7062047


def test_fit_recovers_a_known_line_and_predicts_at_810():
    n = np.repeat([45, 90, 180, 360], 3)
    accuracy = 0.40 + 0.05 * np.log(n)
    fit = curve.fit_log_accuracy(n, accuracy)
    assert fit.a == pytest.approx(0.40) and fit.b == pytest.approx(0.05)
    assert fit.at == 810 and fit.m == 12
    assert fit.prediction == pytest.approx(0.40 + 0.05 * math.log(810))
    # No scatter about the line: the interval closes on the prediction.
    assert fit.high - fit.low == pytest.approx(0.0, abs=1e-9)


def test_interval_matches_a_hand_computed_case():
    # ln n = 0, 1, 2 and accuracy 0, 1, 1: by hand b = 1/2, a = 1/6, residuals -1/6, 1/3,
    # -1/6, s^2 = (1/36 + 1/9 + 1/36) / 1 = 1/6; at ln n0 = 1 (the mean):
    # prediction 2/3, standard error s * sqrt(1/3) = sqrt(1/18).
    fit = curve.fit_log_accuracy(np.exp([0.0, 1.0, 2.0]), [0.0, 1.0, 1.0], at=math.e)
    assert fit.b == pytest.approx(0.5) and fit.a == pytest.approx(1 / 6)
    assert fit.prediction == pytest.approx(2 / 3)
    half = T_975_1 * math.sqrt(1 / 18)
    assert (fit.low, fit.high) == pytest.approx((2 / 3 - half, 2 / 3 + half))


def test_fit_needs_two_distinct_n():
    with pytest.raises(ParameterError, match="distinct"):
        curve.fit_log_accuracy([90, 90], [0.5, 0.6])


def _row(variant, head, n, accuracy, fold):
    return dict(segment_seconds=5.0, target="valence", variant=variant, head=head,
                n_train=n - n // 10, n_val=n // 10, accuracy=accuracy, round=0, fold=fold)


def test_curve_rows_group_by_model_and_share_the_full_label_rows_with_rest():
    rows = []
    for fold in range(3):
        for share, n in ((0.25, 90), (0.5, 180), (1.0, 360)):
            acc = 0.3 + 0.05 * math.log(n) + 0.01 * fold
            suffix = "" if share == 1.0 else f" labels={100 * share:g}%"
            rows.append(_row(f"mask-mean{suffix}", "bilstm", n, acc, fold))
            if share < 1.0:
                rows.append(_row(f"mask-mean{suffix} +rest", "bilstm", n, acc + 0.02, fold))
            rows.append(_row(f"logreg{suffix}", "linear", n, acc - 0.03, fold))
    assert not curve.has_curve([r for r in rows if "labels" not in r["variant"]])
    fits = curve.curve_fits(rows)
    assert set(fits) == {(5.0, "valence", m) for m in
                         ("mask-mean bilstm", "mask-mean +rest bilstm", "logreg")}
    assert fits[(5.0, "valence", "mask-mean bilstm")].b == pytest.approx(0.05)
    assert fits[(5.0, "valence", "logreg")].a == pytest.approx(0.3 + 0.01 - 0.03)
    # The +rest curve: its two shares and the rows with every label (9 points).
    assert fits[(5.0, "valence", "mask-mean +rest bilstm")].m == 9
    text = "\n".join(curve.curve_section(rows))
    assert "accuracy at n = 810" in text and "| logreg |" in text


def test_data_curve_plot(tmp_path):
    from mer_tfx.experiment import plots

    rows = [_row(f"baseline labels={s}%" if s < 100 else "baseline", "bilstm", n,
                 0.5 + 0.02 * math.log(n) + 0.01 * f, f)
            for s, n in ((25, 90), (100, 360)) for f in range(3)]
    path = plots.plot_data_curve(rows, tmp_path / "data_curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plots.plot_data_curve(rows[3:], tmp_path / "none.png") is None
