"""Running the protocol's jobs (one preset x variant x fold each): here, or in worker processes.

Both runners yield `((preset, variant, split), rows, histories, seconds)` as each job
finishes, so `run_experiment` writes results after every fold either way.
"""

from __future__ import annotations

import os
import time
from typing import Dict

import numpy as np

from mer_tfx.experiment.features_cache import cache_name
from mer_tfx.experiment.fold_runner import FoldRunner


def free_models() -> None:
    """Drops the finished fold's Keras graphs so hundreds of folds don't pile up."""
    import keras

    keras.backend.clear_session()


def timed_job(runner: FoldRunner, preset, variant, split, log_mels):
    """One fold x variant: (rows, histories, wall seconds); frees its models afterwards."""
    job_start = time.perf_counter()
    new_rows, new_histories = runner.run(
        preset=preset, variant=variant, split=split, log_mels=log_mels)
    seconds = time.perf_counter() - job_start
    free_models()
    return new_rows, new_histories, seconds


def run_here(pending, *, runner: FoldRunner, caches, outer, rounds: int, folds: int):
    """Runs the jobs one after another in this process (`outer`: a tqdm bar over jobs, or None)."""
    for preset, variant, split in pending:
        if outer is not None:
            outer.set_description(f"{preset.name} {variant} round {split.round + 1}/{rounds} "
                                  f"fold {split.fold + 1}/{folds}")
        yield (preset, variant, split), *timed_job(
            runner, preset, variant, split, caches[cache_name(preset)].log_mels)


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
    _WORKER.update(runner=FoldRunner(**runner_kwargs, progress=False),
                   cache_paths=cache_paths, arrays={})


def _worker_job(preset, variant, split):
    arrays = _WORKER["arrays"]
    name = cache_name(preset)
    if name not in arrays:
        arrays[name] = np.load(_WORKER["cache_paths"][name], mmap_mode="r")
    return timed_job(_WORKER["runner"], preset, variant, split, arrays[name])


def run_in_workers(pending, *, workers: int, runner_kwargs: dict, cache_paths: Dict[str, str]):
    """Runs the jobs in `workers` processes, each with `cpu_count // workers` TensorFlow
    threads. The baselines (the longest jobs) are handed out first, so the workers
    finish close together."""
    import concurrent.futures
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // workers)
    # Stable: baselines first (also those on a share of the labels, "baseline labels=25%").
    order = sorted(pending, key=lambda job: not job[1].startswith("baseline"))
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
