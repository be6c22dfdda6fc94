"""One pipeline run's configuration, resolved once: `RunConfig` and `run_config_from`.

Every way of starting the pipeline builds its configuration with `run_config_from`:
`mer pipeline` (its flags), `pipeline/local.py` (what `tfx pipeline create --engine
local` reads: no flags) and `pipeline/kubeflow_v2_runner.py` (its flags). Each reads
the same environment variables for what its flags leave out:

    MER_PRESET         preset name or JSON           (default: `presets.DEFAULT_NAME`)
    MER_DATA           the dataset                   (local default: the synthetic 4Q set)
    MER_OUTPUT         the local output folder       (default: ./outputs)
    MER_PIPELINE_ROOT  artifact storage URI          (cluster runs only)
    MER_SERVING_DIR    where blessed models go, URI  (cluster runs only)

The preset is parsed here and nowhere else in a run: `create_pipeline(config)` hands
the `Preset` to the AudioExampleGen, which records it with its examples; the
LogMelTransform and the Trainer read it from their input artifact
(`components.artifact_files`). Nothing here imports TensorFlow or TFX.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import posixpath
import re
from typing import Any, Mapping, Tuple

from mer_tfx import presets
from mer_tfx.datasets import check_unlabeled_data
from mer_tfx.errors import ParameterError
from mer_tfx.presets import Preset
from pipeline import configs
from pipeline.layout import Layout, prepare_data

ENV_PIPELINE_ROOT = "MER_PIPELINE_ROOT"
ENV_SERVING_DIR = "MER_SERVING_DIR"
# On a cluster, ingest uses the cores of the machine that runs each component.
CLUSTER_INGEST_WORKERS = 0
DEFAULT_CLIPS_PER_QUADRANT = 8  # the synthetic dataset's size when no data is given

_URI = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything one pipeline run is built from (`pipeline.factory.create_pipeline`).

    Attributes:
        preset: the resolved preset the AudioExampleGen records with its examples.
        data_root: the dataset: a 4Q or PMEmo folder or a CSV manifest (a path or URI).
        pipeline_root: folder or URI of the components' artifacts.
        serving_model_dir: TF Serving base path the Pusher copies blessed models under.
        metadata_path: SQLite file of the MLMD store ("" on a cluster, which keeps its own).
        pipeline_name: TFX pipeline name (MLMD context).
        layout: the local output folder's paths (None on a cluster).
        overrides: preset fields the Trainer changes ({"ae_max_epochs": 1, ...}): they
            apply to training only, not to the examples (whose cache they leave valid).
        enable_tuning: run the Tuner before the Trainer.
        tuner_trials: Tuner trials.
        accuracy_threshold: lowest binary accuracy (valence and arousal) that blesses.
        f1_threshold: lowest F1 score (valence and arousal) that blesses.
        seed: training seed (and the synthetic dataset's).
        beam_pipeline_args: Beam options of the Beam components (`pipeline.beam_args`).
        ingest_workers: worker threads of the ExampleGen and the transform: None = this
            machine's cores, 0 = the cores of the machine that runs them, 1 = one.
        enable_cache: reuse the outputs of components whose inputs did not change.
        unlabeled_data: a folder of audio without labels that stage 1 trains on too.
        example_gen_kwargs: extra keyword arguments of AudioExampleGen (`layout`, ...).
        dataset_songs: how many songs the local dataset lists, when the caller has
            indexed it already (`mer pipeline`, with `pipeline.runner.describe_data`);
            None: `create_pipeline` indexes it itself when it needs the number.
    """

    preset: Preset
    data_root: str
    pipeline_root: str
    serving_model_dir: str
    metadata_path: str
    pipeline_name: str = configs.PIPELINE_NAME
    layout: Layout | None = None
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    enable_tuning: bool = False
    tuner_trials: int = configs.TUNER_TRIALS
    accuracy_threshold: float = configs.ACCURACY_THRESHOLD
    f1_threshold: float = configs.F1_THRESHOLD
    seed: int = 0
    beam_pipeline_args: Tuple[str, ...] = ()
    ingest_workers: int | None = None
    enable_cache: bool = True
    unlabeled_data: str | None = None
    example_gen_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    dataset_songs: int | None = None

    def replace(self, **changes) -> RunConfig:
        """A copy with some fields changed (tests, benchmarks, `dataset_songs`)."""
        return dataclasses.replace(self, **changes)


def check_location(name: str, value: str, *, container_path_ok: bool) -> str:
    """A storage URI (gs://...), or an absolute path inside the container when allowed.

    Raises:
        ParameterError: anything else (a cluster's components cannot reach it).
    """
    if _URI.match(value or ""):
        return value
    if container_path_ok and value.startswith("/") and posixpath.isabs(value):
        return value
    wanted = "a storage URI (gs://...) or an absolute path inside the image"
    if not container_path_ok:
        wanted = "a storage URI (gs://..., s3://...), which every component can reach"
    raise ParameterError(f"{name} must be {wanted}. Received: {value!r}")


