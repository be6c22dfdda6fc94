"""The paper's experiment protocol: k-fold cross-validation by song, repeated rounds.

He & Ferguson (sections 4.4-6) evaluate with 10-fold cross-validation (9:1 train/test),
5 rounds, early stopping with patience 10 on a validation set, segment durations of
1/3/5/10 s, a masking ablation and a CNN+BiLSTM baseline trained end to end.
`run_experiment` runs that protocol on any dataset `mer_tfx.datasets.read_dataset`
can read and writes `results.csv`, `report.md`, `config.json`, `histories.json` and
PNG plots to `out_dir`.

How the protocol is laid out:

- Folds are made BY SONG with `StratifiedKFold(shuffle=True, random_state=seed + round)`,
  stratified on the joint (valence_high, arousal_high) label when both targets are run
  (so one split stratifies both targets and the autoencoder can be shared), else on the
  one target. Every duration and variant uses the same splits, so their scores are
  matched fold by fold for paired t-tests.
- Early stopping uses a validation split of 10 % of each fold's TRAINING songs
  (stratified the same way); the test fold is never seen before the final scoring.
- One autoencoder per fold x round x duration x masking variant, trained only on the
  training songs' segments, shared by the valence and arousal heads. The encoder is
  frozen in stage 2, so every song's segment embeddings are computed once per
  autoencoder and all head epochs run on that cache.
- Variants: "mask-mean" and "mask-zero" (SpecAugment masks filled with the mean or 0),
  "no-mask" (the ablation) and "baseline" (CNN+BiLSTM trained jointly, no autoencoder,
  no masking). Heads: "bilstm" (the paper's), "lstm", "gru", "bigru".

Examples:

>>> from mer_tfx.experiment import run_experiment
>>> result = run_experiment("data/4q", out_dir="runs/4q", durations=[5], folds=10,
...                         rounds=1, variants=("mask-mean", "no-mask"))  # doctest: +SKIP
>>> print(result.report_md.read_text())                                    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mer_tfx import presets as presets_lib
from mer_tfx.errors import DatasetError, ParameterError
from mer_tfx.experiment import report as report_lib

VARIANTS = ("mask-mean", "mask-zero", "no-mask", "baseline")
HEADS = {  # name -> (rnn_type, bidirectional)
    "bilstm": ("lstm", True),
    "lstm": ("lstm", False),
    "gru": ("gru", False),
    "bigru": ("gru", True),
}
TARGETS = ("valence", "arousal")
_MASK_FILL = {"mask-mean": "mean", "mask-zero": "zero", "no-mask": "none", "baseline": "none"}


# --------------------------------------------------------------------------- folds


@dataclasses.dataclass(frozen=True)
class FoldSplit:
    """One fold of one round. Indices point into the song arrays.

    Attributes:
        round: 0-based round.
        fold: 0-based fold within the round.
        train: int [n_train] songs the models are fitted on.
        val: int [n_val] songs for early stopping (carved from the training side).
        test: int [n_test] songs scored at the end; disjoint from train and val.
    """

    round: int
    fold: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def stratification_labels(labels: Dict[str, np.ndarray], *, targets: Sequence[str]) -> np.ndarray:
    """The label folds are stratified on: the joint label of the targets.

    Args:
        labels: target name -> int [songs] 0/1.
        targets: the targets run.

    Returns:
        int [songs]: sum of label * 2**i over the targets (0..3 for two targets).
    """
    key = np.zeros(len(labels[targets[0]]), dtype=np.int64)
    for i, target in enumerate(targets):
        key += np.asarray(labels[target], dtype=np.int64) << i
    return key


def _val_split(train: np.ndarray, strata: np.ndarray, *, fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    n_val = max(1, int(round(fraction * len(train))))
    if n_val >= len(train):
        raise ParameterError(
            "Too few training songs to carve a validation split. Received: "
            f"{len(train)} training songs, val_fraction={fraction}"
        )
    try:
        fit, val = train_test_split(train, test_size=n_val, random_state=seed,
                                    stratify=strata[train])
    except ValueError:  # a class with one member, or fewer val songs than classes
        fit, val = train_test_split(train, test_size=n_val, random_state=seed)
    return np.sort(fit), np.sort(val)


def make_folds(
    strata: Sequence[int],
    *,
    folds: int = 10,
    rounds: int = 1,
    seed: int = 0,
    val_fraction: float = 0.1,
) -> List[FoldSplit]:
    """K-fold cross-validation by song, repeated `rounds` times with different shuffles.

    Args:
        strata: int [songs], the label to stratify on (see `stratification_labels`).
        folds: number of folds (k >= 2). Each song is in exactly one test fold per round.
        rounds: repetitions; round r shuffles with `random_state=seed + r`.
        seed: base seed.
        val_fraction: share of each fold's training songs held out for early stopping.

    Returns:
        rounds * folds `FoldSplit`s, round-major.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    strata = np.asarray(strata, dtype=np.int64)
    n = len(strata)
    if not isinstance(folds, int) or folds < 2:
        raise ParameterError(f"folds must be an integer >= 2. Received: folds={folds!r}")
    if folds > n:
        raise ParameterError(f"folds must not exceed the number of songs. Received: folds={folds}, "
                             f"songs={n}")
    if not isinstance(rounds, int) or rounds < 1:
        raise ParameterError(f"rounds must be a positive integer. Received: rounds={rounds!r}")
    if not 0.0 < val_fraction < 1.0:
        raise ParameterError(f"val_fraction must be in (0, 1). Received: val_fraction={val_fraction}")
    splits = []
    counts = np.bincount(strata)
    for r in range(rounds):
        if counts[counts > 0].min() >= folds:
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + r)
            pairs = splitter.split(np.zeros(n), strata)
        else:  # some class is rarer than the number of folds: stratification impossible
            pairs = KFold(n_splits=folds, shuffle=True, random_state=seed + r).split(np.zeros(n))
        for f, (train, test) in enumerate(pairs):
            fit, val = _val_split(train, strata, fraction=val_fraction,
                                  seed=(seed + r) * 1000 + f)
            splits.append(FoldSplit(round=r, fold=f, train=fit, val=val, test=np.sort(test)))
    return splits


