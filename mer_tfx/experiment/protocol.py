"""The paper's experiment protocol: k-fold cross-validation by song, repeated rounds.

He & Ferguson (sections 4.4-6) evaluate with 10-fold cross-validation (9:1 train/test),
5 rounds, early stopping with patience 10 on a validation set, segment durations of
1/3/5/10 s, a masking ablation and a CNN+BiLSTM baseline trained end to end.
`run_experiment` runs that protocol on any dataset `mer_tfx.datasets.read_dataset`
can read and writes `results.csv`, `report.md`, `config.json`, `splits.json`,
`histories.json` and PNG plots to `out_dir`.

How the protocol is laid out (one module per part):

- `folds`: folds are made BY SONG with `StratifiedKFold(shuffle=True,
  random_state=seed + round)`, stratified on the joint (valence_high, arousal_high)
  label when both targets are run (so one split stratifies both targets and the
  autoencoder can be shared), else on the one target. Every duration and variant uses
  the same splits, so their scores are matched fold by fold for paired t-tests. Early
  stopping uses 10 % of each fold's TRAINING songs (`mer_tfx.recipe.validation_split`);
  the test fold is never seen before the final scoring.
- `fold_runner`: one fold of one preset and variant, trained with the TFX Trainer's
  recipe (`mer_tfx.recipe`): one autoencoder per fold x round x duration x masking
  variant, trained only on the training songs' segments, frozen and shared by every
  head and target, whose embeddings are computed once. Variants: "mask-mean" and
  "mask-zero" (SpecAugment masks filled with the mean or 0), "no-mask" (the ablation)
  and "baseline" (CNN+BiLSTM trained jointly, no autoencoder, no masking). Heads:
  "bilstm" (the paper's), "lstm", "gru", "bigru".
- `jobs`: the folds run one after another here, or in worker processes;
  `songs`: the presets and songs a run uses; `run_info`: config.json (versions,
  machine, the protocol key a resumed run must match); `timing`: wall-time estimates.

Examples:

>>> from mer_tfx.experiment import run_experiment
>>> result = run_experiment("data/4q", out_dir="runs/4q", durations=[5], folds=10,
...                         rounds=1, variants=("mask-mean", "no-mask"))  # doctest: +SKIP
>>> print(result.report_md.read_text())                                    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from mer_tfx import recipe
from mer_tfx.errors import DatasetError, ParameterError
from mer_tfx.experiment import features_cache, jobs, quadrants, run_info, songs
from mer_tfx.experiment import report as report_lib
from mer_tfx.experiment.fold_runner import (
    HEADS,
    SINGLE_HEAD,
    TARGETS,
    VARIANTS,
    FoldRunner,
    label_variant,
    parse_head,
    parse_variant,
)
from mer_tfx.experiment.folds import GROUP_BY, FoldSplit, make_folds, stratification_labels
from mer_tfx.experiment.timing import estimate_seconds, sum_fold_seconds

__all__ = [
    "HEADS", "TARGETS", "VARIANTS", "ExperimentResult", "FoldSplit", "ParameterError",
    "estimate_seconds", "make_folds", "run_experiment", "stratification_labels",
]


@dataclasses.dataclass
class ExperimentResult:
    """What `run_experiment` wrote.

    Attributes:
        out_dir: the output folder.
        rows: the result rows (same as results.csv).
        results_csv, report_md, config_json, histories_json, predictions_csv: output
            files (the folder also holds splits.json: the song ids of every split).
        plots: PNG files.
        skipped: (path, reason) of unreadable audio files.
        unfinished: fold jobs of the protocol with no results yet (only a
            `report_only` call leaves any).
    """

    out_dir: Path
    rows: List[dict]
    results_csv: Path
    report_md: Path
    config_json: Path
    histories_json: Path
    plots: List[Path]
    skipped: List[Tuple[str, str]]
    predictions_csv: Optional[Path] = None
    unfinished: int = 0


def _check_arguments(*, targets, variants, heads, counts) -> None:
    for name, values, allowed in (("targets", targets, TARGETS), ("variants", variants, VARIANTS)):
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            raise ParameterError(f"{name} must be a non-empty subset of {allowed}. "
                                 f"Received: {name}={values!r}")
    if not heads:
        raise ParameterError(f"heads must name at least one head of {tuple(HEADS)}. "
                             f"Received: heads={heads!r}")
    for head in heads:
        parse_head(head)
    for name, value in counts.items():
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ParameterError(f"{name} must be a positive integer. Received: {name}={value!r}")


@dataclasses.dataclass
class _Songs:
    """The songs of a run after reading the dataset and its features."""

    index: object
    dataset: str
    presets: Tuple
    caches: dict
    song_ids: List[str]
    labels: dict
    skipped: List[Tuple[str, str]]
    artists: List[Optional[str]] = dataclasses.field(default_factory=list)


def _read_songs(data_root, *, layout, durations, small, limit_songs, seed, cache_dir,
                cache_dtype, progress) -> _Songs:
    from mer_tfx.datasets import read_dataset

    index = read_dataset(data_root, layout=layout)
    if not index.records:
        raise DatasetError(f"No labelled songs found under {str(data_root)!r}")
    dataset, chosen = songs.dataset_presets(index.layout, durations=durations, small=small)
    records = songs.limit_songs(index.records, limit_songs, seed=seed)
    labels_by_id = {r.song_id: {"valence": int(r.valence_high), "arousal": int(r.arousal_high)}
                    for r in records}
    caches = features_cache.build_feature_caches(
        [(r.song_id, r.path) for r in records],
        features={features_cache.cache_name(p): p.features for p in chosen},
        cache_dir=cache_dir, dtype=cache_dtype, progress=progress)
    first = caches[features_cache.cache_name(chosen[0])]
    skipped = [(str(getattr(s, "name", s)), str(getattr(s, "reason", "")))
               for s in index.skipped] + [tuple(s) for s in first.skipped]
    labels = {t: np.array([labels_by_id[s][t] for s in first.song_ids], np.int64)
              for t in TARGETS}
    artist_by_id = {r.song_id: (r.metadata or {}).get("artist") or None for r in records}
    return _Songs(index=index, dataset=dataset, presets=chosen, caches=caches,
                  song_ids=list(first.song_ids), labels=labels, skipped=skipped,
                  artists=[artist_by_id[s] for s in first.song_ids])


def _groups(data: _Songs, group_by: Optional[str]):
    """(int [songs] group of each song or None, what config.json records about them).

    Songs with no artist are each a group of their own.

    Raises:
        ParameterError: no song has an artist.
    """
    if group_by is None:
        return None, None
    known = [a for a in data.artists if a]
    if not known:
        raise ParameterError(
            f"group_by={group_by!r} needs the songs' artists, and {data.index.layout} data at "
            f"{str(data.index.root)!r} names none (4Q: panda_dataset_taffc_metadata.csv beside "
            "the Q1..Q4 folders; PMEmo: metadata.csv; a manifest: an 'artist' column).")
    names = [a if a else f"song:{s}" for a, s in zip(data.artists, data.song_ids, strict=True)]
    codes = {name: i for i, name in enumerate(dict.fromkeys(names))}
    counts = np.bincount([codes[n] for n in names])
    record = {"by": group_by, "groups": len(codes), "songs_without_artist": len(names) - len(known),
              "songs_sharing_an_artist": int(counts[counts > 1].sum())}
    return np.array([codes[n] for n in names], np.int64), record


def _config(arguments: dict, data: _Songs, splits, *, targets, mixed_precision,
            groups=None) -> dict:
    config = {
        "arguments": arguments,
        "dataset": {"layout": data.index.layout, "root": str(data.index.root),
                    "songs": len(data.song_ids), "skipped": [list(s) for s in data.skipped],
                    "label_info": run_info.jsonable(getattr(data.index, "label_info", None)),
                    "class_counts": {t: np.bincount(data.labels[t], minlength=2).tolist()
                                     for t in targets}},
        "presets": {p.name: p.to_dict() for p in data.presets},
        "feature_cache": {name: {"path": str(c.path), "loaded": c.loaded,
                                 "compute_seconds": round(c.seconds, 2)}
                          for name, c in data.caches.items()},
        "splits": [{"round": s.round, "fold": s.fold, "n_train": len(s.train),
                    "n_val": len(s.val), "n_test": len(s.test)} for s in splits],
        "versions": run_info.versions(),
        "machine": run_info.machine(),
    }
    # What the models are built with: mixed_float16 only when asked and a GPU is seen.
    config["dtype_policy"] = (
        "mixed_float16" if mixed_precision and config["machine"]["gpus"] else "float32")
    config["protocol"] = run_info.protocol_key(
        **{k: arguments[k] for k in ("folds", "seed", "val_fraction", "targets", "small",
                                     "max_ae_epochs", "max_head_epochs", "unlabeled_data",
                                     "group_by")},
        song_ids=data.song_ids)
    if groups is not None:
        config["groups"] = groups
    return config


def _previous_results(results_csv: Path, histories_json: Path, predictions_csv: Path, *,
                      resume: bool):
    """(rows, histories, predictions) of an earlier invocation into the same folder, or
    three empty lists. Folders written before predictions.csv existed have none."""
    if not (resume and results_csv.exists()):
        return [], [], []
    histories = json.loads(histories_json.read_text()) if histories_json.exists() else []
    predictions = (quadrants.read_predictions(predictions_csv) if predictions_csv.exists()
                   else [])
    return report_lib.read_results(results_csv), histories, predictions


def _with_label_fractions(variants, fractions) -> Tuple[str, ...]:
    """Every variant once per label fraction: at 1 as it is, below 1 on the labelled
    share ("labels=25%"), and the two-stage variants also with the rest of the training
    songs' audio in stage 1 ("+rest"; the baseline and logreg have no unlabelled stage)."""
    out: List[str] = []
    for variant in variants:
        for fraction in fractions:
            names = ([variant] if fraction >= 1.0 else
                     [label_variant(variant, fraction, rest=False)]
                     + ([] if variant in SINGLE_HEAD else
                        [label_variant(variant, fraction, rest=True)]))
            out.extend(n for n in names if n not in out)
    return tuple(out)


