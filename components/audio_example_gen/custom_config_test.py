import pytest
from tfx.utils import proto_utils

from components.audio_example_gen import custom_config
from components.conftest import TINY_PRESET
from mer_tfx import presets
from mer_tfx.errors import ParameterError


def test_custom_config_round_trips_through_json():
    config = custom_config.make_custom_config(preset=presets.get("4q-10s"), layout="4q",
                                               kmeans_seed=3)
    settings = custom_config.parse_custom_config(proto_utils.proto_to_json(config))
    assert settings.preset == presets.get("4q-10s")
    assert settings.layout == "4q"
    assert settings.kmeans_seed == 3


def test_custom_config_carries_a_custom_preset():
    config = custom_config.make_custom_config(preset=TINY_PRESET)
    settings = custom_config.parse_custom_config(proto_utils.proto_to_json(config))
    assert settings.preset == TINY_PRESET
    assert custom_config.parse_custom_config(None).preset == presets.default()


def test_custom_config_rejects_bad_values():
    # A name is looked up once, by whoever builds the run (`pipeline.run_config`).
    with pytest.raises(ParameterError, match="must be a Preset.*'4q-5s'"):
        custom_config.make_custom_config(preset="4q-5s")
    with pytest.raises(ParameterError, match="kmeans_seed"):
        custom_config.make_custom_config(kmeans_seed="1")