# --------------------------------------------------------------------------- setup


def _dataset_presets(layout: str, *, durations, small: bool) -> Tuple[str, Tuple]:
    dataset = "pmemo" if str(layout).lower().startswith("pmemo") else "4q"
    available = presets_lib.for_dataset(dataset, small=small)
    if durations is None:
        return dataset, available
    by_seconds = {float(p.features.segment_seconds): p for p in available}
    chosen = []
    for seconds in durations:
        if float(seconds) not in by_seconds:
            raise ParameterError(
                f"No {dataset} preset for this segment duration. Received: duration={seconds}. "
                f"Available: {sorted(by_seconds)}")
        chosen.append(by_seconds[float(seconds)])
    return dataset, tuple(chosen)


def _limit(records, limit: Optional[int], *, seed: int):
    """The first `limit` songs of a seeded shuffle, round-robin over quadrants (balanced)."""
    if limit is None or limit >= len(records):
        return list(records)
    if limit < 2:
        raise ParameterError(f"limit_songs must be >= 2. Received: limit_songs={limit}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(records))
    buckets: Dict[Tuple[int, int], List] = {}
    for i in order:
        rec = records[i]
        buckets.setdefault((int(rec.valence_high), int(rec.arousal_high)), []).append(rec)
    chosen: List = []
    queues = [buckets[k] for k in sorted(buckets)]
    while len(chosen) < limit:
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    order_of = {id(rec): i for i, rec in enumerate(records)}
    return sorted(chosen, key=lambda rec: order_of[id(rec)])


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for dist in ("tensorflow", "keras", "numpy", "scikit-learn", "scipy", "librosa", "tfx"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    from mer_tfx import __version__

    out["mer-tfx"] = __version__
    return out


def _machine() -> dict:
    info = {"platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "hostname": platform.node()}
    try:
        import tensorflow as tf

        info["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception:  # noqa: BLE001 - machine info is best effort
        info["gpus"] = None
    return info



# --------------------------------------------------------------------------- progress


def _epoch_bar(desc: str, total: int, enabled: bool):
    """A Keras callback showing one tqdm bar over the epochs of one fit."""
    import keras

    class EpochBar(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = None
            if enabled:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc=desc, unit="epoch", leave=False)

        def on_epoch_end(self, epoch, logs=None):
            if self.bar is not None:
                logs = logs or {}
                shown = {k: f"{v:.3f}" for k, v in logs.items()
                         if k in ("loss", "val_loss", "accuracy", "val_accuracy")}
                self.bar.set_postfix(shown, refresh=False)
                self.bar.update(1)

        def on_train_end(self, logs=None):
            if self.bar is not None:
                self.bar.close()

    return EpochBar()


# --------------------------------------------------------------------------- scoring


def _predict_labels(model, inputs: np.ndarray, batch_size: Optional[int] = None) -> np.ndarray:
    """argmax of the softmax, computed eagerly: a test fold is small, and an eager call
    skips the seconds `model.predict` spends tracing a new function for every fold.

    Log-mel input ([songs, segments, 216, 128], the baseline) goes 8 songs at a time so
    the paper-size CNN's full-resolution activations stay well under a GPU's memory."""
    if batch_size is None:
        batch_size = 8 if inputs.ndim == 4 else 64
    probabilities = np.concatenate([
        np.asarray(model(inputs[start:start + batch_size], training=False))
        for start in range(0, len(inputs), batch_size)])
    if probabilities.ndim == 2 and probabilities.shape[-1] == 2:
        return probabilities.argmax(axis=-1).astype(np.int64)
    return (probabilities.reshape(-1) > 0.5).astype(np.int64)


@dataclasses.dataclass
class ExperimentResult:
    """What `run_experiment` wrote.

    Attributes:
        out_dir: the output folder.
        rows: the result rows (same as results.csv).
        results_csv, report_md, config_json, histories_json: output files (the
            folder also holds splits.json: the song ids of every split).
        plots: PNG files.
        skipped: (path, reason) of unreadable audio files.
    """

    out_dir: Path
    rows: List[dict]
    results_csv: Path
    report_md: Path
    config_json: Path
    histories_json: Path
    plots: List[Path]
    skipped: List[Tuple[str, str]]


def run_experiment(
    data_root,
    *,
    out_dir,
    durations: Optional[Sequence[float]] = None,
    small: bool = True,
    folds: int = 10,
    rounds: int = 5,
    targets: Sequence[str] = TARGETS,
    variants: Sequence[str] = ("mask-mean",),
    heads: Sequence[str] = ("bilstm",),
    seed: int = 0,
    max_ae_epochs: Optional[int] = None,
    max_head_epochs: Optional[int] = None,
    limit_songs: Optional[int] = None,
    run_folds: Optional[int] = None,
    val_fraction: float = 0.1,
    layout: Optional[str] = None,
    mixed_precision: bool = True,
    cache_dir=None,
    cache_dtype: str = "float32",
    resume: bool = True,
    plots: bool = True,
    progress: bool = True,
    workers: int = 1,
) -> ExperimentResult:
    """Runs the paper's cross-validation protocol and writes its tables and plots.

    Args:
        data_root: a dataset folder `mer_tfx.datasets.read_dataset` understands.
        out_dir: output folder (created). Results are written after every fold, and
            with `resume=True` a rerun into the same folder skips finished runs.
        durations: segment durations in seconds (e.g. [3, 5, 10]). Defaults to all of
            the dataset's presets (PMEmo 1/3/5/10 s, 4Q 3/5/10 s).
        small: use the "-small" CPU presets (default) instead of Table 2/3's sizes.
        folds: k of k-fold cross-validation. Defaults to 10 (the paper's).
        rounds: repetitions with different shuffles. Defaults to 5 (the paper's).
        targets: subset of ("valence", "arousal").
        variants: subset of `VARIANTS`.
        heads: subset of `HEADS` (stage-2 recurrent head).
        seed: base seed of splits and weights.
        max_ae_epochs, max_head_epochs: caps on the epochs of stage 1 and stage 2 (the
            baseline uses `max_head_epochs`). Default: the preset's.
        limit_songs: use only this many songs (balanced over quadrants) for quick runs.
        run_folds: train only the first N folds of each round (timing estimates and
            smoke runs; see `estimate_seconds`). Default: all.
        val_fraction: share of the training songs used for early stopping.
        layout: dataset layout, passed to `read_dataset`. Default: detected.
        mixed_precision: build the models under mixed_float16 when a GPU is visible
            (ignored on CPUs; outputs and losses stay float32). Default: True.
        cache_dir: feature cache folder. Defaults to `<out_dir>/cache`.
        cache_dtype: "float32" or "float16" storage of the cached features.
        resume: reuse finished rows of an existing `results.csv` in `out_dir`.
        plots: write the PNG plots.
        progress: show tqdm progress bars.
        workers: train this many folds at once, each in its own process with
            `cpu_count // workers` TensorFlow threads (default 1: in this process).
            The small models do not keep two cores busy, so on a 2-core CPU two
            workers finish the protocol well ahead of one (see docs/experiment.md).
            Results are identical in content; rows arrive in completion order.

    Returns:
        An `ExperimentResult` with the rows and the paths written.
    """
    targets = tuple(targets)
    variants = tuple(variants)
    heads = tuple(heads)
    for name, values, allowed in (("targets", targets, TARGETS), ("variants", variants, VARIANTS),
                                  ("heads", heads, tuple(HEADS))):
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            raise ParameterError(f"{name} must be a non-empty subset of {allowed}. "
                                 f"Received: {name}={values!r}")
    for name, value in (("max_ae_epochs", max_ae_epochs), ("max_head_epochs", max_head_epochs),
                        ("run_folds", run_folds), ("workers", workers)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ParameterError(f"{name} must be a positive integer. Received: {name}={value!r}")

    from mer_tfx.datasets import read_dataset
    from mer_tfx.experiment.features_cache import build_feature_caches

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir) if cache_dir is not None else out_dir / "cache"
    started = time.perf_counter()

    index = read_dataset(data_root, layout=layout)
    if not index.records:
        raise DatasetError(f"No labelled songs found under {str(data_root)!r}")
    dataset, chosen_presets = _dataset_presets(index.layout, durations=durations, small=small)
    records = _limit(index.records, limit_songs, seed=seed)
    labels_by_id = {r.song_id: {"valence": int(r.valence_high), "arousal": int(r.arousal_high)}
                    for r in records}

    caches = build_feature_caches(
        [(r.song_id, r.path) for r in records],
        features={_cache_name(p): p.features for p in chosen_presets},
        cache_dir=cache_dir, dtype=cache_dtype, progress=progress)
    first = caches[_cache_name(chosen_presets[0])]
    song_ids = first.song_ids
    skipped = [(str(getattr(s, "name", s)), str(getattr(s, "reason", "")))
               for s in index.skipped] + [tuple(s) for s in first.skipped]
    labels = {t: np.array([labels_by_id[s][t] for s in song_ids], np.int64) for t in TARGETS}
    strata = stratification_labels(labels, targets=targets)
    splits = make_folds(strata, folds=folds, rounds=rounds, seed=seed, val_fraction=val_fraction)

    config = {
        "arguments": {
            "data_root": str(data_root), "out_dir": str(out_dir), "durations": durations,
            "small": small, "folds": folds, "rounds": rounds, "targets": targets,
            "variants": variants, "heads": heads, "seed": seed, "max_ae_epochs": max_ae_epochs,
            "max_head_epochs": max_head_epochs, "limit_songs": limit_songs,
            "run_folds": run_folds,
            "val_fraction": val_fraction, "layout": layout, "mixed_precision": mixed_precision,
            "cache_dir": str(cache_dir), "cache_dtype": cache_dtype},
        "dataset": {"layout": index.layout, "root": str(index.root), "songs": len(song_ids),
                    "skipped": [list(s) for s in skipped],
                    "label_info": _jsonable(getattr(index, "label_info", None)),
                    "class_counts": {t: np.bincount(labels[t], minlength=2).tolist()
                                     for t in targets}},
        "presets": {p.name: p.to_dict() for p in chosen_presets},
        "feature_cache": {name: {"path": str(c.path), "loaded": c.loaded,
                                 "compute_seconds": round(c.seconds, 2)}
                          for name, c in caches.items()},
        "splits": [{"round": s.round, "fold": s.fold, "n_train": len(s.train),
                    "n_val": len(s.val), "n_test": len(s.test)} for s in splits],
        "versions": _versions(),
        "machine": _machine(),
    }
    # What the models are built with: mixed_float16 only when asked and a GPU is seen.
    config["dtype_policy"] = (
        "mixed_float16" if mixed_precision and config["machine"]["gpus"] else "float32")
    config_json = out_dir / "config.json"
    # What makes rows of two invocations comparable: same songs, splits and training caps.
    # More rounds, durations, variants or heads only add rows.
    config["protocol"] = {
        "folds": folds, "seed": seed, "val_fraction": val_fraction, "targets": list(targets),
        "small": small, "max_ae_epochs": max_ae_epochs, "max_head_epochs": max_head_epochs,
        "songs_sha256": hashlib.sha256("\n".join(song_ids).encode()).hexdigest()}
    if resume and config_json.exists() and (out_dir / "results.csv").exists():
        try:
            previous = json.loads(config_json.read_text())
        except (OSError, ValueError):
            previous = {}
        if previous.get("protocol", config["protocol"]) != config["protocol"]:
            changed = sorted(k for k, v in config["protocol"].items()
                             if previous["protocol"].get(k) != v)
            raise ParameterError(
                f"{out_dir} holds results of a different protocol (changed: {', '.join(changed)}). "
                "Use another output folder, or resume=False (--no-resume) to start over.")
        config["previous_invocations"] = previous.get("previous_invocations", []) + [
            previous.get("arguments")]
    config_json.write_text(json.dumps(config, indent=1))
    # The exact songs of every split, so a run can be audited and reproduced elsewhere.
    (out_dir / "splits.json").write_text(json.dumps([
        {"round": s.round, "fold": s.fold,
         **{side: [song_ids[i] for i in getattr(s, side)] for side in ("train", "val", "test")}}
        for s in splits]))

    results_csv = out_dir / "results.csv"
    histories_json = out_dir / "histories.json"
    rows: List[dict] = []
    histories: List[dict] = []
    if resume and results_csv.exists():
        rows = report_lib.read_results(results_csv)
        if histories_json.exists():
            histories = json.loads(histories_json.read_text())
    done = {(r["preset"], r["variant"], r["head"], r["target"], r["round"], r["fold"])
            for r in rows}

    runner_kwargs = dict(
        dataset=dataset, targets=targets, heads=heads, labels=labels, seed=seed,
        max_ae_epochs=max_ae_epochs, max_head_epochs=max_head_epochs,
        mixed_precision=mixed_precision)
    jobs = [(p, v, s) for p in chosen_presets for v in variants for s in splits
            if run_folds is None or s.fold < run_folds]

    def finished(job) -> bool:
        preset, variant, split = job
        return all((preset.name, variant, h, t, split.round, split.fold) in done
                   for h in (heads if variant != "baseline" else ("bilstm",)) for t in targets)

    pending = [job for job in jobs if not finished(job)]
    outer = None
    if progress:
        from tqdm.auto import tqdm

        outer = tqdm(total=len(jobs), initial=len(jobs) - len(pending), desc="experiment",
                     unit="fold")
    if workers > 1 and len(pending) > 1:
        completed = _run_in_workers(
            pending, workers=workers, runner_kwargs=runner_kwargs,
            cache_paths={name: str(c.path) for name, c in caches.items()})
    else:
        runner = _FoldRunner(**runner_kwargs, progress=progress)
        completed = _run_here(pending, runner=runner, caches=caches, outer=outer,
                              rounds=rounds, folds=folds)
    for (preset, variant, split), new_rows, new_histories, seconds in completed:
        for row in new_rows:  # everything this fold x variant cost, shared by its rows
            row["fold_seconds"] = seconds
        rows.extend(new_rows)
        histories.extend(new_histories)
        report_lib.write_results(rows, results_csv)
        histories_json.write_text(json.dumps(histories))
        if outer is not None:
            outer.set_postfix_str(f"done: {preset.name} {variant} round {split.round + 1} "
                                  f"fold {split.fold + 1} ({seconds:.0f} s)")
            outer.update(1)
    if outer is not None:
        outer.close()
    report_lib.write_results(rows, results_csv)
    histories_json.write_text(json.dumps(histories))

    plot_paths: List[Path] = []
    if plots:
        from mer_tfx.experiment import plots as plots_lib

        plot_paths = plots_lib.write_plots(rows=rows, histories=histories, index=index,
                                           song_ids=song_ids, out_dir=out_dir)
    notes = [
        f"dataset: {index.layout} at `{index.root}`, {len(song_ids)} songs used"
        + (f", {len(skipped)} skipped (see config.json)" if skipped else ""),
        f"protocol: {folds}-fold CV by song x {rounds} round(s), stratified on "
        f"{' + '.join(targets)}; early stopping on {val_fraction:.0%} of each fold's training songs",
        f"presets: {', '.join(p.name for p in chosen_presets)}; variants: {', '.join(variants)}; "
        f"heads: {', '.join(heads)}",
        f"machine: {config['machine']['platform']}, {config['machine']['cpu_count']} CPUs, "
        f"GPUs: {config['machine']['gpus'] or 'none'}; dtype policy: {config['dtype_policy']}",
        f"training wall time summed over all folds: "
        f"{_sum_fold_seconds(rows) / 3600:.2f} h; this invocation (features included): "
        f"{time.perf_counter() - started:.0f} s",
    ]
    report_md = report_lib.write_report(
        rows, out_dir / "report.md", title=f"He & Ferguson protocol on {index.layout}",
        notes=notes, plots=[p.name for p in plot_paths])
    return ExperimentResult(out_dir=out_dir, rows=rows, results_csv=results_csv,
                            report_md=report_md, config_json=config_json,
                            histories_json=histories_json, plots=plot_paths, skipped=skipped)


def _run_here(pending, *, runner, caches, outer, rounds, folds):
    """Runs the jobs one after another in this process; yields as `_run_in_workers` does."""
    for preset, variant, split in pending:
        if outer is not None:
            outer.set_description(f"{preset.name} {variant} round {split.round + 1}/{rounds} "
                                  f"fold {split.fold + 1}/{folds}")
        yield (preset, variant, split), *_timed_job(
            runner, preset, variant, split, caches[_cache_name(preset)].log_mels)


def _timed_job(runner, preset, variant, split, log_mels):
    """One fold x variant: (rows, histories, wall seconds); frees its models afterwards."""
    job_start = time.perf_counter()
    new_rows, new_histories = runner.run(
        preset=preset, variant=variant, split=split, log_mels=log_mels)
    seconds = time.perf_counter() - job_start
    _free_models()
    return new_rows, new_histories, seconds


# Per-process state of a worker (set by `_worker_init`).
_WORKER: dict = {}


def _worker_init(threads: int, runner_kwargs: dict, cache_paths: Dict[str, str]) -> None:
    import logging

    import tensorflow as tf

    # Before any TensorFlow op runs in this process.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    _WORKER.clear()
    _WORKER.update(runner=_FoldRunner(**runner_kwargs, progress=False),
                   cache_paths=cache_paths, arrays={})


def _worker_job(preset, variant, split):
    arrays = _WORKER["arrays"]
    name = _cache_name(preset)
    if name not in arrays:
        arrays[name] = np.load(_WORKER["cache_paths"][name], mmap_mode="r")
    return _timed_job(_WORKER["runner"], preset, variant, split, arrays[name])


def _run_in_workers(pending, *, workers, runner_kwargs, cache_paths):
    """Runs the jobs in `workers` processes; yields `(job, rows, histories, seconds)` as
    each finishes. The baselines (the longest jobs) are handed out first, so the
    workers finish close together."""
    import concurrent.futures
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // workers)
    order = sorted(pending, key=lambda job: job[1] != "baseline")  # stable: baselines first
    # "spawn": a fresh interpreter per worker, safe whatever this process has imported.
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init, initargs=(threads, runner_kwargs, cache_paths)) as pool:
        futures = {pool.submit(_worker_job, *job): job for job in order}
        try:
            for future in concurrent.futures.as_completed(futures):
                new_rows, new_histories, seconds = future.result()
                yield futures[future], new_rows, new_histories, seconds
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _free_models() -> None:
    """Drops the finished fold's Keras graphs so hundreds of folds don't pile up."""
    import keras

    keras.backend.clear_session()


def _cache_name(preset) -> str:
    """Features do not depend on the model size, so "-small" presets share the cache."""
    name = preset.name
    return name[: -len("-small")] if name.endswith("-small") else name


def _jsonable(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if dataclasses.is_dataclass(value):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _history(result) -> dict:
    history = getattr(result, "history", None) or {}
    return {k: [float(x) for x in v] for k, v in dict(history).items()}


class _FoldRunner:
    """Trains and scores one fold x round of one preset and variant."""

    def __init__(self, *, dataset, targets, heads, labels, seed, max_ae_epochs, max_head_epochs,
                 mixed_precision, progress):
        self.dataset = dataset
        self.targets = targets
        self.heads = heads
        self.labels = labels
        self.seed = seed
        self.max_ae_epochs = max_ae_epochs
        self.max_head_epochs = max_head_epochs
        self.mixed_precision = mixed_precision
        self.progress = progress

    def _row(self, preset, variant, head, target, split, *, accuracy, f1, ae, head_result):
        y = self.labels[target]
        training_side = np.concatenate([split.train, split.val])
        majority_acc, majority_f1 = report_lib.majority_class_scores(
            train_labels=y[training_side], test_labels=y[split.test])
        return {
            "dataset": self.dataset, "preset": preset.name,
            "segment_seconds": float(preset.features.segment_seconds), "variant": variant,
            "head": head, "target": target, "round": split.round, "fold": split.fold,
            "accuracy": accuracy, "f1": f1,
            "majority_accuracy": majority_acc, "majority_f1": majority_f1,
            "ae_epochs": int(ae.epochs) if ae is not None else 0,
            "ae_best_epoch": int(ae.best_epoch) if ae is not None else 0,
            "ae_seconds": float(ae.seconds) if ae is not None else 0.0,
            "head_epochs": int(head_result.epochs), "head_best_epoch": int(head_result.best_epoch),
            "head_seconds": float(head_result.seconds),
            "n_train": len(split.train), "n_val": len(split.val), "n_test": len(split.test),
            "seed": self.seed,
        }

    def _tag(self, preset, variant, split) -> dict:
        return {"preset": preset.name, "segment_seconds": float(preset.features.segment_seconds),
                "variant": variant, "round": split.round, "fold": split.fold}

    def run(self, *, preset, variant, split, log_mels) -> Tuple[List[dict], List[dict]]:
        from mer_tfx import training

        seed = self.seed + 1000 * split.round + split.fold
        preset = preset.replace(mask_fill=_MASK_FILL[variant])
        where = f"{preset.name} {variant} r{split.round + 1} f{split.fold + 1}"
        rows, histories = [], []
        train_x = np.asarray(log_mels[split.train], dtype=np.float32)
        val_x = np.asarray(log_mels[split.val], dtype=np.float32)
        test_x = np.asarray(log_mels[split.test], dtype=np.float32)

        if variant == "baseline":
            for target in self.targets:
                y = self.labels[target]
                max_epochs = self.max_head_epochs or preset.training.head_max_epochs
                result = training.train_baseline(
                    train_x, y[split.train], val_x, y[split.val], preset=preset, seed=seed,
                    verbose=0, max_epochs=max_epochs, mixed_precision=self.mixed_precision,
                    callbacks=[_epoch_bar(f"{where} baseline {target}", max_epochs,
                                          self.progress)])
                accuracy, f1 = report_lib.binary_scores(
                    y_true=y[split.test], y_pred=_predict_labels(result.model, test_x))
                rows.append(self._row(preset, variant, "bilstm", target, split, accuracy=accuracy,
                                      f1=f1, ae=None, head_result=result))
                histories.append({**self._tag(preset, variant, split), "stage": "baseline",
                                  "head": "bilstm", "target": target,
                                  "history": _history(result)})
            return rows, histories

        frames, mels = train_x.shape[-2:]
        max_ae = self.max_ae_epochs or preset.training.ae_max_epochs
        ae = training.pretrain_autoencoder(
            train_x.reshape(-1, frames, mels), val_x.reshape(-1, frames, mels), preset=preset,
            seed=seed, verbose=0, max_epochs=max_ae, mixed_precision=self.mixed_precision,
            callbacks=[_epoch_bar(f"{where} autoencoder", max_ae, self.progress)])
        histories.append({**self._tag(preset, variant, split), "stage": "autoencoder",
                          "history": _history(ae)})
        encoder = ae.model.encoder
        # Frozen encoder: embed every song once, then all head epochs run on the cache.
        all_idx = np.concatenate([split.train, split.val, split.test])
        embedded = training.encode_segments(encoder, np.concatenate([train_x, val_x, test_x]))
        emb = {int(i): k for k, i in enumerate(all_idx)}
        take = lambda idx: embedded[[emb[int(i)] for i in idx]]  # noqa: E731
        e_train, e_val, e_test = take(split.train), take(split.val), take(split.test)
        del train_x, val_x, test_x

        for head in self.heads:
            rnn_type, bidirectional = HEADS[head]
            head_preset = preset.replace(rnn_type=rnn_type, bidirectional=bidirectional)
            for target in self.targets:
                y = self.labels[target]
                max_epochs = self.max_head_epochs or head_preset.training.head_max_epochs
                result = training.train_head(
                    e_train, y[split.train], e_val, y[split.val], preset=head_preset, seed=seed,
                    verbose=0, max_epochs=max_epochs, mixed_precision=self.mixed_precision,
                    callbacks=[_epoch_bar(f"{where} {head} {target}", max_epochs,
                                          self.progress)])
                accuracy, f1 = report_lib.binary_scores(
                    y_true=y[split.test], y_pred=_predict_labels(result.model, e_test))
                rows.append(self._row(preset, variant, head, target, split, accuracy=accuracy,
                                      f1=f1, ae=ae, head_result=result))
                histories.append({**self._tag(preset, variant, split), "stage": "head",
                                  "head": head, "target": target, "history": _history(result)})
        return rows, histories


def _sum_fold_seconds(rows: Sequence[dict]) -> float:
    jobs: Dict[tuple, List[dict]] = {}
    for r in rows:
        jobs.setdefault((r["preset"], r["variant"], r["round"], r["fold"]), []).append(r)
    return float(sum(_fold_cost(group) for group in jobs.values()))


def _fold_cost(group: Sequence[dict]) -> float:
    value = group[0].get("fold_seconds")
    if value is not None and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    return group[0]["ae_seconds"] + sum(r["head_seconds"] for r in group)


def estimate_seconds(rows: Sequence[dict], *, folds: int, rounds: int) -> Dict[str, float]:
    """Extrapolates the wall time of a full run from the rows of a partial one.

    Returns:
        preset/variant -> seconds for `folds * rounds` folds, from the mean wall time
        of one fold (`fold_seconds`: the autoencoder, encoding, every head x target and
        scoring; the feature cache is not included).
    """
    out: Dict[str, float] = {}
    groups: Dict[tuple, Dict[tuple, List[dict]]] = {}
    for r in rows:
        groups.setdefault((r["preset"], r["variant"]), {}).setdefault(
            (r["round"], r["fold"]), []).append(r)
    for (preset, variant), per_fold in groups.items():
        costs = [_fold_cost(group) for group in per_fold.values()]
        out[f"{preset} {variant}"] = float(np.mean(costs)) * folds * rounds if costs else math.nan
    return out
