"""Runs a local pipeline: what `mer pipeline` (and `pipeline/local.py` as a script) calls.

`describe_data` checks and describes the dataset before TFX starts (and counts its
songs, which the run's `RunConfig.dataset_songs` carries to `create_pipeline`, so that
a run indexes the dataset twice: here and in the AudioExampleGen); `run_pipeline`
builds the pipeline of a `RunConfig` and runs it with LocalDagRunner, printing each
component's start and end (`pipeline.run_report.ComponentProgress`), and returns the
run's `PipelineReport`. It holds the output folder's lock while it runs and first
cleans what a killed run left there (`pipeline.recovery`).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterator, NamedTuple

from mer_tfx import console, faults, run_lock
from pipeline.layout import Layout
from pipeline.run_config import RunConfig
from pipeline.run_report import ComponentProgress, PipelineReport, summarise


class DataSummary(NamedTuple):
    """What `describe_data` found.

    Attributes:
        line: one line on the dataset: its layout, songs per quadrant and skipped entries.
        songs: how many songs it lists (`RunConfig.dataset_songs`).
    """

    line: str
    songs: int


def describe_data(data_root: Path) -> DataSummary:
    """Indexes the dataset and describes it: one line, and its number of songs.

    Raises:
        DatasetError: the folder or manifest has no layout mer-tfx reads (before
            TFX starts, so the error is the dataset's, not a component's).
    """
    from mer_tfx.datasets import read_dataset

    index = read_dataset(data_root)
    counts = ", ".join(f"{q} {n}" for q, n in index.quadrant_counts().items())
    skipped = f", {len(index.skipped)} entries without audio or label" if index.skipped else ""
    songs = len(index.records)
    return DataSummary(
        f"{data_root} ({index.layout} layout: {songs} songs, {counts}{skipped})", songs
    )


def run_pipeline(config: RunConfig, *, verbose: bool = False) -> PipelineReport:
    """Builds the pipeline of `config` (a local one: it has a `layout`) and runs it with
    LocalDagRunner; returns what it produced.

    It holds the output folder's lock (`output_lock`) while it runs, and first cleans what
    a killed run left there (`pipeline.recovery`), saying so in one line.

    Raises:
        OutputBusyError: another run holds the output folder.
    """
    with output_lock(config.layout):
        return _run_locked(config, verbose=verbose)


def output_lock(layout: Layout):
    """The lock of `mer pipeline` on `layout`'s output folder (the one `mer pipeline`
    takes before it opens its log)."""
    return run_lock.hold_folder(layout.output, command="pipeline")


def _run_locked(config: RunConfig, *, verbose: bool) -> PipelineReport:
    from tfx import v1 as tfx

    from pipeline.factory import create_pipeline
    from pipeline.recovery import clean_killed_runs

    layout = config.layout
    cleaned = clean_killed_runs(layout).line()
    if cleaned:
        console.say(cleaned)
    layout.pipeline_root.mkdir(parents=True, exist_ok=True)
    pipe = create_pipeline(config)
    if verbose or console.log_path() is not None:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.INFO)  # TFX's own account, for the log
    start = time.monotonic()
    with (ComponentProgress(layout.metadata_path, layout.pipeline_name) as progress,
          component_fault_points()):
        tfx.orchestration.LocalDagRunner().run(pipe)
    return summarise(layout, progress, time.monotonic() - start)


@contextlib.contextmanager
def component_fault_points() -> Iterator[None]:
    """While the local runner runs, `mer_tfx.faults.fault_point("pipeline.before.<node>")`
    and `("pipeline.after.<node>")` around each component it launches (a node reused from
    the cache included). Only when `MER_FAULT_AT` is set, for the fault-injection tests;
    otherwise nothing is changed."""
    if not os.environ.get(faults.ENV_FAULT_AT):
        yield
        return
    from tfx.orchestration.portable import launcher

    original = launcher.Launcher.launch

    def launch(self, *args, **kwargs):
        node = self._pipeline_node.node_info.id
        faults.fault_point(f"pipeline.before.{node}")
        result = original(self, *args, **kwargs)
        faults.fault_point(f"pipeline.after.{node}")
        return result

    launcher.Launcher.launch = launch
    try:
        yield
    finally:
        launcher.Launcher.launch = original
