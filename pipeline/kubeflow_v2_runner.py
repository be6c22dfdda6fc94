"""Compiles the mer-tfx pipeline for Kubeflow Pipelines / Vertex AI Pipelines (offline).

The same `create_pipeline` as `pipeline/local.py`, compiled by TFX's
`KubeflowV2DagRunner` into a KFP v2 pipeline-job spec (JSON). Nothing is
contacted: submitting the file is a separate step (docs/scale.md).

    python pipeline/kubeflow_v2_runner.py \\
        --image us-docker.pkg.dev/PROJECT/REPO/mer-tfx:0.2.0 \\
        --pipeline-root gs://BUCKET/tfx \\
        --data-root /gcs/BUCKET/4q \\
        --serving-dir gs://BUCKET/serving_model/mer \\
        --preset 4q-5s --output mer-tfx.json
    # or, with the same values in MER_IMAGE, MER_PIPELINE_ROOT, MER_DATA,
    # MER_SERVING_DIR (and MER_PRESET, MER_KFP_OUTPUT), read as `mer pipeline` and
    # pipeline/local.py read them (`pipeline.run_config.run_config_from`):
    tfx pipeline compile --engine vertex --pipeline_path pipeline/kubeflow_v2_runner.py

Every component runs in `--image` (the repository's Dockerfile): the spec names
code by module path only (`pipeline.trainer_module.run_fn`, the components'
executors), and holds no path of the machine that compiled it. The pipeline root
and the serving folder are storage URIs (gs://...); the data root is a URI or an
absolute path inside the container (Vertex AI mounts gs://BUCKET at /gcs/BUCKET).

Run as a script, Python puts this folder (pipeline/) first on sys.path; no module
here is named like a package it imports, so those resolve to the installed packages.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, List

from mer_tfx import presets
from mer_tfx.errors import ParameterError
from pipeline import configs
from pipeline.factory import create_pipeline
from pipeline.run_config import (
    ENV_PIPELINE_ROOT,
    ENV_SERVING_DIR,
    RunConfig,
    run_config_from,
)

# Environment variables of the compilation (the run's own are `pipeline.run_config`'s).
ENV_IMAGE = "MER_IMAGE"
ENV_OUTPUT = "MER_KFP_OUTPUT"
DEFAULT_OUTPUT = "mer-tfx-kubeflow-v2.json"


def compile_pipeline(config: RunConfig, *, image: str, output_path: str) -> Dict[str, Any]:
    """Writes the KFP v2 pipeline-job spec of the mer-tfx pipeline to `output_path`.

    Args:
        config: the run's configuration, for a cluster (`run_config_from(..., cluster=True)`:
            storage URIs, no MLMD file, ingest on the cores of each component's machine).
        image: the container image every component runs in (built from the Dockerfile).
        output_path: the JSON file to write (a .yaml/.yml name writes YAML).

    Returns:
        The pipeline job as a dict (what the file holds).
    """
    from tfx import v1 as tfx

    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(output_path) or ".",
        output_filename=os.path.basename(output_path),
    )
    return runner.run(create_pipeline(config))


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--image",
        default=os.environ.get(ENV_IMAGE),
        help=f"container image of every component (env {ENV_IMAGE})",
    )
    parser.add_argument(
        "--pipeline-root", help=f"artifact storage URI, gs://... (env {ENV_PIPELINE_ROOT})"
    )
    parser.add_argument(
        "--data-root", dest="data",
        help=f"dataset as the containers see it (env {configs.ENV_DATA})",
    )
    parser.add_argument(
        "--serving-dir", help=f"where blessed models are pushed, gs://... (env {ENV_SERVING_DIR})"
    )
    parser.add_argument(
        "--preset",
        help=f"preset name or JSON (env {configs.ENV_PRESET}, else {presets.DEFAULT_NAME})",
    )
    parser.add_argument("--pipeline-name", default=configs.PIPELINE_NAME)
    parser.add_argument("--tune", action="store_true", help="add the Tuner")
    parser.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="Beam argument of the Beam components, repeatable",
    )
    parser.add_argument(
        "--output",
        default=os.environ.get(ENV_OUTPUT, DEFAULT_OUTPUT),
        help=f"the spec file to write (env {ENV_OUTPUT})",
    )
    args = parser.parse_args(argv)
    if not args.image:
        parser.error(f"missing --image (or its environment variable {ENV_IMAGE})")
    try:
        config = run_config_from(args, cluster=True)
    except ParameterError as error:
        raise SystemExit(str(error)) from None
    compile_pipeline(config, image=args.image, output_path=args.output)
    print(f"Wrote the KFP v2 pipeline spec of {config.pipeline_name!r} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
