import math

import numpy as np
import pytest
from scipy import stats

from mer_tfx.errors import ParameterError
from mer_tfx.experiment import report


def _row(**kw):
    base = dict(dataset="4q", preset="4q-5s-small", segment_seconds=5.0, variant="mask-mean",
                head="bilstm", target="valence", round=0, fold=0, accuracy=0.5, f1=0.5,
                majority_accuracy=0.5, majority_f1=0.0, ae_epochs=10, ae_best_epoch=5,
                ae_seconds=20.0, head_epochs=4, head_best_epoch=2, head_seconds=2.0,
                n_train=8, n_val=1, n_test=3, seed=0)
    base.update(kw)
    return base


def test_binary_scores_hand_computed():
    # y_true 1 1 0 0 1, y_pred 1 0 0 1 1: tp=2, fp=1, fn=1 -> F1 = 4/6, accuracy 3/5.
    accuracy, f1 = report.binary_scores(y_true=[1, 1, 0, 0, 1], y_pred=[1, 0, 0, 1, 1])
    assert accuracy == pytest.approx(3 / 5)
    assert f1 == pytest.approx(4 / 6)


def test_binary_scores_no_positive_prediction_gives_zero_f1():
    assert report.binary_scores(y_true=[1, 0], y_pred=[0, 0]) == (0.5, 0.0)


def test_binary_scores_rejects_bad_labels():
    with pytest.raises(ParameterError, match="2"):
        report.binary_scores(y_true=[0, 2], y_pred=[0, 1])


def test_majority_class_predicts_training_majority():
    # Training fold is mostly low (0): predicting 0 on [0, 0, 1, 1, 1] is right 2/5, F1 0.
    assert report.majority_class_scores(
        train_labels=[0, 0, 0, 1], test_labels=[0, 0, 1, 1, 1]) == (0.4, 0.0)
    # Mostly high (1): predicting 1 is right 3/5, tp=3, fp=2 -> F1 = 6/8.
    accuracy, f1 = report.majority_class_scores(
        train_labels=[1, 1, 0], test_labels=[0, 0, 1, 1, 1])
    assert (accuracy, f1) == (pytest.approx(0.6), pytest.approx(6 / 8))


def test_majority_class_tie_goes_to_high():
    assert report.majority_class_scores(train_labels=[0, 1], test_labels=[1])[0] == 1.0


def test_paired_ttest_matches_formula():
    a = np.array([0.70, 0.65, 0.80, 0.72, 0.68])
    b = np.array([0.60, 0.66, 0.71, 0.65, 0.60])
    d = a - b
    t_expected = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    p_expected = 2 * stats.t.sf(abs(t_expected), df=len(d) - 1)
    result = report.paired_ttest(a, b)
    # scipy and the closed form differ only by float rounding.
    assert result.t == pytest.approx(t_expected, rel=1e-9)
    assert result.p == pytest.approx(p_expected, rel=1e-9)
    assert result.n == 5
    assert result.mean_diff == pytest.approx(d.mean())


def test_paired_ttest_degenerate_cases():
    assert math.isnan(report.paired_ttest([0.5], [0.4]).t)
    same = report.paired_ttest([0.5, 0.6], [0.5, 0.6])
    assert math.isnan(same.t) and same.p == 1.0
    shifted = report.paired_ttest([0.6, 0.7], [0.5, 0.6])
    assert shifted.t == math.inf and shifted.p == 0.0
    with pytest.raises(ParameterError):
        report.paired_ttest([0.1, 0.2], [0.1])


def test_corrected_ttest_hand_computed():
    # Six fold x round differences (3 folds x 2 rounds), 70 test and 630 training songs.
    b = np.array([0.60, 0.62, 0.58, 0.65, 0.61, 0.63])
    d = np.array([0.01, 0.03, 0.02, 0.04, 0.00, 0.02])
    # mean(d) = 0.12 / 6 = 0.02. Squared deviations 1, 1, 0, 4, 4, 0 (x 1e-4) sum to 10e-4,
    # so var(d, ddof=1) = 10e-4 / 5 = 2e-4. Correction: 1/6 + 70/630 = 1/6 + 1/9 = 5/18.
    # t = 0.02 / sqrt(5/18 * 2e-4), t^2 = 4e-4 * 18 / 1e-3 = 7.2; df = 5.
    result = report.corrected_ttest(b + d, b, n_train=630, n_test=70)
    # rel=1e-9: (b + d) - b differs from d only by float rounding.
    assert result.t == pytest.approx(math.sqrt(7.2), rel=1e-9)
    assert result.p == pytest.approx(2 * stats.t.sf(math.sqrt(7.2), df=5), rel=1e-9)
    assert result.p == pytest.approx(0.04365, abs=1e-5)
    assert result.n == 6 and result.mean_diff == pytest.approx(0.02)
    # The uncorrected test on the same scores: t^2 = 4e-4 * 6 / 2e-4 = 12, p = 0.018.
    assert report.paired_ttest(b + d, b).t == pytest.approx(math.sqrt(12), rel=1e-9)


