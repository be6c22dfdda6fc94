"""Beam executors that skip TFX's dependency packaging when Beam runs on this machine.

TFX's `BaseBeamExecutor.__init__`, whenever a component has Beam pipeline args,
calls `dependency_utils.make_beam_dependency_flags`: unless the args name
`--extra_packages`, `--setup_file`, a requirements file or a container image, it
copies the whole installed `tfx` package to a temporary folder and runs `setup.py
sdist` in a subprocess, so that remote workers can install TFX. Beam's
DirectRunner runs its workers here, from this environment, and never installs that
package. The pipeline gives the ExampleGen and the LogMelTransform local parallel
args by default (`pipeline.beam_args`), so each of the two paid for it on every
run: 3.9 s of a 7.9 s component on 4 clips (cProfile of
`benchmarks/ingest_benchmark.py`'s pipeline, 2-core AMD EPYC), the whole of the
slowdown of the ingest benchmark against the tree before the parallel default.

`LocalBeamExecutor` keeps TFX's behaviour for every other runner (Dataflow,
Flink, Spark: the packaging is what they need) and for the DirectRunner only
leaves it out.
"""

from __future__ import annotations

import copy
from typing import Optional, Sequence

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from tfx.dsl.components.base import base_beam_executor

#: Runner names that run Beam's workers on this machine, from this environment.
DIRECT_RUNNERS = (None, "DirectRunner", "direct", "BundleBasedDirectRunner", "SwitchingDirectRunner")


def runs_locally(beam_pipeline_args: Sequence[str]) -> bool:
    """Whether these Beam args run the DirectRunner (the default when no --runner is given).

    >>> runs_locally(["--direct_num_workers=2"]), runs_locally(["--runner=DataflowRunner"])
    (True, False)
    """
    runner = PipelineOptions(list(beam_pipeline_args)).view_as(StandardOptions).runner
    return runner in DIRECT_RUNNERS


class LocalBeamExecutor(base_beam_executor.BaseBeamExecutor):
    """A `BaseBeamExecutor` that does not package TFX for the DirectRunner (module docstring).

    Put it before the TFX base class: `class Executor(LocalBeamExecutor, BaseExampleGenExecutor)`.
    """

    def __init__(self, context: Optional[base_beam_executor.BaseBeamExecutor.Context] = None):
        args = list(getattr(context, "beam_pipeline_args", None) or [])
        if not (args and runs_locally(args)):
            super().__init__(context)
            return
        # The base class packages TFX only when it is given args: give it none, then the
        # args themselves (what `_make_beam_pipeline` reads), as the base class stores them.
        context = copy.copy(context)
        context.beam_pipeline_args = []
        super().__init__(context)
        self._beam_pipeline_args = args
