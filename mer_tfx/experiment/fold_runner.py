"""Trains and scores one fold of the protocol: one preset and variant, every head and target.

The two-stage variants go through `mer_tfx.recipe.train_two_stage` (the TFX Trainer's
recipe): the fold's training songs are split for early stopping exactly as
`folds.make_folds` recorded, one autoencoder is trained and shared by every head and
target, the frozen encoder embeds the songs once and the heads train on that cache.
The baseline (CNN + BiLSTM trained end to end) uses the fold's recorded split directly.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from mer_tfx import contract
from mer_tfx.errors import ParameterError
from mer_tfx.experiment import quadrants
from mer_tfx.experiment import report as report_lib
from mer_tfx.experiment.features_cache import cache_name
from mer_tfx.experiment.folds import FoldSplit, fold_seed
from mer_tfx.presets import HEADS, VARIANTS  # noqa: F401 (exported: mer_tfx.experiment)

# Variants with no stage-2 head to choose: the one "head" their rows name.
SINGLE_HEAD = {"baseline": "bilstm", "logreg": "linear"}


def parse_head(spec: str) -> Dict[str, object]:
    """A head spec, `NAME[:KEY=VALUE,...]`, as the recipe's head variant.

    NAME is one of `HEADS`; the keys are `recipe.HEAD_HYPERPARAMETERS` and
    `recipe.HEAD_OPTIONS`, e.g. `bilstm:learning_rate=1e-4,seeds=5,grid_shifts=2`.
    Values are read as int, float or true/false where they parse as one.

    Raises:
        ParameterError: an unknown NAME or key, or a KEY without a value.
    """
    from mer_tfx.recipe import HEAD_HYPERPARAMETERS, HEAD_OPTIONS

    name, _, options = str(spec).partition(":")
    if name not in HEADS:
        raise ParameterError(f"A head is NAME[:KEY=VALUE,...] with NAME among {tuple(HEADS)}. "
                             f"Received: {spec!r}")
    values: Dict[str, object] = {"rnn_type": HEADS[name][0], "bidirectional": HEADS[name][1]}
    allowed = HEAD_HYPERPARAMETERS + HEAD_OPTIONS
    for item in filter(None, options.split(",")):
        key, sep, raw = item.partition("=")
        if not sep or key not in allowed or not raw:
            raise ParameterError(f"Head options are KEY=VALUE with KEY among {allowed}. "
                                 f"Received: {item!r} in {spec!r}")
        values[key] = _value(raw)
    return values


def _value(raw: str):
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


TARGETS = tuple(contract.TARGETS)  # ("valence", "arousal")
# A two-stage variant trained with labels for a share of each fold's training songs:
# "<variant> labels=25%", and with the other training songs' audio given to stage 1
# without their labels: "<variant> labels=25% +rest".
_LABELS, _REST = " labels=", " +rest"


def label_variant(variant: str, fraction: float, *, rest: bool) -> str:
    """The name of `variant` run with labels for `fraction` of the training songs."""
    if fraction >= 1.0:
        return variant
    return f"{variant}{_LABELS}{100 * fraction:g}%" + (_REST if rest else "")


def parse_variant(name: str) -> Tuple[str, float, bool]:
    """(variant, label fraction, rest given to stage 1) of a `label_variant` name."""
    rest = name.endswith(_REST)
    base, _, share = name[: -len(_REST)].partition(_LABELS) if rest else name.partition(_LABELS)
    return base, (float(share.rstrip("%")) / 100 if share else 1.0), rest
MASK_FILL = {"mask-mean": "mean", "mask-zero": "zero", "no-mask": "none", "baseline": "none",
             "logreg": "none"}


class _Fitted:
    """What `_row` reads of a model fitted without epochs (the logistic regression)."""

    def __init__(self, seconds: float):
        self.seconds, self.epochs, self.best_epoch, self.history = seconds, 0, 0, {}


def predict_probabilities(model, inputs: np.ndarray,
                          batch_size: Optional[int] = None) -> np.ndarray:
    """The model's output, computed eagerly: a test fold is small, and an eager call
    skips the seconds `model.predict` spends tracing a new function for every fold.

    Log-mel input ([songs, segments, 216, 128], the baseline) goes 8 songs at a time so
    the paper-size CNN's full-resolution activations stay well under a GPU's memory."""
    if batch_size is None:
        batch_size = 8 if inputs.ndim == 4 else 64
    return np.concatenate([
        np.asarray(model(inputs[start:start + batch_size], training=False))
        for start in range(0, len(inputs), batch_size)])


def _labels_of(probabilities: np.ndarray) -> np.ndarray:
    """argmax of a [songs, 2] softmax, or a [songs] sigmoid above 0.5."""
    if probabilities.ndim == 2 and probabilities.shape[-1] == 2:
        return probabilities.argmax(axis=-1).astype(np.int64)
    return (probabilities.reshape(-1) > 0.5).astype(np.int64)


def _high(probabilities: np.ndarray) -> np.ndarray:
    """The probability of "high" of a [songs, 2] softmax or a [songs] sigmoid."""
    if probabilities.ndim == 2 and probabilities.shape[-1] == 2:
        return probabilities[:, 1].astype(np.float64)
    return probabilities.reshape(-1).astype(np.float64)


def predict_labels(model, inputs: np.ndarray, batch_size: Optional[int] = None) -> np.ndarray:
    """argmax of the softmax of `predict_probabilities`."""
    return _labels_of(predict_probabilities(model, inputs, batch_size))


def history(result) -> dict:
    """A `TrainResult`'s per-epoch metrics as plain floats (histories.json)."""
    values = getattr(result, "history", None) or {}
    return {k: [float(x) for x in v] for k, v in dict(values).items()}


