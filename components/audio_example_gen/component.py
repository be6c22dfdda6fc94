"""`AudioExampleGen`: a TFX FileBasedExampleGen that ingests a folder of songs.

Examples:

```python
from components import AudioExampleGen, LogMelTransform

from mer_tfx import presets

example_gen = AudioExampleGen(input_base="/data/4q", preset=presets.get("4q-5s"))
log_mel = LogMelTransform(examples=example_gen.outputs["examples"])  # reads the same preset
```
"""

from __future__ import annotations

import os
from typing import Union

from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components.audio_example_gen import custom_config, executor
from mer_tfx import contract, presets
from mer_tfx.errors import ParameterError

EXAMPLES_KEY = "examples"
COMPONENT_ID = "AudioExampleGen"
PARTITION_FEATURE = contract.SONG_ID


def default_output_config(
    *, train_buckets: int = 8, eval_buckets: int = 2
) -> example_gen_pb2.Output:
    """Hash-bucket splits by song: `train` 8 / `eval` 2, partitioned on `song_id`.

    Partitioning on the song id puts every song in exactly one split, whatever
    else the Example holds.
    """
    for name, value in (("train_buckets", train_buckets), ("eval_buckets", eval_buckets)):
        if not isinstance(value, int) or value <= 0:
            raise ParameterError(f"{name} must be a positive integer. Received: {name}={value!r}")
    return example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[
                example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=train_buckets),
                example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=eval_buckets),
            ],
            partition_feature_name=PARTITION_FEATURE,
        )
    )


def AudioExampleGen(  # noqa: N802 (a component factory reads like a class)
    input_base: Union[str, os.PathLike],
    *,
    preset: presets.Preset | None = None,
    output_config: example_gen_pb2.Output | None = None,
    layout: str | None = None,
    kmeans_seed: int = 0,
    input_config: example_gen_pb2.Input | None = None,
) -> FileBasedExampleGen:
    """A FileBasedExampleGen that decodes songs into one tf.Example each.

    Args:
        input_base: a dataset folder (PMEmo's or 4Q's own layout) or a CSV
            manifest (see `mer_tfx.datasets.read_dataset`). For a manifest, the
            component's `input_base` becomes the manifest's folder and the input
            pattern its file name, so TFX's cache sees when the manifest changes.
        preset: the run's `Preset`; its `features.sample_rate` and `clip_seconds` set
            the decoded waveform, and it is recorded with the examples (`preset.json`
            and the artifact's `preset` property, `components.artifact_files`), where
            LogMelTransform and the Trainer read it. Defaults to `presets.default()`.
        output_config: splits. Defaults to `default_output_config()` (train 8 /
            eval 2 hash buckets on `song_id`). A config that partitions on
            anything else may put one song in several splits.
        layout: force the dataset layout ("pmemo", "4q" or "manifest");
            detected when None.
        kmeans_seed: seed of the k-means label transform (continuous labels).
            Defaults to 0.
        input_config: ExampleGen input config; only its single split's pattern
            is used, for the input fingerprint (caching). Defaults to `*` (the
            manifest's file name for a manifest).

    Returns:
        The component, id "AudioExampleGen". Output `examples`: Examples with
        gzipped TFRecords under `Split-<name>/`, plus `preset.json`,
        `label_info.json` and `skipped_files.csv` in its uri.

    Raises:
        ParameterError: a preset that is not a `Preset`, bad seed or split settings.
    """
    if isinstance(input_base, os.PathLike):
        input_base = os.fspath(input_base)
    if not isinstance(input_base, str) or not input_base:
        raise ParameterError(
            f"input_base must be a non-empty path. Received: input_base={input_base!r}"
        )
    manifest = None
    if os.path.isfile(input_base):
        # TFX fingerprints `input_base/<pattern>` to decide whether a cached run is
        # still valid: point it at the manifest file itself, not at nothing.
        input_base, manifest = os.path.split(os.path.abspath(input_base))
        if input_config is None:
            input_config = example_gen_pb2.Input(
                splits=[example_gen_pb2.Input.Split(name="single_split", pattern=manifest)]
            )
    settings = custom_config.make_custom_config(
        preset=preset, layout=layout, kmeans_seed=kmeans_seed, manifest=manifest
    )
    # tfx.v1 does not export FileBasedExampleGen; it is the class behind CsvExampleGen & co.
    component = FileBasedExampleGen(
        input_base=input_base,
        input_config=input_config,
        output_config=output_config or default_output_config(),
        custom_config=settings,
        custom_executor_spec=executor_spec.BeamExecutorSpec(executor.Executor),
    )
    return component.with_id(COMPONENT_ID)