def test_corrected_ttest_degenerate_cases_as_paired_ttest():
    sizes = dict(n_train=9, n_test=3)
    assert math.isnan(report.corrected_ttest([0.5], [0.4], **sizes).t)
    same = report.corrected_ttest([0.5, 0.6, 0.7], [0.5, 0.6, 0.7], **sizes)
    assert math.isnan(same.t) and same.p == 1.0 and same.mean_diff == 0.0
    # Every difference is 0.1: zero variance, the difference is certain.
    shifted = report.corrected_ttest([0.6, 0.7, 0.8], [0.5, 0.6, 0.7], **sizes)
    assert shifted.t == math.inf and shifted.p == 0.0 and shifted.n == 3
    lower = report.corrected_ttest([0.5, 0.6, 0.7], [0.6, 0.7, 0.8], **sizes)
    assert lower.t == -math.inf and lower.p == 0.0
    with pytest.raises(ParameterError, match="n_train=0"):
        report.corrected_ttest([0.1, 0.2], [0.2, 0.2], n_train=0, n_test=3)
    with pytest.raises(ParameterError, match="n_test=nan"):
        report.corrected_ttest([0.1, 0.2], [0.2, 0.2], n_train=9, n_test=math.nan)
    with pytest.raises(ParameterError):
        report.corrected_ttest([0.1, 0.2], [0.1], **sizes)


def test_corrected_ttest_is_importable_from_report():
    from mer_tfx.experiment.report import corrected_ttest

    assert corrected_ttest is report.corrected_ttest


def test_results_round_trip(tmp_path):
    rows = [_row(fold=0, accuracy=0.75), _row(fold=1, accuracy=0.25)]
    path = report.write_results(rows, tmp_path / "results.csv")
    back = report.read_results(path)
    assert [r["accuracy"] for r in back] == [0.75, 0.25]
    assert back[1]["fold"] == 1 and back[0]["segment_seconds"] == 5.0


def test_comparisons_pair_durations_and_masking_on_matched_folds():
    rows = []
    for fold, (a5, a3, nm) in enumerate([(0.8, 0.6, 0.7), (0.7, 0.65, 0.6), (0.9, 0.7, 0.5)]):
        rows.append(_row(fold=fold, accuracy=a5))
        rows.append(_row(fold=fold, accuracy=a3, segment_seconds=3.0, preset="4q-3s-small"))
        rows.append(_row(fold=fold, accuracy=nm, variant="no-mask"))
    tests = report.comparisons(rows, metrics=("accuracy",))
    kinds = sorted((c.kind, c.a, c.b) for c in tests)
    assert ("masking", "5 s mask-mean bilstm", "5 s no-mask bilstm") in kinds
    assert ("durations", "3 s mask-mean bilstm", "5 s mask-mean bilstm") in kinds
    masking = next(c for c in tests if c.kind == "masking")
    expected = stats.ttest_rel([0.8, 0.7, 0.9], [0.7, 0.6, 0.5])
    assert masking.test.t == pytest.approx(expected.statistic)
    assert masking.test.n == 3


def test_comparisons_pair_each_head_with_the_first_and_with_the_baseline():
    rows = []
    for fold, (plain, seeds, joint) in enumerate([(0.6, 0.7, 0.65), (0.5, 0.7, 0.6),
                                                  (0.55, 0.6, 0.7)]):
        rows.append(_row(fold=fold, accuracy=plain))
        rows.append(_row(fold=fold, accuracy=seeds, head="bilstm:seeds=3"))
        rows.append(_row(fold=fold, accuracy=joint, variant="baseline"))
    tests = report.comparisons(rows, metrics=("accuracy",))
    heads = [c for c in tests if c.kind == "heads"]
    assert [(c.a, c.b) for c in heads] == [("5 s mask-mean bilstm:seeds=3",
                                            "5 s mask-mean bilstm")]
    assert heads[0].test.t == pytest.approx(
        stats.ttest_rel([0.7, 0.7, 0.6], [0.6, 0.5, 0.55]).statistic)
    versus = {c.a: c.test for c in tests if c.kind == "vs baseline"}
    assert set(versus) == {"5 s mask-mean bilstm", "5 s mask-mean bilstm:seeds=3"}
    assert versus["5 s mask-mean bilstm"].mean_diff == pytest.approx(
        np.mean([0.6 - 0.65, 0.5 - 0.6, 0.55 - 0.7]))


