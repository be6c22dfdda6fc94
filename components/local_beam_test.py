"""Tests of `components.local_beam`: TFX packages itself for remote runners only."""

import pytest
from tfx.dsl.components.base import base_beam_executor
from tfx.utils import dependency_utils

from components import local_beam
from components.audio_example_gen.executor import Executor as ExampleGenExecutor
from components.log_mel_transform.executor import Executor as LogMelExecutor

LOCAL = ["--direct_running_mode=multi_threading", "--direct_num_workers=2"]
DATAFLOW = ["--runner=DataflowRunner", "--project=p", "--region=r"]


@pytest.fixture
def packaged(monkeypatch):
    """Records TFX's packaging calls instead of building an sdist (seconds each)."""
    calls = []

    def fake_build():
        calls.append(True)
        return "/tmp/tfx_ephemeral.tar.gz"

    monkeypatch.setattr(dependency_utils, "build_ephemeral_package", fake_build)
    return calls


@pytest.mark.parametrize("executor_class", [ExampleGenExecutor, LogMelExecutor])
def test_the_direct_runner_keeps_its_args_and_skips_packaging(executor_class, packaged):
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=list(LOCAL))
    executor = executor_class(context)
    assert packaged == []
    assert executor._beam_pipeline_args == LOCAL  # what `_make_beam_pipeline` runs with
    assert context.beam_pipeline_args == LOCAL  # the caller's context is left as it was
    options = executor._make_beam_pipeline().options.get_all_options()
    assert (options["direct_running_mode"], options["direct_num_workers"]) == ("multi_threading", 2)


@pytest.mark.parametrize("executor_class", [ExampleGenExecutor, LogMelExecutor])
def test_a_remote_runner_still_gets_tfx_packaged(executor_class, packaged):
    executor = executor_class(base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=DATAFLOW))
    assert packaged == [True]
    assert "--extra_package=/tmp/tfx_ephemeral.tar.gz" in executor._beam_pipeline_args


def test_no_args_and_no_context_work_as_in_tfx(packaged):
    assert LogMelExecutor()._beam_pipeline_args == []
    assert LogMelExecutor(base_beam_executor.BaseBeamExecutor.Context())._beam_pipeline_args == []
    assert packaged == []


@pytest.mark.parametrize(
    "args, local",
    [([], True), (LOCAL, True), (["--runner=DirectRunner"], True), (["--runner", "direct"], True),
     (DATAFLOW, False), (["--runner=FlinkRunner"], False), (["--runner=SparkRunner"], False)],
)
def test_runs_locally(args, local):
    assert local_beam.runs_locally(args) is local
