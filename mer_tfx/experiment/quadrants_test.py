import numpy as np
import pytest

from mer_tfx.errors import ParameterError
from mer_tfx.experiment import quadrants

# Six test songs: the true and the predicted quadrant of each (Q1 +V+A, Q2 -V+A,
# Q3 -V-A, Q4 +V-A), and the binary answers that name them.
TRUE = ["Q1", "Q1", "Q2", "Q3", "Q4", "Q4"]
PRED = ["Q1", "Q2", "Q2", "Q3", "Q4", "Q1"]
BINARY = {"Q1": (1, 1), "Q2": (0, 1), "Q3": (0, 0), "Q4": (1, 0)}
# Worked out by hand: rows true, columns predicted.
CONFUSION = [[1, 1, 0, 0],
             [0, 1, 0, 0],
             [0, 0, 1, 0],
             [1, 0, 0, 1]]
ACCURACY = 4 / 6
# F1 per quadrant: Q1 P=1/2 R=1/2 -> 1/2; Q2 P=1/2 R=1 -> 2/3; Q3 1; Q4 P=1 R=1/2 -> 2/3.
MACRO_F1 = (1 / 2 + 2 / 3 + 1 + 2 / 3) / 4  # = 17/24


def _prediction_rows(fold, true, pred, *, variant="mask-mean"):
    rows = []
    for t, target in enumerate(("valence", "arousal")):
        rows += quadrants.prediction_rows(
            tag=dict(preset="4q-5s-small", segment_seconds=5.0, variant=variant, head="bilstm",
                     round=0, fold=fold),
            target=target, song_ids=[f"f{fold}s{i}" for i in range(len(true))],
            labels=[BINARY[q][t] for q in true], probability_high=[0.5] * len(true),
            predicted=[BINARY[q][t] for q in pred])
    return rows


def test_quadrant_scores_match_the_hand_computed_matrix():
    scores = quadrants.quadrant_scores(TRUE, PRED)
    np.testing.assert_array_equal(scores.confusion, CONFUSION)
    assert scores.accuracy == pytest.approx(ACCURACY)
    assert scores.macro_f1 == pytest.approx(MACRO_F1) == pytest.approx(17 / 24)
    with pytest.raises(ParameterError, match="Q5"):
        quadrants.quadrant_scores(["Q1"], ["Q5"])


def test_quadrants_from_prediction_rows_pool_the_folds(tmp_path):
    rows = _prediction_rows(0, TRUE[:3], PRED[:3]) + _prediction_rows(1, TRUE[3:], PRED[3:])
    # A song with a valence answer only names no quadrant and is left out.
    rows += quadrants.prediction_rows(
        tag=dict(preset="4q-5s-small", segment_seconds=5.0, variant="mask-mean",
                 head="bilstm", round=0, fold=1),
        target="valence", song_ids=["lonely"], labels=[1], probability_high=[0.9],
        predicted=[1])
    path = quadrants.write_predictions(rows, tmp_path / "predictions.csv")
    back = quadrants.read_predictions(path)
    assert back == rows
    (summary,) = quadrants.quadrant_summaries(back)
    np.testing.assert_array_equal(summary.pooled.confusion, CONFUSION)
    assert summary.pooled.accuracy == pytest.approx(ACCURACY)
    assert summary.pooled.macro_f1 == pytest.approx(MACRO_F1)
    # Per fold: 2 of 3 right in each.
    assert [f.accuracy for f in summary.folds] == pytest.approx([2 / 3, 2 / 3])
    text = "\n".join(quadrants.quadrant_section(back))
    assert "| Q4 | 1 | 0 | 0 | 1 |" in text and "66.67" in text and "70.83" in text


def test_a_single_target_run_has_no_quadrant_section():
    rows = [r for r in _prediction_rows(0, TRUE, PRED) if r["target"] == "arousal"]
    assert quadrants.quadrant_section(rows) == []