def _unlabeled_caches(folder, *, presets, cache_dir: Path):
    """({cache name: .npy path}, what config.json records) of `--unlabeled-data`'s
    log-mels, computed once per feature setting and kept in the feature cache folder."""
    if folder is None:
        return {}, None
    import hashlib

    from mer_tfx import training

    folder = Path(folder).resolve()
    listing = sorted(f"{p.relative_to(folder)}:{p.stat().st_size}"
                     for p in folder.rglob("*") if p.is_file())
    digest = hashlib.sha256("\n".join([str(folder), *listing]).encode()).hexdigest()[:12]
    paths, record = {}, {"folder": str(folder), "clips": {}, "skipped": []}
    for preset in presets:
        name = features_cache.cache_name(preset)
        if name in paths:
            continue
        path = Path(cache_dir) / f"unlabeled-{name}-{digest}.npy"
        if not path.exists():
            log_mels, skipped = training.unlabeled_log_mels(folder, preset=preset)
            record["skipped"] = [list(s) for s in skipped]
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, log_mels)
        paths[name] = str(path)
        record["clips"][name] = int(np.load(path, mmap_mode="r").shape[0])
    return paths, record


def _pending_jobs(all_jobs, *, rows, heads, targets) -> list:
    """The jobs (preset, variant, split) that `rows` lack a result row for."""
    done = {(r["preset"], r["variant"], r["head"], r["target"], r["round"], r["fold"])
            for r in rows}

    def finished(job) -> bool:
        preset, variant, split = job
        base = parse_variant(variant)[0]
        return all((preset.name, variant, h, t, split.round, split.fold) in done
                   for h in ((SINGLE_HEAD[base],) if base in SINGLE_HEAD else heads)
                   for t in targets)

    return [job for job in all_jobs if not finished(job)]


