import dataclasses
import json

import pytest

from mer_tfx import presets
from mer_tfx.errors import ParameterError

# The paper's Table 1: preset -> (sample rate, n_fft, hop_length, segment seconds).
TABLE_1 = {
    "pmemo-1s": (44100, 1024, 205, 1),
    "pmemo-3s": (44100, 1024, 615, 3),
    "pmemo-5s": (44100, 2048, 1024, 5),
    "pmemo-10s": (44100, 2048, 2048, 10),
    "4q-3s": (22050, 1024, 307, 3),
    "4q-5s": (22050, 1024, 512, 5),
    "4q-10s": (22050, 2048, 1024, 10),
}


def test_the_seven_paper_presets_exist():
    assert set(presets.PAPER_PRESETS) == set(TABLE_1)
    assert len(presets.PAPER_PRESETS) == 7


@pytest.mark.parametrize("name", sorted(TABLE_1))
def test_paper_presets_have_table_1_numbers(name):
    rate, n_fft, hop, seconds = TABLE_1[name]
    f = presets.get(name).features

    assert (f.sample_rate, f.n_fft, f.hop_length, f.segment_seconds) == (rate, n_fft, hop, seconds)
    assert (f.num_frames, f.n_mels) == (216, 128) == f.spectrogram_shape
    assert f.clip_samples == 30 * rate
    assert f.num_segments * f.segment_samples == f.clip_samples
    assert f.num_segments == 30 // seconds


@pytest.mark.parametrize("name", sorted(TABLE_1))
def test_paper_presets_use_table_2_and_3_settings(name):
    preset = presets.get(name)
    assert preset.model.encoder_filters == (128, 64, 32)
    assert (preset.model.rnn_units, preset.model.rnn_type, preset.model.bidirectional) == (
        512,
        "lstm",
        True,
    )
    t = preset.training
    assert (t.freq_mask_param, t.time_mask_param, t.mask_fill) == (30, 32, "mean")
    assert (t.ae_learning_rate, t.head_learning_rate) == (1e-3, 1e-5)


@pytest.mark.parametrize("name", sorted(TABLE_1))
def test_small_variants_share_features_with_a_smaller_model(name):
    small, paper = presets.get(f"{name}-small"), presets.get(name)

    assert small.name == f"{name}-small"
    assert small.features == paper.features
    assert sum(small.model.encoder_filters) < sum(paper.model.encoder_filters)
    assert small.model.rnn_units < paper.model.rnn_units


def test_small_is_an_alias_of_4q_5s_small():
    small = presets.get("small")
    assert small.name == "small"
    assert dataclasses.replace(small, name="4q-5s-small") == presets.get("4q-5s-small")


def test_unknown_name_lists_known_names():
    with pytest.raises(ParameterError) as info:
        presets.get("4q-7s")
    message = str(info.value)
    assert "'4q-7s'" in message
    for name in presets.names():
        assert name in message


def test_names_are_sorted_and_complete():
    names = presets.names()
    assert list(names) == sorted(names)
    assert len(names) == 2 * 7 + 1


@pytest.mark.parametrize("name", ["pmemo-1s", "4q-5s-small", "small"])
def test_to_dict_from_dict_round_trip_through_json(name):
    preset = presets.get(name)
    restored = presets.Preset.from_dict(json.loads(json.dumps(preset.to_dict())))

    assert restored == preset
    assert isinstance(restored.model.encoder_filters, tuple)


def test_replace_changes_fields_of_each_group():
    preset = presets.get("4q-5s")
    changed = preset.replace(mask_fill="zero", rnn_units=64, hop_length=256)

    assert changed.training.mask_fill == "zero"
    assert changed.model.rnn_units == 64
    assert changed.features.hop_length == 256
    assert changed.features.num_frames == 1 + 110250 // 256
    assert preset.training.mask_fill == "mean"  # the original is untouched
    assert changed.name == preset.name


def test_replace_rejects_unknown_fields_and_bad_values():
    preset = presets.get("4q-5s")
    with pytest.raises(ParameterError, match="colour='red'"):
        preset.replace(colour="red")
    with pytest.raises(ParameterError, match="segment_seconds must divide"):
        preset.replace(segment_seconds=7)
    with pytest.raises(ParameterError, match="head_pool='max'"):
        preset.replace(head_pool="max")
    assert preset.replace(head_pool="meanstd").model.head_pool == "meanstd"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sample_rate": 0}, "sample_rate=0"),
        ({"n_fft": 1024.0}, "n_fft=1024.0"),
        ({"segment_seconds": -1}, "segment_seconds=-1"),
        ({"segment_seconds": 4}, "must divide"),
        ({"sample_rate": 22051, "segment_seconds": 0.5, "clip_seconds": 1}, "whole number"),
    ],
)
def test_feature_config_validates_its_values(kwargs, message):
    args = {"sample_rate": 22050, "segment_seconds": 5, "n_fft": 1024, "hop_length": 512}
    with pytest.raises(ParameterError, match=message):
        presets.FeatureConfig(**{**args, **kwargs})


def test_for_dataset_lists_presets_shortest_first():
    assert [p.name for p in presets.for_dataset("4q")] == ["4q-3s", "4q-5s", "4q-10s"]
    assert [p.name for p in presets.for_dataset("pmemo", small=True)] == [
        "pmemo-1s-small",
        "pmemo-3s-small",
        "pmemo-5s-small",
        "pmemo-10s-small",
    ]
    with pytest.raises(ParameterError, match="dataset='deam'"):
        presets.for_dataset("deam")