class FoldRunner:
    """Trains and scores one fold x round of one preset and variant.

    Args:
        dataset: "4q" or "pmemo" (a column of the rows).
        targets: the targets run.
        heads: names of `HEADS` trained on each autoencoder.
        labels: target -> int [songs] 0/1, every song of the dataset.
        song_ids: [songs] ids, aligned with `labels` and the log-mel rows.
        strata: int [songs], what the validation split stratifies on.
        seed: the base seed (`folds.fold_seed` derives each fold's).
        val_fraction: share of a fold's training songs held out for early stopping.
        max_ae_epochs, max_head_epochs: caps on the epochs (None: the preset's).
        unlabeled_paths: cache name (`features_cache.cache_name`) -> `.npy` of log-mels
            `[clips, segments, frames, mels]` that every two-stage stage 1 also trains
            on (`--unlabeled-data`), or None.
        mixed_precision: mixed_float16 where a GPU is visible.
        progress: show the epoch bars (transient, one per stage).
    """

    def __init__(self, *, dataset, targets, heads, labels, song_ids, strata, seed, val_fraction,
                 max_ae_epochs, max_head_epochs, mixed_precision, progress,
                 unlabeled_paths=None):
        self.dataset = dataset
        self.targets = tuple(targets)
        self.heads = tuple(heads)
        self.labels = labels
        self.song_ids = np.asarray(song_ids)
        self.strata = np.asarray(strata)
        self.seed = seed
        self.val_fraction = val_fraction
        self.max_ae_epochs = max_ae_epochs
        self.max_head_epochs = max_head_epochs
        self.mixed_precision = mixed_precision
        self.progress = progress
        self.unlabeled_paths = dict(unlabeled_paths or {})
        self._unlabeled: Dict[str, np.ndarray] = {}

    def _extra_audio(self, preset) -> Optional[np.ndarray]:
        """The `--unlabeled-data` log-mels of `preset`'s features, or None."""
        name = cache_name(preset)
        if name not in self.unlabeled_paths:
            return None
        if name not in self._unlabeled:
            self._unlabeled[name] = np.load(self.unlabeled_paths[name], mmap_mode="r")
        return self._unlabeled[name]

    def labelled_songs(self, split: FoldSplit, fraction: float, *, seed: int):
        """(labelled, unlabelled) indices of the fold's training side: a stratified,
        seeded share `fraction` keeps its labels (every song when `fraction` is 1). Every
        variant of a fold draws the same songs at the same share."""
        side = split.training_side
        if fraction >= 1.0:
            return side, side[:0]
        from sklearn.model_selection import train_test_split

        try:
            keep, rest = train_test_split(side, train_size=fraction, random_state=seed,
                                          stratify=self.strata[side])
        except ValueError:  # a class with one song, or fewer kept songs than classes
            keep, rest = train_test_split(side, train_size=fraction, random_state=seed)
        return np.sort(keep), np.sort(rest)

    def _row(self, preset, variant, head, target, split, *, probability_high, predicted, ae,
             head_result, val_accuracy=None, n_train=None, n_val=None, unlabeled_clips=0):
        """One results.csv row; its key "predictions" holds the test songs' predictions.csv
        rows (`run_experiment` moves them there)."""
        y = self.labels[target]
        accuracy, f1 = report_lib.binary_scores(y_true=y[split.test], y_pred=predicted)
        majority_acc, majority_f1 = report_lib.majority_class_scores(
            train_labels=y[split.training_side], test_labels=y[split.test])
        predictions = quadrants.prediction_rows(
            tag={**self._tag(preset, variant, split), "head": head}, target=target,
            song_ids=self.song_ids[split.test], labels=y[split.test],
            probability_high=probability_high, predicted=predicted)
        return {
            "dataset": self.dataset, "preset": preset.name,
            "segment_seconds": float(preset.features.segment_seconds), "variant": variant,
            "head": head, "target": target, "round": split.round, "fold": split.fold,
            "accuracy": accuracy, "f1": f1,
            "val_accuracy": (float(np.max(head_result.history.get("val_accuracy", [np.nan])))
                             if val_accuracy is None else float(val_accuracy)),
            "majority_accuracy": majority_acc, "majority_f1": majority_f1,
            "unlabeled_clips": int(unlabeled_clips),
            "ae_epochs": int(ae.epochs) if ae is not None else 0,
            "ae_best_epoch": int(ae.best_epoch) if ae is not None else 0,
            "ae_seconds": float(ae.seconds) if ae is not None else 0.0,
            "head_epochs": int(head_result.epochs), "head_best_epoch": int(head_result.best_epoch),
            "head_seconds": float(head_result.seconds),
            "n_train": len(split.train) if n_train is None else int(n_train),
            "n_val": len(split.val) if n_val is None else int(n_val), "n_test": len(split.test),
            "seed": self.seed,
            "predictions": predictions,
        }

    @staticmethod
    def _tag(preset, variant, split) -> dict:
        return {"preset": preset.name, "segment_seconds": float(preset.features.segment_seconds),
                "variant": variant, "round": split.round, "fold": split.fold}

    def run(self, *, preset, variant: str, split: FoldSplit,
            log_mels) -> Tuple[List[dict], List[dict]]:
        """Trains and scores the fold; returns (result rows, training histories)."""
        base, fraction, _ = parse_variant(variant)
        preset = preset.replace(mask_fill=MASK_FILL[base])
        where = f"{preset.name} {variant} r{split.round + 1} f{split.fold + 1}"
        seed = fold_seed(self.seed, split.round, split.fold)
        if base == "baseline":
            return self._run_baseline(preset, variant, split, log_mels, seed=seed, where=where)
        if base == "logreg":
            return self._run_logreg(preset, variant, split, log_mels, seed=seed)
        return self._run_two_stage(preset, variant, split, log_mels, seed=seed, where=where)

    def _baseline_split(self, split: FoldSplit, fraction: float, *, seed: int):
        """(fit, validation) songs of the baseline: the fold's recorded split with every
        label, else the labelled share split again as the recipe splits it for the
        two-stage variants (same songs, same seed)."""
        if fraction >= 1.0:
            return split.train, split.val
        from mer_tfx import recipe

        side, _ = self.labelled_songs(split, fraction, seed=seed)
        fit, val = recipe.validation_split(self.song_ids[side], self.strata[side],
                                           fraction=self.val_fraction, seed=seed)
        return side[fit], side[val]

    def _run_baseline(self, preset, variant, split, log_mels, *, seed, where):
        from mer_tfx import training

        rows, histories = [], []
        fit, val = self._baseline_split(split, parse_variant(variant)[1], seed=seed)
        train_x, val_x, test_x = (np.asarray(log_mels[idx], dtype=np.float32)
                                  for idx in (fit, val, split.test))
        for target in self.targets:
            y = self.labels[target]
            result = training.train_baseline(
                train_x, y[fit], val_x, y[val], preset=preset, seed=seed,
                verbose=0, max_epochs=self.max_head_epochs, mixed_precision=self.mixed_precision,
                callbacks=[training.epoch_bar(
                    f"{where} baseline {target}", monitor="val_accuracy", mode="max",
                    leave=False, enabled=self.progress)])
            probabilities = predict_probabilities(result.model, test_x)
            rows.append(self._row(preset, variant, "bilstm", target, split,
                                  probability_high=_high(probabilities),
                                  predicted=_labels_of(probabilities), ae=None,
                                  head_result=result, n_train=len(fit), n_val=len(val)))
            histories.append({**self._tag(preset, variant, split), "stage": "baseline",
                              "head": "bilstm", "target": target, "history": history(result)})
        return rows, histories

    def _run_logreg(self, preset, variant, split, log_mels, *, seed):
        """The floor a deep model must clear: scikit-learn's logistic regression on each
        song's log-mel mean and standard deviation per mel band (2 x mels numbers,
        standardised), fitted on the fold's whole training side (or its labelled share)."""
        import time

        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        def statistics(index):
            songs = np.asarray(log_mels[index], dtype=np.float32)
            frames = songs.reshape(len(songs), -1, songs.shape[-1])
            return np.concatenate([frames.mean(axis=1), frames.std(axis=1)], axis=1)

        side, _ = self.labelled_songs(split, parse_variant(variant)[1], seed=seed)
        train_x, test_x = statistics(side), statistics(split.test)
        rows = []
        for target in self.targets:
            y = self.labels[target]
            start = time.perf_counter()
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            model.fit(train_x, y[side])
            seconds = time.perf_counter() - start
            rows.append(self._row(preset, variant, SINGLE_HEAD["logreg"], target, split,
                                  probability_high=model.predict_proba(test_x)[:, 1],
                                  predicted=model.predict(test_x), ae=None,
                                  head_result=_Fitted(seconds=seconds),
                                  val_accuracy=float("nan"), n_train=len(side), n_val=0))
        return rows, []

    def _run_two_stage(self, preset, variant, split, log_mels, *, seed, where):
        from mer_tfx import recipe

        _, fraction, rest = parse_variant(variant)
        side, unlabelled = self.labelled_songs(split, fraction, seed=seed)
        extra = [np.asarray(log_mels[unlabelled], dtype=np.float32)] if rest else []
        if self._extra_audio(preset) is not None:
            extra.append(np.asarray(self._extra_audio(preset), dtype=np.float32))
        extra = [e for e in extra if len(e)]
        unlabeled_log_mels = np.concatenate(extra) if extra else None
        result = recipe.train_two_stage(
            np.asarray(log_mels[side], dtype=np.float32),
            {t: self.labels[t][side] for t in self.targets},
            song_ids=self.song_ids[side], strata=self.strata[side], preset=preset, seed=seed,
            unlabeled_log_mels=unlabeled_log_mels,
            val_fraction=self.val_fraction,
            head_variants={h: parse_head(h) for h in self.heads},
            max_ae_epochs=self.max_ae_epochs, max_head_epochs=self.max_head_epochs,
            mixed_precision=self.mixed_precision, progress=self.progress, leave_bars=False,
            description=f"{where} ")
        if fraction >= 1.0 and not (np.array_equal(np.sort(side[result.fit]), split.train)
                                    and np.array_equal(np.sort(side[result.val]), split.val)):
            raise RuntimeError(f"{where}: the recipe's validation split differs from the "
                               "recorded fold (splits.json would not list the songs trained on).")
        histories: List[Dict] = [{**self._tag(preset, variant, split), "stage": "autoencoder",
                                  "history": history(result.autoencoder)}]
        test_log_mels = np.asarray(log_mels[split.test], dtype=np.float32)
        rows = []
        for head in self.heads:
            for target in self.targets:
                trained = result.heads[head][target]
                y = self.labels[target]
                probabilities = result.predict(test_log_mels, target, head)
                val_accuracy = float(np.mean(
                    result.val_probabilities(target, head).argmax(axis=-1) == y[side][result.val]))
                rows.append(self._row(preset, variant, head, target, split,
                                      probability_high=_high(probabilities),
                                      predicted=_labels_of(probabilities),
                                      ae=result.autoencoder, head_result=trained,
                                      val_accuracy=val_accuracy, n_train=len(result.fit),
                                      n_val=len(result.val),
                                      unlabeled_clips=0 if unlabeled_log_mels is None
                                      else len(unlabeled_log_mels)))
                histories.append({**self._tag(preset, variant, split), "stage": "head",
                                  "head": head, "target": target, "history": history(trained)})
        return rows, histories

