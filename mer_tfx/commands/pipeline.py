"""`mer pipeline`: runs the TFX pipeline end to end with LocalDagRunner.

With no `--data`, it first writes the deterministic synthetic 4Q dataset into the
output folder. It prints the data found, each component's start and end with its
wall time (read from MLMD: `pipeline.run_report.ComponentProgress`), the training's
progress bars, and at the end the Evaluator's metrics overall and per slice, the
gate's decision (with the thresholds a model failed), the pushed model's path and
the skipped files (`pipeline.run_report.report_lines`). The run itself is
`pipeline.runner.run_pipeline`; this module parses the flags into a `RunConfig` and
prints. What the libraries print goes to `<output>/mer-pipeline.log`
(`mer_tfx.cli`). A model that is not blessed is a normal outcome (exit code 0);
only a failure gives a non-zero exit code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mer_tfx import console, presets
from mer_tfx.commands import options
from pipeline import configs
from pipeline.run_config import DEFAULT_CLIPS_PER_QUADRANT, run_config_from
from pipeline.run_report import print_report
from pipeline.runner import describe_data, run_pipeline


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="dataset folder (4Q or PMEmo layout) or CSV manifest; "
                        "default: $MER_DATA, else the synthetic 4Q dataset written to the output folder")
    parser.add_argument("--output", metavar="DIR",
                        help="output folder (default: $MER_OUTPUT, else ./outputs)")
    parser.add_argument("--preset", type=options.preset,
                        help=f"preset name or JSON (default: ${configs.ENV_PRESET}, else "
                             f"{presets.DEFAULT_NAME})")
    parser.add_argument("--pipeline-name", default=configs.PIPELINE_NAME,
                        help=f"TFX pipeline name (default: {configs.PIPELINE_NAME})")
    parser.add_argument("--model-name", default=configs.MODEL_NAME,
                        help=f"TF Serving model name (default: {configs.MODEL_NAME})")
    parser.add_argument("--tune", action="store_true", help="run the Tuner before the Trainer")
    parser.add_argument("--trials", type=int, help=f"Tuner trials (default: {configs.TUNER_TRIALS})")
    parser.add_argument("--accuracy-threshold", type=float,
                        help="lowest accuracy (valence and arousal) that blesses "
                             f"(default: {configs.ACCURACY_THRESHOLD})")
    parser.add_argument("--f1-threshold", type=float,
                        help="lowest F1 score (valence and arousal) that blesses "
                             f"(default: {configs.F1_THRESHOLD})")
    options.add_old_names(parser, parser.add_argument(
        "--max-ae-epochs", type=int, metavar="N",
        help="cap on autoencoder epochs (default: the preset's)"), "--ae-epochs")
    options.add_old_names(parser, parser.add_argument(
        "--max-head-epochs", type=int, metavar="N",
        help="cap on head epochs (default: the preset's)"), "--head-epochs")
    parser.add_argument("--seed", type=int, default=0, help="training and synthetic-data seed")
    parser.add_argument("--unlabeled-data", metavar="DIR", default=None,
                        help="a folder of audio without labels that stage 1 (the autoencoder) "
                             "trains on as well; must not hold the dataset's audio")
    parser.add_argument("--normalize-embeddings", action=argparse.BooleanOptionalAction,
                        default=None,
                        help="standardise the heads' input embeddings, whatever the number of "
                             "training songs (default: the preset's: the -small presets do "
                             "when the heads are fitted on at least 100 songs, the paper's "
                             "never)")
    parser.add_argument("--head-seeds", type=int, default=None, metavar="N",
                        help="train N heads per target from consecutive seeds and serve "
                             "their averaged probabilities (default: the preset's)")
    parser.add_argument("--clips-per-quadrant", type=int, default=DEFAULT_CLIPS_PER_QUADRANT,
                        help="synthetic dataset size when no --data is given "
                             f"(default: {DEFAULT_CLIPS_PER_QUADRANT})")
    parser.add_argument("--no-cache", action="store_true", help="re-run every component")
    parser.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                        help="Beam pipeline argument, repeatable, e.g. "
                        "--beam-arg=--direct_running_mode=multi_processing")
    parser.add_argument("--verbose", action="store_true",
                        help="also show what TensorFlow, TFX and Beam print (always in the log "
                        "file <output>/mer-pipeline.log)")


def run(args: argparse.Namespace) -> int:
    config = run_config_from(args)
    layout = config.layout
    data = describe_data(Path(config.data_root))
    console.say(f"mer pipeline: data {data.line}")
    config = config.replace(dataset_songs=data.songs)  # the pipeline does not index it again
    console.say(f"mer pipeline: output {layout.output}, preset {config.preset.name}")
    report = run_pipeline(config, verbose=args.verbose)
    print_report(report, layout=layout)
    if console.log_path() is not None:
        console.say(f"mer pipeline: what the libraries printed is in {console.log_path()}")
    return 0
