"""The paper's experiment protocol (`mer experiment`): k-fold CV by song, rounds,
segment durations, the masking ablation, the baseline, tables, t-tests and plots."""

from mer_tfx.experiment.fold_runner import HEADS, TARGETS, VARIANTS
from mer_tfx.experiment.folds import FoldSplit, make_folds, stratification_labels
from mer_tfx.experiment.protocol import ExperimentResult, run_experiment
from mer_tfx.experiment.report import (
    PairedTTest,
    binary_scores,
    corrected_ttest,
    majority_class_scores,
    paired_ttest,
    read_results,
)
from mer_tfx.experiment.timing import estimate_seconds

__all__ = [
    "HEADS",
    "TARGETS",
    "VARIANTS",
    "ExperimentResult",
    "FoldSplit",
    "PairedTTest",
    "binary_scores",
    "corrected_ttest",
    "estimate_seconds",
    "majority_class_scores",
    "make_folds",
    "paired_ttest",
    "read_results",
    "run_experiment",
    "stratification_labels",
]
