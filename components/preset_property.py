"""A preset as a TFX execution property (a string), shared by both components.

TFX stores execution properties as strings or numbers. A named preset stays its
name; a custom `Preset` (e.g. a `replace(...)` of a named one) becomes the JSON
of its `to_dict()`. `mer_tfx.presets.resolve` reads either back.
"""

from __future__ import annotations

import json
from typing import Union

from mer_tfx import presets


def to_property(preset: Union[str, presets.Preset]) -> str:
    """The string form of `preset` for a component parameter.

    Raises:
        ParameterError: an unknown preset name (early, when the pipeline is built).
    """
    if isinstance(preset, presets.Preset):
        if presets.PRESETS.get(preset.name) == preset:
            return preset.name
        return json.dumps(preset.to_dict(), sort_keys=True)
    presets.resolve(preset)
    return preset