def _overrides(values: Mapping[str, Any]) -> dict:
    """The preset fields the flags change, under the preset's own field names."""
    overrides = {}
    if values.get("max_ae_epochs") is not None:
        overrides["ae_max_epochs"] = int(values["max_ae_epochs"])
    if values.get("max_head_epochs") is not None:
        overrides["head_max_epochs"] = int(values["max_head_epochs"])
    if values.get("normalize_embeddings") is not None:
        overrides["normalize_embeddings"] = bool(values["normalize_embeddings"])
        overrides["normalize_min_songs"] = 0  # the flag decides, whatever the songs' count
    if values.get("head_seeds") is not None:
        if int(values["head_seeds"]) < 1:
            raise ParameterError(
                f"--head-seeds must be at least 1. Received: {values['head_seeds']}")
        overrides["head_seeds"] = int(values["head_seeds"])
    return overrides


def run_config_from(
    args: argparse.Namespace | Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    cluster: bool = False,
) -> RunConfig:
    """The run's configuration from command-line values and the environment, resolved once.

    Args:
        args: the parsed flags (`mer pipeline`'s or the Kubeflow runner's), or a dict of
            the same names (`preset`, `data`, `output`, `pipeline_name`, `model_name`,
            `tune`, `trials`, `accuracy_threshold`, `f1_threshold`, `max_ae_epochs`,
            `max_head_epochs`, `normalize_embeddings`, `head_seeds`, `seed`,
            `unlabeled_data`, `clips_per_quadrant`, `no_cache`, `beam_arg`, and for a
            cluster `pipeline_root`, `serving_dir`). None or a missing name: the
            environment variable (module docstring), else the default.
        environ: the environment variables to read. Defaults to `os.environ`.
        cluster: a Kubeflow / Vertex AI run: storage URIs instead of a local output
            folder, no MLMD file, nothing checked or written on this machine.

    Returns:
        The `RunConfig`. On this machine (not `cluster`), the synthetic 4Q dataset is
        written to `<output>/synthetic_data` first when no dataset is given.

    Raises:
        ParameterError: an unknown preset or malformed preset JSON, a bad number, a
            missing or unreachable cluster location.
        DatasetError: a local dataset path that does not exist.
    """
    values = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})

    def given(name: str, env: str | None = None):
        value = values.get(name)
        if value is None and env is not None:
            value = environ.get(env) or None
        return value

    # The one place a run's preset name or JSON is parsed (a flag may hold a Preset already).
    preset = presets.resolve(given("preset", configs.ENV_PRESET) or presets.DEFAULT_NAME)
    seed = int(given("seed") or 0)
    common = dict(
        preset=preset,
        pipeline_name=given("pipeline_name") or configs.PIPELINE_NAME,
        overrides=_overrides(values),
        enable_tuning=bool(given("tune")),
        tuner_trials=int(_default(given("trials"), configs.TUNER_TRIALS)),
        accuracy_threshold=float(_default(given("accuracy_threshold"),
                                          configs.ACCURACY_THRESHOLD)),
        f1_threshold=float(_default(given("f1_threshold"), configs.F1_THRESHOLD)),
        seed=seed,
        beam_pipeline_args=tuple(given("beam_arg") or ()),
        enable_cache=not given("no_cache"),
    )
    if cluster:
        locations = {"--pipeline-root": given("pipeline_root", ENV_PIPELINE_ROOT),
                     "--data-root": given("data", configs.ENV_DATA),
                     "--serving-dir": given("serving_dir", ENV_SERVING_DIR)}
        missing = [name for name, value in locations.items() if not value]
        if missing:
            raise ParameterError(f"missing {', '.join(missing)} (or their environment "
                                 f"variables {configs.ENV_DATA}, {ENV_PIPELINE_ROOT}, "
                                 f"{ENV_SERVING_DIR})")
        return RunConfig(
            data_root=check_location("--data-root", locations["--data-root"],
                                     container_path_ok=True),
            pipeline_root=check_location("--pipeline-root", locations["--pipeline-root"],
                                         container_path_ok=False),
            serving_model_dir=check_location("--serving-dir", locations["--serving-dir"],
                                             container_path_ok=False),
            # Vertex AI and KFP keep lineage in their own metadata store.
            metadata_path="",
            ingest_workers=CLUSTER_INGEST_WORKERS,
            **common,
        )
    clips = int(_default(given("clips_per_quadrant"), DEFAULT_CLIPS_PER_QUADRANT))
    if clips < 1:
        raise ParameterError(f"--clips-per-quadrant must be at least 1. Received: {clips}")
    layout = Layout.at(given("output", configs.ENV_OUTPUT) or configs.DEFAULT_OUTPUT,
                       pipeline_name=common["pipeline_name"],
                       model_name=given("model_name") or configs.MODEL_NAME)
    data_root = prepare_data(given("data", configs.ENV_DATA), layout=layout,
                             clips_per_quadrant=clips, seed=seed)
    unlabeled = check_unlabeled_data(given("unlabeled_data"), data_root=data_root)
    return RunConfig(
        data_root=str(data_root),
        pipeline_root=str(layout.pipeline_root),
        serving_model_dir=str(layout.serving_base),
        metadata_path=str(layout.metadata_path),
        layout=layout,
        unlabeled_data=None if unlabeled is None else str(unlabeled),
        example_gen_kwargs=dict(given("example_gen_kwargs") or {}),
        **common,
    )


def _default(value, default):
    return default if value is None else value
