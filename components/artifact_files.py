"""The files an Examples artifact holds beside its splits, read and written in one place.

- `preset.json` (`contract.PRESET_FILE`): the preset the examples were made with. The
  AudioExampleGen writes it (and names the preset in the artifact's `preset` custom
  property, which MLMD shows); LogMelTransform reads it from its input artifact and
  writes it into its output; the Trainer reads it from there. So a run's preset is given
  once, to the ExampleGen, and no later component can use another.
- `label_info.json` (`contract.LABEL_INFO_FILE`): the dataset's layout, label transform
  and counts, written by the AudioExampleGen and copied by LogMelTransform.

Paths go through TFX's `fileio`, so a gs:// artifact works as a local one.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict

from tfx.dsl.io import fileio

from mer_tfx import contract
from mer_tfx.errors import ParameterError
from mer_tfx.presets import Preset

PRESET_PROPERTY = "preset"  # custom property of the Examples artifact: the preset's name


def check_preset(preset: Preset | None) -> Preset:
    """A component's `preset` argument: a `Preset`, or None for `presets.default()`.

    Raises:
        ParameterError: anything else, e.g. a name (look it up with `presets.get`).
    """
    if preset is None:
        from mer_tfx import presets

        return presets.default()
    if not isinstance(preset, Preset):
        raise ParameterError(
            "preset must be a Preset (e.g. mer_tfx.presets.get('4q-5s')). "
            f"Received: preset={preset!r}")
    return preset


def write_preset(artifact, preset: Preset) -> None:
    """Records `preset` with an Examples artifact: `preset.json` in its uri, its name as
    the artifact's `PRESET_PROPERTY` custom property."""
    with fileio.open(os.path.join(artifact.uri, contract.PRESET_FILE), "w") as handle:
        handle.write(json.dumps(preset.to_dict(), indent=2, sort_keys=True))
    artifact.set_string_custom_property(PRESET_PROPERTY, preset.name)


def read_preset(uri: str) -> Preset:
    """The preset recorded in the Examples artifact at `uri` (`write_preset`).

    Raises:
        ParameterError: the artifact records none (made by another ExampleGen, or by a
            version of mer-tfx that did not record it).
    """
    path = os.path.join(uri, contract.PRESET_FILE)
    if not fileio.exists(path):
        raise ParameterError(
            f"The examples record no preset (no {contract.PRESET_FILE}): make them with "
            f"mer-tfx's AudioExampleGen. Received: uri={uri!r}")
    with fileio.open(path, "r") as handle:
        return Preset.from_json(handle.read())


def read_label_info(uri: str) -> Dict[str, Any]:
    """The Examples artifact's `label_info.json` as a dict, or {} when it has none."""
    path = os.path.join(uri, contract.LABEL_INFO_FILE)
    if not fileio.exists(path):
        return {}
    with fileio.open(path, "r") as handle:
        return json.load(handle)
