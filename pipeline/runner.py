"""Runs a local pipeline: what `mer pipeline` (and `pipeline/local.py` as a script) calls.

`describe_data` checks and describes the dataset before TFX starts; `run_pipeline`
builds the pipeline of a `RunConfig` and runs it with LocalDagRunner, printing each
component's start and end (`pipeline.run_report.ComponentProgress`), and returns the
run's `PipelineReport`.
"""

from __future__ import annotations

import time
from pathlib import Path

from mer_tfx import console
from pipeline.run_config import RunConfig
from pipeline.run_report import ComponentProgress, PipelineReport, summarise


def describe_data(data_root: Path) -> str:
    """One line on the dataset found: its layout, songs per quadrant and skipped entries.

    Raises:
        DatasetError: the folder or manifest has no layout mer-tfx reads (before
            TFX starts, so the error is the dataset's, not a component's).
    """
    from mer_tfx.datasets import read_dataset

    index = read_dataset(data_root)
    counts = ", ".join(f"{q} {n}" for q, n in index.quadrant_counts().items())
    skipped = f", {len(index.skipped)} entries without audio or label" if index.skipped else ""
    return f"{data_root} ({index.layout} layout: {len(index.records)} songs, {counts}{skipped})"


def run_pipeline(config: RunConfig, *, verbose: bool = False) -> PipelineReport:
    """Builds the pipeline of `config` (a local one: it has a `layout`) and runs it with
    LocalDagRunner; returns what it produced."""
    from tfx import v1 as tfx

    from pipeline.factory import create_pipeline

    layout = config.layout
    layout.pipeline_root.mkdir(parents=True, exist_ok=True)
    pipe = create_pipeline(config)
    if verbose or console.log_path() is not None:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.INFO)  # TFX's own account, for the log
    start = time.monotonic()
    with ComponentProgress(layout.metadata_path, layout.pipeline_name) as progress:
        tfx.orchestration.LocalDagRunner().run(pipe)
    return summarise(layout, progress, time.monotonic() - start)