def _run_jobs(all_jobs, pending, *, rows, histories, predictions, data: _Songs,
              runner_kwargs, workers, progress, results_csv, histories_json, predictions_csv,
              rounds, folds) -> None:
    """Runs the `pending` jobs of `all_jobs`, appending to `rows`, `histories` and
    `predictions` and writing them after every fold (so an interrupted run resumes where
    it stopped)."""
    outer = None
    if progress:
        from tqdm.auto import tqdm

        from mer_tfx import console

        outer = tqdm(total=len(all_jobs), initial=len(all_jobs) - len(pending),
                     desc="experiment", unit="fold", file=console.stream())
    if workers > 1 and len(pending) > 1:
        completed = jobs.run_in_workers(
            pending, workers=workers, runner_kwargs=runner_kwargs,
            cache_paths={name: str(c.path) for name, c in data.caches.items()})
    else:
        completed = jobs.run_here(pending, runner=FoldRunner(**runner_kwargs, progress=progress),
                                  caches=data.caches, outer=outer, rounds=rounds, folds=folds)
    for (preset, variant, split), new_rows, new_histories, seconds in completed:
        for row in new_rows:  # everything this fold x variant cost, shared by its rows
            row["fold_seconds"] = seconds
            predictions.extend(row.pop("predictions", []))
        rows.extend(new_rows)
        histories.extend(new_histories)
        quadrants.write_predictions(predictions, predictions_csv)
        report_lib.write_results(rows, results_csv)
        histories_json.write_text(json.dumps(histories))
        if outer is not None:
            outer.set_postfix_str(f"done: {preset.name} {variant} round {split.round + 1} "
                                  f"fold {split.fold + 1} ({seconds:.0f} s)")
            outer.update(1)
    if outer is not None:
        outer.close()
    quadrants.write_predictions(predictions, predictions_csv)
    report_lib.write_results(rows, results_csv)
    histories_json.write_text(json.dumps(histories))


