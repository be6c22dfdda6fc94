"""Compiles the mer-tfx pipeline for Kubeflow Pipelines / Vertex AI Pipelines (offline).

The same `create_pipeline` as `pipeline/local.py`, compiled by TFX's
`KubeflowV2DagRunner` into a KFP v2 pipeline-job spec (JSON). Nothing is
contacted: submitting the file is a separate step (docs/scale.md).

    python pipeline/kubeflow_v2_runner.py \\
        --image us-docker.pkg.dev/PROJECT/REPO/mer-tfx:0.1.0 \\
        --pipeline-root gs://BUCKET/tfx \\
        --data-root /gcs/BUCKET/4q \\
        --serving-dir gs://BUCKET/serving_model/mer \\
        --preset 4q-5s --output mer-tfx.json
    # or, with the same values in MER_IMAGE, MER_PIPELINE_ROOT, MER_DATA,
    # MER_SERVING_DIR (and MER_PRESET, MER_KFP_OUTPUT):
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
import posixpath
import re
import sys
from typing import Any, Dict, List, Sequence

from pipeline import configs
from pipeline.factory import create_pipeline

# Environment variables read when an option is not given (the `tfx` CLI passes none).
ENV_IMAGE = "MER_IMAGE"
ENV_PIPELINE_ROOT = "MER_PIPELINE_ROOT"
ENV_SERVING_DIR = "MER_SERVING_DIR"
ENV_OUTPUT = "MER_KFP_OUTPUT"
DEFAULT_OUTPUT = "mer-tfx-kubeflow-v2.json"
# In the container, ingest uses the cores of the machine that runs each component.
CONTAINER_INGEST_WORKERS = 0

_URI = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")


def _check_location(name: str, value: str, *, container_path_ok: bool) -> str:
    """A storage URI (gs://...), or an absolute path inside the container when allowed."""
    if _URI.match(value or ""):
        return value
    if container_path_ok and value.startswith("/") and posixpath.isabs(value):
        return value
    wanted = "a storage URI (gs://...) or an absolute path inside the image"
    if not container_path_ok:
        wanted = "a storage URI (gs://..., s3://...), which every component can reach"
    raise SystemExit(f"{name} must be {wanted}. Received: {value!r}")


def compile_pipeline(
    *,
    image: str,
    pipeline_root: str,
    data_root: str,
    serving_model_dir: str,
    output_path: str,
    preset: str = configs.DEFAULT_PRESET,
    pipeline_name: str = configs.PIPELINE_NAME,
    enable_tuning: bool = False,
    beam_pipeline_args: Sequence[str] = (),
) -> Dict[str, Any]:
    """Writes the KFP v2 pipeline-job spec of the mer-tfx pipeline to `output_path`.

    Args:
        image: the container image every component runs in (built from the Dockerfile).
        pipeline_root: storage URI of the artifacts (gs://...).
        data_root: the dataset as the containers see it (URI or absolute path).
        serving_model_dir: storage URI the Pusher copies blessed models under.
        output_path: the JSON file to write (a .yaml/.yml name writes YAML).
        preset: preset name. Defaults to "small".
        pipeline_name: pipeline name. Defaults to "mer-tfx".
        enable_tuning: add the Tuner. Defaults to False.
        beam_pipeline_args: Beam args of the Beam components (e.g. the Dataflow set of
            `pipeline.beam_args.CLUSTER_RUNNER_ARGS`).

    Returns:
        The pipeline job as a dict (what the file holds).
    """
    from tfx import v1 as tfx

    pipe = create_pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        data_root=data_root,
        serving_model_dir=serving_model_dir,
        # Vertex AI and KFP keep lineage in their own metadata store: unused there.
        metadata_path="",
        preset=preset,
        enable_tuning=enable_tuning,
        beam_pipeline_args=list(beam_pipeline_args),
        ingest_workers=CONTAINER_INGEST_WORKERS,
    )
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(output_path) or ".",
        output_filename=os.path.basename(output_path),
    )
    return runner.run(pipe)


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--image",
        default=os.environ.get(ENV_IMAGE),
        help=f"container image of every component (env {ENV_IMAGE})",
    )
    parser.add_argument(
        "--pipeline-root",
        default=os.environ.get(ENV_PIPELINE_ROOT),
        help=f"artifact storage URI, gs://... (env {ENV_PIPELINE_ROOT})",
    )
    parser.add_argument(
        "--data-root",
        default=os.environ.get(configs.ENV_DATA),
        help=f"dataset as the containers see it (env {configs.ENV_DATA})",
    )
    parser.add_argument(
        "--serving-dir",
        default=os.environ.get(ENV_SERVING_DIR),
        help=f"where blessed models are pushed, gs://... (env {ENV_SERVING_DIR})",
    )
    parser.add_argument(
        "--preset", default=os.environ.get(configs.ENV_PRESET, configs.DEFAULT_PRESET)
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
    missing = [
        name
        for name in ("image", "pipeline_root", "data_root", "serving_dir")
        if not getattr(args, name)
    ]
    if missing:
        parser.error(
            "missing "
            + ", ".join("--" + name.replace("_", "-") for name in missing)
            + " (or their environment variables)"
        )
    compile_pipeline(
        image=args.image,
        pipeline_root=_check_location(
            "--pipeline-root", args.pipeline_root, container_path_ok=False
        ),
        data_root=_check_location("--data-root", args.data_root, container_path_ok=True),
        serving_model_dir=_check_location(
            "--serving-dir", args.serving_dir, container_path_ok=False
        ),
        output_path=args.output,
        preset=args.preset,
        pipeline_name=args.pipeline_name,
        enable_tuning=args.tune,
        beam_pipeline_args=args.beam_arg,
    )
    print(f"Wrote the KFP v2 pipeline spec of {args.pipeline_name!r} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
