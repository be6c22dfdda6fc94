"""Resolves the `name_or_preset` argument of the layers' `from_preset`."""

from __future__ import annotations

from typing import Union

from mer_tfx import presets


def feature_config(
    name_or_preset: Union[str, presets.Preset, presets.FeatureConfig],
) -> presets.FeatureConfig:
    """The `FeatureConfig` itself, or that of what `presets.resolve` accepts
    (a preset name, a `Preset`, its dict or that dict as JSON)."""
    if isinstance(name_or_preset, presets.FeatureConfig):
        return name_or_preset
    return presets.resolve(name_or_preset).features
