"""The AudioExampleGen's settings: its `custom_config` proto and the dataset it names.

The settings travel as a `google.protobuf.Struct` packed in
`example_gen_pb2.CustomConfig.custom_config` (the ExampleGen's own exec property),
so TFX records and fingerprints them with the run.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, NamedTuple, Union

from google.protobuf import json_format, struct_pb2
from tfx.proto import example_gen_pb2
from tfx.utils import proto_utils

from components import artifact_files
from mer_tfx import presets
from mer_tfx.errors import ParameterError

# Keys of the Struct.
PRESET_KEY = "preset"  # the preset's JSON (`Preset.to_json`)
LAYOUT_KEY = "layout"
KMEANS_SEED_KEY = "kmeans_seed"
MANIFEST_KEY = "manifest"  # a manifest file name inside `input_base`
_KEYS = frozenset({PRESET_KEY, LAYOUT_KEY, KMEANS_SEED_KEY, MANIFEST_KEY})


class Settings(NamedTuple):
    """What `parse_custom_config` reads back.

    Attributes:
        preset: the resolved `Preset`.
        layout: "pmemo", "4q", "manifest" or None (detected).
        kmeans_seed: seed of the k-means label transform.
        manifest: a manifest file name inside `input_base`, or None.
    """

    preset: presets.Preset
    layout: str | None
    kmeans_seed: int
    manifest: str | None


def make_custom_config(
    *,
    preset: presets.Preset | None = None,
    layout: str | None = None,
    kmeans_seed: int = 0,
    manifest: str | None = None,
) -> example_gen_pb2.CustomConfig:
    """The ExampleGen `custom_config` proto holding the executor's settings.

    Args:
        preset: the `Preset`. Defaults to `presets.default()`.
        layout: "pmemo", "4q", "manifest" or None (detected).
        kmeans_seed: seed of the k-means label transform.
        manifest: name of a manifest CSV inside `input_base`, when the dataset is
            a manifest (the component passes the manifest's folder as
            `input_base` so that TFX fingerprints the file). Defaults to None.

    Raises:
        ParameterError: a preset that is not a `Preset`, or a seed that is not an integer.
    """
    if not isinstance(kmeans_seed, int) or isinstance(kmeans_seed, bool):
        raise ParameterError(
            f"kmeans_seed must be an integer. Received: kmeans_seed={kmeans_seed!r}"
        )
    struct = struct_pb2.Struct()
    struct.update(
        {PRESET_KEY: artifact_files.check_preset(preset).to_json(), KMEANS_SEED_KEY: kmeans_seed}
    )
    if layout is not None:
        struct.update({LAYOUT_KEY: layout})
    if manifest is not None:
        struct.update({MANIFEST_KEY: manifest})
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(struct)
    return config


def parse_custom_config(value: Union[None, str, example_gen_pb2.CustomConfig]) -> Settings:
    """Reads `make_custom_config`'s settings back (from the exec property's JSON).

    Raises:
        ParameterError: an unknown key, a Struct of another type, a bad seed or preset.
    """
    settings: dict = {}
    if value:
        config = value
        if isinstance(value, str):
            config = example_gen_pb2.CustomConfig()
            proto_utils.json_to_proto(value, config)
        if config.HasField("custom_config"):
            struct = struct_pb2.Struct()
            if not config.custom_config.Unpack(struct):
                raise ParameterError(
                    "custom_config must hold a google.protobuf.Struct (use make_custom_config). "
                    f"Received: type_url={config.custom_config.type_url!r}"
                )
            settings = json_format.MessageToDict(struct)
    unknown = set(settings) - _KEYS
    if unknown:
        raise ParameterError(f"Unknown custom_config keys. Received: {sorted(unknown)}")
    seed = settings.get(KMEANS_SEED_KEY, 0)
    if float(seed) != int(seed):
        raise ParameterError(f"kmeans_seed must be an integer. Received: kmeans_seed={seed!r}")
    return Settings(
        preset=(presets.Preset.from_json(settings[PRESET_KEY]) if PRESET_KEY in settings
                else presets.default()),
        layout=settings.get(LAYOUT_KEY) or None,
        kmeans_seed=int(seed),
        manifest=settings.get(MANIFEST_KEY) or None,
    )


def dataset_source(input_base: str, settings: Settings) -> str:
    """The path the dataset reader reads: `input_base`, or the manifest inside it."""
    return os.path.join(input_base, settings.manifest) if settings.manifest else input_base


def read_index(input_base: str, settings: Settings):
    """`mer_tfx.datasets.read_dataset` on the ExampleGen's `input_base` (a `DatasetIndex`)."""
    from mer_tfx import datasets

    return datasets.read_dataset(
        dataset_source(input_base, settings),
        layout=settings.layout,
        kmeans_seed=settings.kmeans_seed,
    )


def exec_settings(exec_properties: Mapping[str, Any]) -> Settings:
    """The settings in an ExampleGen's exec properties (`custom_config`)."""
    from tfx.types import standard_component_specs

    return parse_custom_config(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY))
