"""End to end: `mer experiment` on a tiny synthetic 4Q folder (a minute or two on a CPU)."""

import json

import pytest

from mer_tfx import cli
from mer_tfx.experiment import protocol, report
from mer_tfx.synthetic import make_synthetic_4q

ARGS = ["--durations", "5", "--folds", "2", "--rounds", "1", "--max-ae-epochs", "1",
        "--max-head-epochs", "2", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiment")
    # 12 playable clips (one short, looped) + 1 corrupt file.
    data = make_synthetic_4q(root / "data", clips_per_quadrant=3, seconds=2.0, sample_rate=8000,
                             seed=0, short_clips=1, corrupt_files=1, silent_clips=0)
    out = root / "out"
    code = cli.main(["experiment", str(data), "--out", str(out), "--variants", "mask-mean",
                     "no-mask", *ARGS])
    return data, out, code


@pytest.mark.e2e
def test_writes_every_output(tiny_run):
    _, out, code = tiny_run
    assert code == 0
    for name in ("results.csv", "report.md", "config.json", "histories.json", "splits.json",
                 "fold_scores.png", "labels.png", "training_curves.png", "cache/4q-5s.npy"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    rows = report.read_results(out / "results.csv")
    # 2 folds x 1 round x 1 duration x 2 targets x 2 variants.
    assert len(rows) == 8
    assert {r["variant"] for r in rows} == {"mask-mean", "no-mask"}
    for row in rows:
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["f1"] <= 1.0
        assert row["ae_epochs"] == 1 and 1 <= row["head_epochs"] <= 2
        assert row["n_train"] + row["n_val"] + row["n_test"] == 12
    # One autoencoder per fold and variant, shared by both targets.
    histories = json.loads((out / "histories.json").read_text())
    assert sum(h["stage"] == "autoencoder" for h in histories) == 4
    text = (out / "report.md").read_text()
    for part in ("Table 4", "Table 5", "Table 6", "majority", "| masking |"):
        assert part in text
    # Mixed precision is on by default, and takes effect only where a GPU is seen.
    config = json.loads((out / "config.json").read_text())
    assert config["arguments"]["mixed_precision"] is True
    assert config["dtype_policy"] == "float32" and "dtype policy: float32" in text


@pytest.mark.e2e
def test_corrupt_file_is_reported_and_skipped(tiny_run):
    _, out, _ = tiny_run
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"]["songs"] == 12
    assert config["dataset"]["skipped"], "the corrupt file must be listed by name"
    assert config["versions"]["tensorflow"]
    assert config["presets"]["4q-5s-small"]["model"]["rnn_units"] == 32


@pytest.mark.e2e
def test_no_song_in_both_train_and_test(tiny_run):
    _, out, _ = tiny_run
    splits = json.loads((out / "splits.json").read_text())
    assert len(splits) == 2
    tested = []
    for split in splits:
        train, val, test = set(split["train"]), set(split["val"]), set(split["test"])
        assert not train & test and not val & test and not train & val
        assert val, "early stopping needs validation songs from the training side"
        tested += split["test"]
    assert len(tested) == len(set(tested)) == 12  # each song tested exactly once per round


@pytest.mark.e2e
def test_rerun_resumes_from_results(tiny_run, capsys):
    data, out, _ = tiny_run
    before = (out / "results.csv").read_text()
    predictions = (out / "predictions.csv").read_text()
    code = cli.main(["experiment", str(data), "--out", str(out), "--variants", "mask-mean",
                     "no-mask", *ARGS])
    assert code == 0
    # Every run was finished: nothing retrained, identical results, headline table printed.
    assert (out / "results.csv").read_text() == before
    assert (out / "predictions.csv").read_text() == predictions
    assert "valence accuracy" in capsys.readouterr().out


@pytest.mark.e2e
def test_report_only_reports_the_finished_rows_and_trains_nothing(tiny_run, tmp_path, capsys):
    data, out, _ = tiny_run
    copy = tmp_path / "out"
    for name in ("results.csv", "predictions.csv", "histories.json", "config.json"):
        (copy / name).parent.mkdir(exist_ok=True)
        (copy / name).write_bytes((out / name).read_bytes())
    # The same protocol with one more variant: its 2 folds have no results.
    code = cli.main(["experiment", str(data), "--out", str(copy), "--variants", "mask-mean",
                     "no-mask", "logreg", "--cache-dir", str(out / "cache"), "--report-only",
                     *ARGS])
    assert code == 0
    assert (copy / "results.csv").read_text() == (out / "results.csv").read_text()
    text = (copy / "report.md").read_text()
    assert "**partial**: 4 of 6 fold jobs finished" in text
    assert "| masking |" in text and (copy / "fold_scores.png").is_file()
    assert "partial:   2 fold job(s)" in capsys.readouterr().out
    # Every job finished: the report is not marked partial.
    result = protocol.run_experiment(data, out_dir=copy, durations=[5], folds=2, rounds=1,
                                     variants=("mask-mean", "no-mask"), max_ae_epochs=1,
                                     max_head_epochs=2, cache_dir=out / "cache",
                                     report_only=True, plots=False, progress=False)
    assert result.unfinished == 0 and "partial" not in result.report_md.read_text()
    assert len(result.rows) == 8


def test_report_only_needs_an_earlier_run(tmp_path):
    with pytest.raises(protocol.ParameterError, match="report_only needs the results.csv"):
        protocol.run_experiment(tmp_path, out_dir=tmp_path / "out", report_only=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.e2e
def test_baseline_variant_reuses_the_feature_cache(tiny_run, tmp_path):
    data, out, _ = tiny_run
    result = protocol.run_experiment(
        data, out_dir=tmp_path, durations=[5], folds=2, rounds=1, targets=("arousal",),
        variants=("baseline",), max_head_epochs=1, cache_dir=out / "cache", run_folds=1,
        plots=False, progress=False)
    # run_folds=1: only the first fold of the round is trained.
    assert [(r["variant"], r["fold"], r["ae_epochs"], r["head_epochs"]) for r in result.rows] == [
        ("baseline", 0, 0, 1)]
    assert result.rows[0]["fold_seconds"] > 0
    assert "baseline" in result.report_md.read_text()
    assert json.loads(result.config_json.read_text())["feature_cache"]["4q-5s"]["loaded"]


@pytest.mark.e2e
def test_resume_refuses_a_different_protocol(tiny_run):
    data, out, _ = tiny_run
    with pytest.raises(protocol.ParameterError, match="folds"):
        protocol.run_experiment(data, out_dir=out, durations=[5], folds=3, rounds=1,
                                progress=False)


@pytest.mark.e2e
def test_worker_processes_run_every_fold(tiny_run, tmp_path):
    data, out, _ = tiny_run
    result = protocol.run_experiment(
        data, out_dir=tmp_path, durations=[5], folds=2, rounds=1,
        variants=("mask-mean", "baseline"), max_ae_epochs=1, max_head_epochs=1,
        cache_dir=out / "cache", plots=False, progress=False, workers=2)
    keys = sorted((r["variant"], r["target"], r["fold"]) for r in result.rows)
    assert keys == sorted((v, t, f) for v in ("mask-mean", "baseline")
                          for t in ("valence", "arousal") for f in (0, 1))
    assert all(r["fold_seconds"] > 0 for r in result.rows)
    # Same songs in the same folds as the single-process run.
    assert (tmp_path / "splits.json").read_text() == (out / "splits.json").read_text()
    assert len(report.read_results(tmp_path / "results.csv")) == 8
    histories = json.loads((tmp_path / "histories.json").read_text())
    assert sum(h["stage"] == "autoencoder" for h in histories) == 2
    assert sum(h["stage"] == "baseline" for h in histories) == 4


def test_workers_must_be_positive(tmp_path):
    with pytest.raises(protocol.ParameterError, match="workers"):
        protocol.run_experiment(tmp_path, out_dir=tmp_path / "out", workers=0)


@pytest.mark.e2e
def test_label_fractions_and_unlabelled_audio_reach_stage_1_only(tiny_run, tmp_path, monkeypatch):
    from mer_tfx import recipe

    data, out, _ = tiny_run
    extra = make_synthetic_4q(tmp_path / "extra", clips_per_quadrant=1, seconds=2.0,
                              sample_rate=8000, seed=5, short_clips=0, corrupt_files=0,
                              silent_clips=0)
    seen = []
    real = recipe.train_two_stage

    def spy(log_mels, labels, *, song_ids, unlabeled_log_mels=None, **kwargs):
        seen.append((len(log_mels), 0 if unlabeled_log_mels is None else len(unlabeled_log_mels),
                     set(song_ids)))
        return real(log_mels, labels, song_ids=song_ids, unlabeled_log_mels=unlabeled_log_mels,
                    **kwargs)

    monkeypatch.setattr(recipe, "train_two_stage", spy)
    result = protocol.run_experiment(
        data, out_dir=tmp_path / "out", durations=[5], folds=2, rounds=1, variants=("mask-mean",),
        targets=("arousal",), max_ae_epochs=1, max_head_epochs=1, cache_dir=out / "cache",
        run_folds=1, plots=False, progress=False, label_fractions=(0.5, 1.0),
        unlabeled_data=extra)
    variants = [r["variant"] for r in result.rows]
    assert variants == ["mask-mean labels=50%", "mask-mean labels=50% +rest", "mask-mean"]
    # Fold 1's training side: 6 songs. Half keep their labels; "+rest" gives stage 1 the
    # other 3 songs' audio; every run also gets the 4 clips of the unlabelled folder.
    assert [(n, extra_clips) for n, extra_clips, _ in seen] == [(3, 4), (3, 3 + 4), (6, 4)]
    assert seen[0][2] == seen[1][2] and seen[0][2] < seen[2][2]
    splits = json.loads((tmp_path / "out" / "splits.json").read_text())
    assert not seen[2][2] & set(splits[0]["test"])  # never the test fold's songs
    assert [r["unlabeled_clips"] for r in result.rows] == [4, 7, 4]
    assert "| unlabelled audio |" in result.report_md.read_text()
    config = json.loads(result.config_json.read_text())
    assert config["unlabeled_data"]["clips"] == {"4q-5s": 4}
    assert config["protocol"]["unlabeled_data"] == str(extra.resolve())


def test_label_fractions_must_be_shares(tmp_path):
    with pytest.raises(protocol.ParameterError, match="label_fractions"):
        protocol.run_experiment(tmp_path, out_dir=tmp_path / "out", label_fractions=(0.0,))


@pytest.mark.e2e
def test_logreg_floor_is_scored_on_the_same_folds(tiny_run, tmp_path):
    data, out, _ = tiny_run
    result = protocol.run_experiment(
        data, out_dir=tmp_path, durations=[5], folds=2, rounds=1, variants=("logreg",),
        cache_dir=out / "cache", plots=False, progress=False)
    rows = result.rows
    assert sorted((r["variant"], r["head"], r["target"], r["fold"]) for r in rows) == sorted(
        ("logreg", "linear", t, f) for t in ("valence", "arousal") for f in (0, 1))
    for row in rows:
        assert 0.0 <= row["accuracy"] <= 1.0 and row["n_train"] + row["n_test"] == 12
    # Same splits as the two-stage run it is compared with; the report pairs the two.
    assert (tmp_path / "splits.json").read_text() == (out / "splits.json").read_text()
    both = report.read_results(out / "results.csv") + report.read_results(
        tmp_path / "results.csv")
    kinds = {(c.kind, c.a) for c in report.comparisons(both, metrics=("accuracy",))}
    assert ("vs logreg", "5 s mask-mean bilstm") in kinds


@pytest.mark.e2e
def test_predictions_name_every_test_song_and_give_the_quadrants(tiny_run):
    from mer_tfx.experiment import quadrants

    _, out, _ = tiny_run
    predictions = quadrants.read_predictions(out / "predictions.csv")
    rows = report.read_results(out / "results.csv")
    splits = {s["fold"]: s["test"] for s in json.loads((out / "splits.json").read_text())}
    # One row per result row x test song (6 test songs a fold).
    assert len(predictions) == len(rows) * 6
    for row in rows:
        mine = [p for p in predictions if all(p[k] == row[k] for k in (
            "variant", "head", "target", "round", "fold"))]
        assert sorted(p["song_id"] for p in mine) == sorted(splits[row["fold"]])
        # The predicted labels are the ones the row's accuracy was computed from.
        assert row["accuracy"] == pytest.approx(
            sum(p["label"] == p["predicted"] for p in mine) / len(mine))
        assert all(0.0 <= p["probability_high"] <= 1.0 for p in mine)
    text = (out / "report.md").read_text()
    assert "## Quadrants" in text and "Pooled confusion matrix: 5 s mask-mean bilstm" in text


@pytest.mark.e2e
def test_label_fractions_train_every_variant_on_the_same_songs(tiny_run, tmp_path):
    from mer_tfx.experiment import quadrants

    data, out, _ = tiny_run
    result = protocol.run_experiment(
        data, out_dir=tmp_path, durations=[5], folds=2, rounds=1,
        variants=("mask-mean", "baseline", "logreg"), max_ae_epochs=1, max_head_epochs=1,
        cache_dir=out / "cache", run_folds=1, progress=False, label_fractions=(0.5, 1.0))
    variants = list(dict.fromkeys(r["variant"] for r in result.rows))
    assert sorted(variants) == sorted([
        "mask-mean labels=50%", "mask-mean labels=50% +rest", "mask-mean",
        "baseline labels=50%", "baseline", "logreg labels=50%", "logreg"])
    # Fold 1's training side: 6 songs; at 50 % every variant trains on 3 labelled songs.
    labelled = {r["variant"]: r["n_train"] + r["n_val"] for r in result.rows}
    assert {v: n for v, n in labelled.items() if "50%" in v} == {
        v: 3 for v in variants if "50%" in v}
    assert labelled["baseline"] == labelled["logreg"] == labelled["mask-mean"] == 6
    text = result.report_md.read_text()
    assert "## Data curve" in text and "| 5 s | valence | logreg |" in text
    assert (tmp_path / "data_curve.png").stat().st_size > 0
    # Every variant predicts both targets, so each has a quadrant row.
    summaries = quadrants.quadrant_summaries(result.predictions_csv and
                                             quadrants.read_predictions(result.predictions_csv))
    assert {s.variant for s in summaries} == set(variants)


def _with_artists(data, folder, artists):
    """A copy of the synthetic 4Q folder whose metadata names the given artists."""
    import csv
    import shutil

    shutil.copytree(data, folder)
    path = folder / "panda_dataset_taffc_metadata.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["Artist"] = artists(row["Song"])
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


@pytest.mark.e2e
def test_group_by_artist_keeps_each_artist_in_one_fold(tiny_run, tmp_path):
    data, out, _ = tiny_run
    # Two songs an artist: SYN_0000 and SYN_0001 share one, and so on.
    copy = _with_artists(data, tmp_path / "data",
                         lambda song: f"artist {int(song.rsplit('_', 1)[-1]) // 2}"
                         if song.rsplit("_", 1)[-1].isdigit() else "")
    result = protocol.run_experiment(
        copy, out_dir=tmp_path / "out", durations=[5], folds=2, rounds=1,
        variants=("logreg",), cache_dir=tmp_path / "cache", plots=False, progress=False,
        group_by="artist")
    artist_of = {r.song_id: r.metadata["artist"] for r in result_records(copy)}
    for split in json.loads((tmp_path / "out" / "splits.json").read_text()):
        test = {artist_of[s] for s in split["test"]}
        assert not test & {artist_of[s] for s in split["train"] + split["val"]}
    config = json.loads(result.config_json.read_text())
    assert config["protocol"]["group_by"] == "artist"
    assert config["groups"]["songs_sharing_an_artist"] == 12
    # Folds by song leave the protocol key as it was, so earlier folders still resume.
    assert "group_by" not in json.loads((out / "config.json").read_text())["protocol"]


def result_records(root):
    from mer_tfx.datasets import read_dataset

    return read_dataset(root).records


@pytest.mark.e2e
def test_group_by_artist_needs_artists(tiny_run, tmp_path):
    data, out, _ = tiny_run
    copy = _with_artists(data, tmp_path / "data", lambda song: "")
    with pytest.raises(protocol.ParameterError, match="artist"):
        protocol.run_experiment(copy, out_dir=tmp_path / "out", durations=[5], folds=2,
                                rounds=1, variants=("logreg",), cache_dir=tmp_path / "cache",
                                plots=False, progress=False, group_by="artist")
