"""Unit tests of `mer pipeline`: its path from the flags to the local runner (no component runs)."""

from __future__ import annotations

import argparse
import contextlib

import pytest

from components.conftest import make_4q
from pipeline import beam_args


def test_mer_pipeline_indexes_the_dataset_once_before_tfx_runs(tmp_path, monkeypatch):
    """describe_data's count reaches create_pipeline: the factory does not index again.

    The AudioExampleGen's `Do` reads the index once more (its
    `test_do_reads_the_dataset_index_once`): two reads a run in all, where there were three.
    """
    pytest.importorskip("components.audio_example_gen.component")
    from tfx import v1 as tfx

    from mer_tfx import datasets
    from mer_tfx.commands import pipeline as command
    from pipeline import runner

    data = make_4q(tmp_path / "data", per_quadrant=1, corrupt=False)
    reads, ran = [], []
    read_dataset = datasets.read_dataset

    def counted(*args, **kwargs):
        reads.append(args)
        return read_dataset(*args, **kwargs)

    class Runner:
        """LocalDagRunner that notes the pipeline and the reads so far, and runs nothing."""

        def run(self, pipe):
            ran.append((pipe, len(reads)))

    monkeypatch.setattr(datasets, "read_dataset", counted)
    monkeypatch.setattr(tfx.orchestration, "LocalDagRunner", Runner)
    monkeypatch.setattr(runner, "ComponentProgress", lambda *args: contextlib.nullcontext())
    monkeypatch.setattr(runner, "summarise", lambda *args: None)
    monkeypatch.setattr(command, "print_report", lambda *args, **kwargs: None)
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--data", str(data["root"]), "--output", str(tmp_path / "out")])

    assert command.run(args) == 0
    ((pipe, reads_before_tfx),) = ran
    assert reads_before_tfx == 1  # describe_data's; create_pipeline used its count
    # The count did reach the factory: 4 songs get one ingest worker.
    (example_gen,) = [c for c in pipe.components if c.id == "AudioExampleGen"]
    assert list(example_gen.executor_spec.beam_pipeline_args) == beam_args.ingest_beam_args(
        [], songs=len(data["songs"])
    )