def test_tables_show_mean_and_std(tmp_path):
    rows = [_row(fold=0, accuracy=0.8, f1=0.6), _row(fold=1, accuracy=0.6, f1=0.4),
            _row(fold=0, target="arousal", accuracy=1.0), _row(fold=1, target="arousal", accuracy=1.0)]
    table = report.performance_table(rows)
    # mean 70 %, sample std of (80, 60) = 14.14 %.
    assert "70.00 ± 14.14" in table
    assert "100.00 ± 0.00" in table
    path = report.write_report(rows, tmp_path / "report.md", notes=["note one"])
    text = path.read_text()
    for heading in ("Table 4", "Table 5", "Table 6", "Paired t-tests", "note one", "majority"):
        assert heading in text
    # Autoencoder: 20 s over 10 epochs = 2.0 s/epoch.
    assert "2.0 s/epoch, 10 epochs" in report.time_table(rows)


def _two_rounds():
    # 3 folds x 2 rounds of base seed 100; the rows' 8 + 1 training and 3 test songs.
    masked = {0: [0.80, 0.70, 0.90], 1: [0.75, 0.85, 0.70]}
    plain = {0: [0.70, 0.60, 0.50], 1: [0.70, 0.65, 0.72]}
    rows = []
    for round_ in (0, 1):
        for fold in range(3):
            rows.append(_row(round=round_, fold=fold, seed=100, accuracy=masked[round_][fold]))
            rows.append(_row(round=round_, fold=fold, seed=100, variant="no-mask",
                             accuracy=plain[round_][fold]))
    return rows, masked, plain


def test_two_rounds_give_a_paired_ttest_per_round_and_a_corrected_pooled_one(tmp_path):
    rows, masked, plain = _two_rounds()
    tests = [c for c in report.comparisons(rows, metrics=("accuracy",)) if c.kind == "masking"]
    assert [(c.rounds, c.method) for c in tests] == [
        ("round 0 (split seed 100)", report.PAIRED_T),
        ("round 1 (split seed 101)", report.PAIRED_T),
        ("2 rounds pooled", report.CORRECTED_T),
    ]
    for line, round_ in zip(tests[:2], (0, 1), strict=True):
        assert line.test.n == 3
        assert line.test.t == pytest.approx(
            stats.ttest_rel(masked[round_], plain[round_]).statistic)
    d = np.array(masked[0] + masked[1]) - np.array(plain[0] + plain[1])
    # J = 6 folds x rounds, n_test / n_train = 3 / (8 + 1).
    t = d.mean() / math.sqrt((1 / 6 + 3 / 9) * d.var(ddof=1))
    assert tests[2].test.n == 6
    assert tests[2].test.t == pytest.approx(t, rel=1e-9)
    assert tests[2].test.p == pytest.approx(2 * stats.t.sf(abs(t), df=5), rel=1e-9)

    table = report.ttest_table(tests)
    assert table.splitlines()[0] == (
        "| comparison | target | metric | A | B | rounds | test | mean(A−B) % | t | p | n |")
    pooled = table.splitlines()[-1]
    assert "| 2 rounds pooled | corrected resampled t |" in pooled
    assert pooled.endswith(f"| {t:.3f} | {tests[2].test.p:.4f} | 6 |")
    assert "| round 1 (split seed 101) | paired t |" in table.splitlines()[3]

    text = report.write_report(rows, tmp_path / "report.md").read_text()
    assert "pooled: corrected resampled t-test" in text and "Nadeau–Bengio" in text
    assert "| 2 rounds pooled | corrected resampled t |" in text


def test_one_round_keeps_the_plain_table():
    rows = [r for r in _two_rounds()[0] if r["round"] == 0]
    tests = report.comparisons(rows, metrics=("accuracy",))
    assert all(c.method == report.PAIRED_T for c in tests)
    table = report.ttest_table(tests)
    assert table.splitlines()[0] == (
        "| comparison | target | metric | A | B | mean(A−B) % | t | p | n |")
    assert "rounds" not in table and "corrected" not in table
