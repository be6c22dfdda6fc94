"""`create_pipeline`: the mer-tfx TFX pipeline definition.

    AudioExampleGen -> LogMelTransform -> [Tuner] -> Trainer ─┐
                                   LatestBlessedModel resolver ┴> Evaluator (TFMA gate) -> Pusher

- AudioExampleGen reads a 4Q / PMEmo / CSV-manifest folder into one tf.Example per
  song (train/eval split by song id).
- LogMelTransform (Beam) adds the `log_mel` segments the model reads.
- StatisticsGen, CuratedSchemaGen and ExampleValidator (TFDV) check the audio-level
  features and labels against pipeline/schema/schema.pbtxt (`pipeline.data_validation`).
- Tuner (optional) searches the stage-2 head's learning rate, units and dropout.
- Trainer pretrains the convolutional autoencoder, trains the valence and the
  arousal heads on the frozen encoder and exports the serving SavedModel.
- Evaluator (TFMA, through the `serving_examples` signature) computes binary
  accuracy and F1 per target, overall and by genre, and blesses the model when
  every value threshold holds and nothing regressed against the latest blessed one.
- Pusher copies a blessed model to `<serving_model_dir>/<numeric version>/`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Union

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.trainer import Executor as TrainerExecutor
from pipeline import beam_args, configs, data_validation
from pipeline.run_config import RunConfig

_HERE = Path(__file__).resolve().parent
# The Trainer's and the Tuner's functions, named by module path: the package is
# installed, so TFX imports them and packages nothing (a `module_file` makes it
# build a wheel of this whole folder, tests included, with setuptools).
TRAINER_RUN_FN = "pipeline.trainer_module.run_fn"
TUNER_FN = "pipeline.tuner_module.tuner_fn"
# The sources they run, relative to the repository root (see `training_code_version`).
TRAINING_CODE = ("mer_tfx", "components/trainer", "pipeline/trainer_module.py",
                 "pipeline/tuner_module.py")


def training_code_version() -> str:
    """A hash of the training code's sources (`TRAINING_CODE`, tests left out).

    It goes into the Trainer's and the Tuner's `custom_config`, so that TFX's cache
    runs them again once their code changed: a function named by module path
    carries no hash of its code, unlike the wheel TFX builds from a `module_file`.
    """
    root = _HERE.parent
    digest = hashlib.sha256()
    for entry in TRAINING_CODE:
        path = root / entry
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            if not file.name.endswith("_test.py"):
                digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def _threshold(lower_bound: float) -> tfma.MetricThreshold:
    return tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": lower_bound}),
        # Ignored on the first run, when no blessed baseline exists yet.
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": configs.CHANGE_THRESHOLD},
        ),
    )


def _overall_threshold(lower_bound: float) -> tfma.PerSliceMetricThreshold:
    """The gate applies to the whole eval split; per-genre slices are reported, not gated
    (a slice of one or two songs would fail any threshold by chance)."""
    return tfma.PerSliceMetricThreshold(
        slicing_specs=[tfma.SlicingSpec()], threshold=_threshold(lower_bound)
    )


def make_eval_config(
    *, accuracy_threshold: float, f1_threshold: float, slice_features=configs.SLICE_FEATURES
) -> tfma.EvalConfig:
    """TFMA config: BinaryAccuracy and F1Score per output, overall and by each slice feature."""
    metrics_specs = [
        tfma.MetricsSpec(
            output_names=[output],
            metrics=[
                tfma.MetricConfig(
                    class_name="BinaryAccuracy",
                    per_slice_thresholds=[_overall_threshold(accuracy_threshold)],
                ),
                tfma.MetricConfig(
                    class_name="F1Score", per_slice_thresholds=[_overall_threshold(f1_threshold)]
                ),
                tfma.MetricConfig(class_name="ExampleCount"),
            ],
        )
        for output in configs.LABEL_KEYS
    ]
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=configs.EVAL_SIGNATURE, label_keys=dict(configs.LABEL_KEYS)
            )
        ],
        slicing_specs=[tfma.SlicingSpec()]
        + [tfma.SlicingSpec(feature_keys=[key]) for key in slice_features],
        metrics_specs=metrics_specs,
    )


def _local_song_count(data_root: Union[str, Path]) -> int | None:
    """How many songs a dataset on this machine lists; None for a remote or unreadable one
    (the ExampleGen then reads it, and reports what is wrong with it)."""
    from mer_tfx.datasets import read_dataset
    from mer_tfx.errors import MerTfxError

    if "://" in str(data_root) or not Path(data_root).exists():
        return None
    try:
        return len(read_dataset(data_root).records)
    except (MerTfxError, OSError):
        return None


def create_pipeline(config: RunConfig) -> tfx.dsl.Pipeline:
    """The mer-tfx pipeline of one run.

    Args:
        config: the run's configuration (`pipeline.run_config.run_config_from`). Its
            preset goes to the AudioExampleGen alone, which records it with its examples;
            the LogMelTransform and the Trainer read it from there. The Trainer's
            `custom_config` holds it too (the Tuner, TFX's own component, reads it there),
            and the Trainer stops when the two differ.

    Returns:
        The `tfx.dsl.Pipeline`, to run with `tfx.orchestration.LocalDagRunner().run(...)`.
        Unless `config.beam_pipeline_args` set the runner or the DirectRunner's mode or
        workers, the ExampleGen and the transform run on one worker thread per core (in
        one worker for a local dataset of fewer than `beam_args.THREADS_MIN_SONGS` songs).
    """
    from components.audio_example_gen.component import AudioExampleGen
    from components.log_mel_transform.component import LogMelTransform

    custom_config = {"preset": config.preset.to_dict(), "overrides": dict(config.overrides),
                     "seed": int(config.seed), "code_version": training_code_version()}
    if config.unlabeled_data is not None:
        custom_config["unlabeled_data"] = str(config.unlabeled_data)

    example_gen = AudioExampleGen(
        input_base=str(config.data_root), preset=config.preset, **config.example_gen_kwargs
    )
    transform = LogMelTransform(examples=example_gen.outputs["examples"])
    # Ingest runs on all cores by default; the user's runner/mode/worker args replace that.
    # The dataset's size only matters when the worker count is left to the default; it is
    # counted here only when the caller has not (`mer pipeline` has: `describe_data`).
    workers = config.ingest_workers
    songs = None
    if workers is None:
        songs = config.dataset_songs
        if songs is None:
            songs = _local_song_count(config.data_root)
    ingest_args = beam_args.ingest_beam_args(
        list(config.beam_pipeline_args), workers=workers, songs=songs
    )
    if ingest_args:
        example_gen.with_beam_pipeline_args(ingest_args)
        transform.with_beam_pipeline_args(ingest_args)
    examples = transform.outputs["examples"]
    # TFDV on the audio-level features; anomalies are reported, they do not stop the run.
    components = [example_gen, transform,
                  *data_validation.validation_components(example_gen.outputs["examples"])]

    hyperparameters = None
    if config.enable_tuning:
        tuner = tfx.components.Tuner(
            tuner_fn=TUNER_FN,
            examples=examples,
            train_args=tfx.proto.TrainArgs(num_steps=0),
            eval_args=tfx.proto.EvalArgs(num_steps=0),
            custom_config={**custom_config, "trials": int(config.tuner_trials)},
        )
        hyperparameters = tuner.outputs["best_hyperparameters"]
        components.append(tuner)

    trainer = tfx.components.Trainer(
        run_fn=TRAINER_RUN_FN,
        # TFX's generic Trainer, handing run_fn the examples artifact's label information.
        custom_executor_spec=executor_spec.ExecutorClassSpec(TrainerExecutor),
        examples=examples,
        hyperparameters=hyperparameters,
        train_args=tfx.proto.TrainArgs(num_steps=0),
        eval_args=tfx.proto.EvalArgs(num_steps=0),
        # The gate goes into the model's `model_info`; the Tuner does not need it.
        custom_config={**custom_config,
                       "gate": {"accuracy": float(config.accuracy_threshold),
                                "f1": float(config.f1_threshold)}},
    )
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = tfx.components.Evaluator(
        examples=examples,
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        eval_config=make_eval_config(
            accuracy_threshold=config.accuracy_threshold, f1_threshold=config.f1_threshold
        ),
    )
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=str(config.serving_model_dir))
        ),
    )
    components += [trainer, model_resolver, evaluator, pusher]

    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=str(config.pipeline_root),
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(config.metadata_path)
        ),
        beam_pipeline_args=list(config.beam_pipeline_args),
    )
