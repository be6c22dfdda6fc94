"""Runs the mer-tfx pipeline with LocalDagRunner; also the file `tfx pipeline create` reads.

    tfx pipeline create --engine local --pipeline_path pipeline/local.py
    tfx run create --engine local --pipeline_name mer-tfx
    # or directly, with any of `mer pipeline`'s flags:
    python pipeline/local.py [--max-ae-epochs 1 ...]

Run as a script (directly, or by `tfx run create`, which starts `python pipeline/local.py`),
it is `mer pipeline`: the same run, the same console lines (each component's start and
end, the evaluation summary, blessed or not, the pushed model) and the libraries' output
in `<output>/mer-pipeline.log`, named on the last line. Imported by the tfx CLI's own
process (`tfx pipeline create`, `tfx pipeline compile`), which replaces
LocalDagRunner.run to read the pipeline's name and root without running it, it builds
the pipeline with what the libraries print going to `<output>/mer-pipeline-compile.log`,
and prints one line; an error is one line naming that log, and a non-zero exit.

The run's configuration is `pipeline.run_config.run_config_from()`, as `mer pipeline`
builds it; the `tfx` CLI passes no flags, so it comes from the environment:
- MER_DATA: the dataset (4Q / PMEmo folder or CSV manifest). Default: the
  synthetic 4Q dataset in <output>/synthetic_data (written on first use).
- MER_OUTPUT: the output folder. Default: ./outputs (of the current folder). Artifacts go to
  <output>/tfx/mer-tfx/, MLMD to <output>/tfx/metadata.sqlite, blessed models to
  <output>/serving_model/mer/<version>/ (see pipeline/layout.py).
- MER_PRESET: preset name or JSON. Default: `mer_tfx.presets.DEFAULT_NAME`.
- MER_PIPELINE_ARGS: `mer pipeline` flags, as one shell-quoted string, that the `tfx` CLI
  cannot pass (`--pipeline-name demo --max-ae-epochs 1 --accuracy-threshold 0`). Flags
  on the command line come after them, so they win.

Run as a script, Python puts this folder (pipeline/) first on sys.path; no module
here is named like a package it imports (`pipeline`, `components`, `mer_tfx`), so
those resolve to the installed packages.
"""

from __future__ import annotations

import os
import shlex
import sys
import traceback
from pathlib import Path
from typing import List

ENV_PIPELINE_ARGS = "MER_PIPELINE_ARGS"
COMPILE_LOG = "mer-pipeline-compile.log"


def pipeline_flags(argv: List[str]) -> List[str]:
    """`mer pipeline`'s flags: those of $MER_PIPELINE_ARGS, then `argv`'s."""
    return shlex.split(os.environ.get(ENV_PIPELINE_ARGS, "")) + list(argv)


def run_as_script(argv: List[str]) -> int:
    """`mer pipeline` with `argv`'s flags: the run, its console lines and its log."""
    from mer_tfx import cli

    return cli.main(["pipeline", *pipeline_flags(argv)])


def compile_for_tfx_cli() -> None:
    """Builds the pipeline and hands it to LocalDagRunner.run, which the tfx CLI replaced
    with a function that records its name and root; the libraries' output goes to a log.

    Raises:
        SystemExit: 1 after one console line, when the configuration or the pipeline
            cannot be built (the traceback is in the log).
    """
    from mer_tfx import cli, console
    from mer_tfx.errors import MerTfxError

    args = cli.command_parser("pipeline").parse_args(pipeline_flags([]))
    output = Path(args.output).expanduser() if args.output else cli.default_output()
    log = output.absolute() / COMPILE_LOG
    # TensorFlow is loaded already (by the tfx CLI), so only its later lines reach the log.
    with console.libraries_to_log(log), console.ProjectWarnings("pipeline").attached():
        try:
            from tfx import v1 as tfx

            from pipeline.factory import create_pipeline
            from pipeline.run_config import run_config_from

            config = run_config_from(args)
            config.layout.pipeline_root.mkdir(parents=True, exist_ok=True)
            tfx.orchestration.LocalDagRunner().run(create_pipeline(config))
        except MerTfxError as error:
            traceback.print_exc()
            console.say(f"mer pipeline: error: {error}")
            console.say(f"mer pipeline: the traceback is in {log}")
            raise SystemExit(1) from None
        except Exception as error:
            traceback.print_exc()
            first = (str(error).strip().splitlines() or [""])[0]
            console.say(f"mer pipeline: failed: {type(error).__name__}: {first}")
            console.say(f"mer pipeline: the traceback is in {log}")
            raise SystemExit(1) from None
        console.say(f"mer pipeline: built pipeline {config.pipeline_name} (artifacts "
                    f"{config.pipeline_root}); what the libraries printed is in {log}")


def _run_as_script() -> bool:
    """Whether Python runs this file as its main program: `python pipeline/local.py`,
    also `tfx run create`'s subprocess. The tfx CLI's `pipeline create` loads it under
    the name `__main__` in its own process instead, without making it the main module."""
    main_module = sys.modules.get("__main__")
    return main_module is not None and vars(main_module) is globals()


if __name__ == "__main__":
    if _run_as_script():
        sys.exit(run_as_script(sys.argv[1:]))
    compile_for_tfx_cli()