def _write_report(rows, histories, *, predictions, data: _Songs, config: dict, out_dir: Path,
                  plots: bool, started: float, unfinished: int = 0,
                  jobs: int = 0) -> Tuple[Path, List[Path]]:
    """The PNG plots (when asked) and report.md; returns (report path, plot paths).
    `unfinished` of the run's `jobs` fold jobs have no results yet (a partial report)."""
    args = config["arguments"]
    plot_paths: List[Path] = []
    if plots:
        from mer_tfx.experiment import plots as plots_lib

        plot_paths = plots_lib.write_plots(rows=rows, histories=histories, index=data.index,
                                           song_ids=data.song_ids, out_dir=out_dir)
    notes = [
        f"dataset: {data.index.layout} at `{data.index.root}`, {len(data.song_ids)} songs used"
        + (f", {len(data.skipped)} skipped (see config.json)" if data.skipped else ""),
        f"protocol: {args['folds']}-fold CV by song x {args['rounds']} round(s), stratified on "
        f"{' + '.join(args['targets'])}"
        + (f", songs of one {args['group_by']} kept in one fold ({config['groups']['groups']} "
           f"groups)" if args.get("group_by") else "")
        + f"; early stopping on {args['val_fraction']:.0%} of each fold's training songs",
        f"presets: {', '.join(p.name for p in data.presets)}; variants: "
        f"{', '.join(args['variants'])}; heads: {', '.join(args['heads'])}",
        f"machine: {config['machine']['platform']}, {config['machine']['cpu_count']} CPUs, "
        f"GPUs: {config['machine']['gpus'] or 'none'}; dtype policy: {config['dtype_policy']}",
        f"training wall time summed over all folds: "
        f"{sum_fold_seconds(rows) / 3600:.2f} h; this invocation (features included): "
        f"{time.perf_counter() - started:.0f} s",
    ]
    if unfinished:
        notes.insert(0, f"**partial**: {jobs - unfinished} of {jobs} fold jobs finished; the "
                        "same command without --report-only trains the rest")
    report_md = report_lib.write_report(
        rows, out_dir / "report.md", title=f"He & Ferguson protocol on {data.index.layout}",
        notes=notes, plots=[p.name for p in plot_paths], predictions=predictions)
    return report_md, plot_paths


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
    val_fraction: float = recipe.VALIDATION_FRACTION,
    layout: Optional[str] = None,
    mixed_precision: bool = True,
    cache_dir=None,
    cache_dtype: str = "float32",
    resume: bool = True,
    plots: bool = True,
    progress: bool = True,
    workers: int = 1,
    label_fractions: Sequence[float] = (1.0,),
    unlabeled_data=None,
    group_by: Optional[str] = None,
    report_only: bool = False,
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
        heads: stage-2 heads, each `NAME[:KEY=VALUE,...]` (`fold_runner.parse_head`):
            a name of `HEADS` and optional hyperparameters and options, e.g.
            "bilstm:learning_rate=1e-4,seeds=5,grid_shifts=2". All heads of a fold share
            its autoencoder.
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
        label_fractions: shares in (0, 1] of each fold's training songs whose labels
            every variant uses (a learning curve; the same songs for every variant of a
            fold and share). Below 1, "<variant> labels=25%" trains on the labelled
            share only; the two-stage variants also run as "... +rest", which gives
            stage 1 the other training songs' audio without labels (never the test
            fold's), and the report pairs the two and fits accuracy = a + b·ln(n) per
            model (`curve`). Default: (1.0,), every label.
        unlabeled_data: a folder of audio that every two-stage stage 1 also trains on
            (no labels needed; it must not hold the dataset's songs). Its log-mels are
            computed once per feature setting and kept in the cache folder.
        group_by: "artist" keeps each artist's songs in one fold
            (`StratifiedGroupKFold`; `folds.make_folds`), or None (default) to split
            songs alone. Needs the dataset to name artists.
        report_only: train nothing; write report.md and the plots from the rows an
            earlier (perhaps interrupted) run left in `out_dir`, marked partial when some
            of this protocol's jobs have no results yet.

    Returns:
        An `ExperimentResult` with the rows and the paths written.
    """
    targets, variants, heads = tuple(targets), tuple(variants), tuple(heads)
    label_fractions = tuple(float(f) for f in label_fractions)
    if not label_fractions or any(not 0.0 < f <= 1.0 for f in label_fractions):
        raise ParameterError("label_fractions must be shares in (0, 1]. "
                             f"Received: label_fractions={label_fractions!r}")
    if group_by is not None and group_by not in GROUP_BY:
        raise ParameterError(f"group_by must be one of {GROUP_BY} or None. "
                             f"Received: group_by={group_by!r}")
    _check_arguments(targets=targets, variants=variants, heads=heads,
                     counts={"max_ae_epochs": max_ae_epochs, "max_head_epochs": max_head_epochs,
                             "run_folds": run_folds, "workers": workers})
    out_dir = Path(out_dir)
    if report_only and not (resume and (out_dir / "results.csv").is_file()):
        raise ParameterError(f"report_only needs the results.csv of an earlier run in {out_dir} "
                             "(and resume). Run the experiment into that folder first.")
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir) if cache_dir is not None else out_dir / "cache"
    started = time.perf_counter()
    arguments = {
        "data_root": str(data_root), "out_dir": str(out_dir), "durations": durations,
        "small": small, "folds": folds, "rounds": rounds, "targets": targets,
        "variants": variants, "heads": heads, "seed": seed, "max_ae_epochs": max_ae_epochs,
        "max_head_epochs": max_head_epochs, "limit_songs": limit_songs, "run_folds": run_folds,
        "val_fraction": val_fraction, "layout": layout, "mixed_precision": mixed_precision,
        "cache_dir": str(cache_dir), "cache_dtype": cache_dtype,
        "label_fractions": label_fractions,
        "unlabeled_data": str(Path(unlabeled_data).resolve()) if unlabeled_data else None,
        "group_by": group_by}

    data = _read_songs(data_root, layout=layout, durations=durations, small=small,
                       limit_songs=limit_songs, seed=seed, cache_dir=cache_dir,
                       cache_dtype=cache_dtype, progress=progress)
    groups, groups_record = _groups(data, group_by)
    strata = stratification_labels(data.labels, targets=targets)
    splits = make_folds(strata, folds=folds, rounds=rounds, seed=seed, val_fraction=val_fraction,
                        song_ids=data.song_ids, groups=groups)
    config = _config(arguments, data, splits, targets=targets, mixed_precision=mixed_precision,
                     groups=groups_record)
    unlabeled_paths, config["unlabeled_data"] = _unlabeled_caches(
        unlabeled_data, presets=data.presets, cache_dir=cache_dir)
    variants = _with_label_fractions(variants, label_fractions)
    results_csv = out_dir / "results.csv"
    histories_json = out_dir / "histories.json"
    predictions_csv = out_dir / "predictions.csv"
    config_json = out_dir / "config.json"
    run_info.write_config(config, config_json, resume=resume, results_exist=results_csv.exists())
    # The exact songs of every split, so a run can be audited and reproduced elsewhere.
    (out_dir / "splits.json").write_text(json.dumps([
        {"round": s.round, "fold": s.fold,
         **{side: [data.song_ids[i] for i in getattr(s, side)] for side in ("train", "val", "test")}}
        for s in splits]))

    rows, histories, predictions = _previous_results(results_csv, histories_json,
                                                     predictions_csv, resume=resume)
    runner_kwargs = dict(
        dataset=data.dataset, targets=targets, heads=heads, labels=data.labels,
        song_ids=data.song_ids, strata=strata, seed=seed, val_fraction=val_fraction,
        max_ae_epochs=max_ae_epochs, max_head_epochs=max_head_epochs,
        mixed_precision=mixed_precision, unlabeled_paths=unlabeled_paths)
    all_jobs = [(p, v, s) for p in data.presets for v in variants for s in splits
                if run_folds is None or s.fold < run_folds]
    pending = _pending_jobs(all_jobs, rows=rows, heads=heads, targets=targets)
    if not report_only:
        _run_jobs(all_jobs, pending, rows=rows, histories=histories, predictions=predictions,
                  data=data, runner_kwargs=runner_kwargs, workers=workers, progress=progress,
                  results_csv=results_csv, histories_json=histories_json,
                  predictions_csv=predictions_csv, rounds=rounds, folds=folds)
        pending = []

    report_md, plot_paths = _write_report(rows, histories, predictions=predictions, data=data,
                                          config=config, out_dir=out_dir, plots=plots,
                                          started=started, unfinished=len(pending),
                                          jobs=len(all_jobs))
    return ExperimentResult(out_dir=out_dir, rows=rows, results_csv=results_csv,
                            report_md=report_md, config_json=config_json,
                            histories_json=histories_json, plots=plot_paths,
                            skipped=data.skipped, predictions_csv=predictions_csv,
                            unfinished=len(pending))
