import json
from pathlib import Path

import pytest

from mer_tfx.errors import ParameterError
from mer_tfx.experiment import headline, quadrants, report

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "results" / "headline.json"
PAGE = ROOT / "docs" / "results.md"


def test_the_committed_table_is_the_one_the_committed_results_give():
    table = headline.build_table(SPEC)
    assert headline.between_markers(PAGE.read_text()) == table
    names = [line.split(" | ")[0].lstrip("| ") for line in table.splitlines()[2:7]]
    assert names == ["two-stage (default)", "baseline (joint CNN+BiLSTM)",
                     "logistic regression", "majority class", "He & Ferguson, Table 5"]
    assert "| He & Ferguson, Table 5 | 66.89 | – | 86.56 | – | – | – |" in table


def _write_run(folder: Path, *, with_predictions: bool):
    folder.mkdir()
    rows, predictions = [], []
    # Two folds of two test songs; valence right on 3 of 4 songs, arousal on all.
    truth = {"a": (1, 1), "b": (0, 0), "c": (1, 0), "d": (0, 1)}
    guess = {"a": (1, 1), "b": (1, 0), "c": (1, 0), "d": (0, 1)}
    for fold, songs in enumerate((["a", "b"], ["c", "d"])):
        for t, target in enumerate(("valence", "arousal")):
            right = sum(truth[s][t] == guess[s][t] for s in songs) / 2
            rows.append(dict(dataset="4q", preset="4q-5s-small", segment_seconds=5.0,
                             variant="mask-mean", head="bilstm", target=target, round=0,
                             fold=fold, accuracy=right, f1=right, majority_accuracy=0.5,
                             majority_f1=2 / 3))
            predictions += quadrants.prediction_rows(
                tag=dict(preset="4q-5s-small", segment_seconds=5.0, variant="mask-mean",
                         head="bilstm", round=0, fold=fold),
                target=target, song_ids=songs, labels=[truth[s][t] for s in songs],
                probability_high=[0.5, 0.5], predicted=[guess[s][t] for s in songs])
    report.write_results(rows, folder / "results.csv")
    if with_predictions:
        quadrants.write_predictions(predictions, folder / "predictions.csv")


def test_rows_average_their_folds_and_quadrants_need_predictions(tmp_path):
    _write_run(tmp_path / "new", with_predictions=True)
    _write_run(tmp_path / "old", with_predictions=False)
    spec = {"data": "d", "rounds": "r", "experiment": "mer experiment X --seed 7",
            "segment_seconds": 5, "rows": [
        {"name": "new", "sources": [{"results": "new/results.csv", "variant": "mask-mean"}]},
        {"name": "old", "sources": [{"results": "old/results.csv", "variant": "mask-mean"}]},
        {"name": "majority class", "majority_of": "new"},
        {"name": "paper", "figures": {"valence accuracy": 66.89}}]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    table = headline.build_table(tmp_path / "spec.json")
    # Quadrants: fold 0 gets 1 of 2 songs right (b: Q3 taken for Q4), fold 1 both.
    assert "| new | 75.00 | 75.00 | 100.00 | 100.00 | 75.00 |" in table
    assert "| old | 75.00 | 75.00 | 100.00 | 100.00 | – | – |" in table
    assert "| majority class | 50.00 | 66.67 | 50.00 | 66.67 | – | – |" in table
    assert "| paper | 66.89 | – | – | – | – | – |" in table
    assert "Made by `mer experiment X --seed 7`." in table


def test_write_replaces_only_the_text_between_the_markers():
    page = f"# Title\n\n{headline.START}\nold table\n{headline.END}\n\nthe rest\n"
    assert headline.replace_between_markers(page, "new") == (
        f"# Title\n\n{headline.START}\nnew\n{headline.END}\n\nthe rest\n")
    with pytest.raises(ParameterError, match="markers|lines"):
        headline.replace_between_markers("# no markers", "new")
