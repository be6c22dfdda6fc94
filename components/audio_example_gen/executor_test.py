import json
import logging
import os
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from tfx.components import FileBasedExampleGen
from tfx.components.example_gen import base_example_gen_executor
from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from components import artifact_files, example_codec
from components.audio_example_gen import component, custom_config, executor, reports
from components.conftest import TINY_FEATURES, TINY_PRESET, write_corrupt, write_csv
from mer_tfx import contract, presets
from mer_tfx.errors import DatasetError, ParameterError

# --------------------------------------------------------------------------- helpers


def _exec_properties(input_base, *, preset=TINY_PRESET, output_config=None, layout=None):
    return {
        "input_base": str(input_base),
        "input_config": proto_utils.proto_to_json(example_gen_utils.make_default_input_config()),
        "output_config": proto_utils.proto_to_json(
            output_config or component.default_output_config()
        ),
        "custom_config": proto_utils.proto_to_json(
            custom_config.make_custom_config(preset=preset, layout=layout)
        ),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }


def _run(input_base, out_dir, **kwargs):
    examples = standard_artifacts.Examples()
    examples.uri = str(out_dir)
    executor.Executor().Do({}, {"examples": [examples]}, _exec_properties(input_base, **kwargs))
    return examples


def _read_split(artifact, split):
    files = tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([artifact], split), "*"))
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return [tf.train.Example.FromString(record.numpy()) for record in dataset]


def _read_all(artifact):
    return {
        split: _read_split(artifact, split)
        for split in artifact_utils.decode_split_names(artifact.split_names)
    }


def _song_id(example):
    return example.features.feature["song_id"].bytes_list.value[0].decode()


def _skipped(artifact):
    return reports.read_skipped_files(os.path.join(artifact.uri, contract.SKIPPED_FILES_FILE))


def _label_info(artifact):
    with open(os.path.join(artifact.uri, contract.LABEL_INFO_FILE)) as handle:
        return json.load(handle)


# --------------------------------------------------------------------------- units


def test_generate_examples_rejects_a_partition_that_could_split_a_song(dataset_manifest, tmp_path):
    by_genre = example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=1)],
            partition_feature_name="genre",
        )
    )
    with pytest.raises(ParameterError, match="partition_feature_name='genre'"):
        _run(dataset_manifest["root"], tmp_path / "a", output_config=by_genre)
    with pytest.raises(ParameterError, match="needs output splits"):
        _run(dataset_manifest["root"], tmp_path / "b", output_config=example_gen_pb2.Output())


def test_component_is_a_configured_file_based_example_gen(tmp_path):
    gen = component.AudioExampleGen(str(tmp_path), preset=presets.get("4q-5s"), kmeans_seed=2)
    assert isinstance(gen, FileBasedExampleGen)
    assert gen.id == "AudioExampleGen"
    assert gen.executor_spec.executor_class is executor.Executor
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(gen.exec_properties["output_config"], output_config)
    assert output_config.split_config.partition_feature_name == "song_id"
    assert [s.name for s in output_config.split_config.splits] == ["train", "eval"]
    settings = custom_config.parse_custom_config(gen.exec_properties["custom_config"])
    assert settings.preset.name == "4q-5s"
    assert settings.kmeans_seed == 2
    with pytest.raises(ParameterError, match="input_base"):
        component.AudioExampleGen("")


# --------------------------------------------------------------------------- executor


def _check_outputs(artifact, dataset):
    splits = _read_all(artifact)
    assert set(splits) == {"train", "eval"}
    ids_per_split = {name: [_song_id(e) for e in examples] for name, examples in splits.items()}
    all_ids = [i for ids in ids_per_split.values() for i in ids]
    # Every readable song exactly once, in exactly one split.
    assert sorted(all_ids) == sorted(dataset["songs"])
    assert not set(ids_per_split["train"]) & set(ids_per_split["eval"])
    for examples in splits.values():
        for example in examples:
            f = example.features.feature
            assert len(f["waveform"].float_list.value) == TINY_FEATURES.clip_samples
            assert f["sample_rate"].int64_list.value == [TINY_FEATURES.sample_rate]
    # Every bad input is reported with a reason.
    skipped = _skipped(artifact)
    reported = {row["song_id"] or Path(row["path"]).stem for row in skipped}
    assert dataset["bad"] <= reported
    assert all(row["reason"] for row in skipped)
    assert not reported & set(all_ids)
    info = _label_info(artifact)
    assert info["counts"]["examples"] == len(dataset["songs"])
    assert {s: v["examples"] for s, v in info["counts"]["splits"].items()} == {
        s: len(ids) for s, ids in ids_per_split.items() if ids
    }
    assert info["preset"] == TINY_PRESET.name
    assert info["partition_feature_name"] == "song_id"
    # The temporary work folder is gone.
    assert sorted(os.listdir(artifact.uri)) == sorted(
        ["Split-train", "Split-eval", contract.LABEL_INFO_FILE, contract.SKIPPED_FILES_FILE,
         contract.PRESET_FILE]
    )
    return splits, skipped, info


def test_do_on_a_4q_folder(dataset_4q, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    artifact = _run(dataset_4q["root"], tmp_path / "out")
    splits, skipped, info = _check_outputs(artifact, dataset_4q)
    assert info["layout"] == "4q"
    assert info["labels"]["method"] == "quadrant"
    for examples in splits.values():
        for example in examples:
            f = example.features.feature
            quadrant = f["quadrant"].bytes_list.value[0].decode()
            assert quadrant == dataset_4q["songs"][_song_id(example)]
            # Russell: Q1 (+V,+A), Q2 (-V,+A), Q3 (-V,-A), Q4 (+V,-A).
            expected = {"Q1": (1, 1), "Q2": (0, 1), "Q3": (0, 0), "Q4": (1, 0)}[quadrant]
            assert (
                f["valence_high"].int64_list.value[0],
                f["arousal_high"].int64_list.value[0],
            ) == expected
            assert f["genre"].bytes_list.value[0] in (b"Rock", b"Jazz")
            assert "valence" not in f
    quadrant_total = sum(
        n for split in info["counts"]["splits"].values() for n in split["quadrants"].values()
    )
    assert quadrant_total == len(dataset_4q["songs"])
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "MTbad001.wav" in warned and "MTempty01.wav" in warned
    # An annotated song without a file is summarised, pointing at the report.
    assert "MTmissing" in warned and contract.SKIPPED_FILES_FILE in warned


def test_do_on_a_pmemo_folder_records_kmeans_thresholds(dataset_pmemo, tmp_path):
    artifact = _run(dataset_pmemo["root"], tmp_path / "out")
    splits, _, info = _check_outputs(artifact, dataset_pmemo)
    assert info["layout"] == "pmemo"
    labels = info["labels"]
    threshold_keys = [k for k in labels if "threshold" in k]
    assert threshold_keys, labels
    v_threshold = labels["valence_threshold"]
    a_threshold = labels["arousal_threshold"]
    for examples in splits.values():
        for example in examples:
            f = example.features.feature
            valence, arousal = dataset_pmemo["songs"][_song_id(example)]
            # Stored as float32: compare with float32 rounding of the CSV value.
            assert f["valence"].float_list.value[0] == pytest.approx(valence, abs=1e-6)
            assert f["arousal"].float_list.value[0] == pytest.approx(arousal, abs=1e-6)
            assert f["valence_high"].int64_list.value[0] == int(valence > v_threshold)
            assert f["arousal_high"].int64_list.value[0] == int(arousal > a_threshold)


def test_do_on_a_manifest(dataset_manifest, tmp_path):
    artifact = _run(dataset_manifest["root"], tmp_path / "out")
    splits, skipped, info = _check_outputs(artifact, dataset_manifest)
    assert info["layout"] == "manifest"
    assert any(row["path"].endswith("absent.wav") for row in skipped)
    genres = {e.features.feature["genre"].bytes_list.value[0] for s in splits.values() for e in s}
    assert genres == {b"pop", b"metal"}
    # The run's preset goes with the examples, for LogMelTransform and the Trainer.
    assert artifact_files.read_preset(artifact.uri) == TINY_PRESET
    assert artifact.get_string_custom_property(artifact_files.PRESET_PROPERTY) == "tiny-test"


def test_do_fails_clearly_when_nothing_is_readable(tmp_path):
    root = tmp_path / "broken"
    write_corrupt(root / "Q1" / "a.wav")
    (root / "Q2").mkdir(parents=True)
    (root / "Q2" / "b.wav").write_bytes(b"")
    write_csv(
        root / "panda_dataset_taffc_annotations.csv",
        ["Song", "Quadrant"],
        [["a", "Q1"], ["b", "Q2"]],
    )
    out = tmp_path / "out"
    with pytest.raises(DatasetError, match="No audio file .* could be read") as raised:
        _run(root, out)
    # The reasons are in the message itself: TFX removes a failed component's outputs, so
    # a path into them would name a file that no longer exists when the user reads it.
    message = str(raised.value)
    assert "skipped_files.csv" not in message and "a: " in message and "b: " in message
    assert "2 skipped for their audio, none decoded" in message
    examples = standard_artifacts.Examples()
    examples.uri = str(out)
    assert {row["song_id"] for row in _skipped(examples)} == {"a", "b"}


def test_do_says_the_labels_were_invalid_when_no_row_has_usable_labels(tmp_path):
    audio = write_corrupt(tmp_path / "a.wav")  # never read: the labels fail first
    manifest = write_csv(
        tmp_path / "manifest.csv",
        ["path", "quadrant"],
        [[audio.name, "Q9"], ["b.wav", "happy"]],
    )
    with pytest.raises(DatasetError) as raised:
        _run(manifest, tmp_path / "out")
    message = str(raised.value)
    assert "labels, not the audio, are invalid" in message
    assert "manifest.csv line 2: quadrant 'Q9' is not Q1..Q4" in message
    # Every path the message names exists (the manifest); none points into the outputs.
    named = [word.strip("'") for word in message.split() if word.startswith("'/")]
    assert named == [str(manifest)] and all(Path(path).exists() for path in named)


def test_do_with_custom_splits_keeps_their_names(dataset_manifest, tmp_path):
    output_config = example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[
                example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=1),
                example_gen_pb2.SplitConfig.Split(name="test", hash_buckets=1),
            ],
            partition_feature_name="song_id",
        )
    )
    artifact = _run(dataset_manifest["root"], tmp_path / "out", output_config=output_config)
    assert artifact_utils.decode_split_names(artifact.split_names) == ["train", "test"]
    total = sum(len(v) for v in _read_all(artifact).values())
    assert total == len(dataset_manifest["songs"])


def _serialized_song_id(serialized):
    return _song_id(tf.train.Example.FromString(serialized))


def test_audio_to_example_is_the_tfx_input_source_transform(dataset_manifest):
    assert executor.Executor().GetInputSourceToExamplePTransform() is executor.AudioToExample
    properties = _exec_properties(dataset_manifest["root"])
    with test_pipeline.TestPipeline() as pipeline:
        ids = pipeline | executor.AudioToExample(properties, "*") | beam.Map(_serialized_song_id)
        assert_that(ids, equal_to(sorted(dataset_manifest["songs"])))


def test_generate_examples_by_beam_splits_the_input_transforms_examples_as_tfx_does(
    dataset_manifest,
):
    hooks = []

    class Recording(executor.Executor):
        def GetInputSourceToExamplePTransform(self):  # noqa: N802 (TFX API)
            hooks.append(super().GetInputSourceToExamplePTransform())
            return hooks[-1]

    properties = _exec_properties(dataset_manifest["root"])
    split_config = component.default_output_config().split_config
    with test_pipeline.TestPipeline() as pipeline:
        parts = Recording().GenerateExamplesByBeam(pipeline, properties)
        assert sorted(parts) == ["eval", "train"]
        assert hooks == [executor.AudioToExample]
        songs = [
            examples
            | f"Songs[{name}]"
            >> beam.Map(
                lambda serialized, name=name: (
                    _serialized_song_id(serialized),
                    # The split TFX's own partition gives the Example.
                    name
                    == ("train", "eval")[
                        base_example_gen_executor._PartitionFn(
                            tf.train.Example.FromString(serialized), 2, [8, 10], split_config
                        )
                    ],
                )
            )
            for name, examples in parts.items()
        ] | beam.Flatten()
        assert_that(songs, equal_to([(song, True) for song in dataset_manifest["songs"]]))


def test_do_reads_the_dataset_index_once(dataset_pmemo, tmp_path, monkeypatch):
    from mer_tfx import datasets

    calls = []
    read_dataset = datasets.read_dataset

    def counted(*args, **kwargs):
        calls.append(args)
        return read_dataset(*args, **kwargs)

    monkeypatch.setattr(datasets, "read_dataset", counted)
    _run(dataset_pmemo["root"], tmp_path / "out")  # two splits; k-means labels
    assert len(calls) == 1


def test_do_splits_by_song_id_when_no_partition_feature_is_named(dataset_manifest, tmp_path):
    unnamed = component.default_output_config()
    unnamed.split_config.ClearField("partition_feature_name")
    by_default = _read_all(_run(dataset_manifest["root"], tmp_path / "a"))
    by_unnamed = _read_all(_run(dataset_manifest["root"], tmp_path / "b", output_config=unnamed))
    assert {s: sorted(map(_song_id, e)) for s, e in by_unnamed.items()} == {
        s: sorted(map(_song_id, e)) for s, e in by_default.items()
    }


def _shared_4q() -> Path:
    shared = os.environ.get("MER_SHARED_DATA")
    root = (
        Path(shared) if shared else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
    return root / "4q"


@pytest.mark.e2e
@pytest.mark.shared_data
@pytest.mark.skipif(not _shared_4q().is_dir(), reason="../shared/data/4q is absent")
def test_do_on_real_4q_mp3s(tmp_path):
    data = _shared_4q()
    rows = [[str(sorted((data / q).glob("*.mp3"))[0]), q] for q in ("Q1", "Q2", "Q3", "Q4")]
    manifest = write_csv(tmp_path / "manifest.csv", ["path", "quadrant"], rows)
    artifact = _run(manifest, tmp_path / "out", preset=presets.get("small"))
    examples = [e for split in _read_all(artifact).values() for e in split]
    assert sorted(
        e.features.feature["audio_path"].bytes_list.value[0].decode() for e in examples
    ) == sorted(str(Path(r[0]).resolve()) for r in rows)  # the ExampleGen records resolved paths
    for example in examples:
        waveform = example_codec.float_values(example.features.feature["waveform"])
        assert waveform.shape == (30 * 22050,)
        assert np.abs(waveform).max() <= 1.0 and np.abs(waveform).max() > 0.01
    assert _skipped(artifact) == []


def test_component_fingerprints_a_manifest_file(dataset_manifest):
    manifest = dataset_manifest["root"]
    gen = component.AudioExampleGen(manifest, preset=TINY_PRESET)
    assert gen.exec_properties["input_base"] == str(manifest.parent)
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(gen.exec_properties["input_config"], input_config)
    assert [s.pattern for s in input_config.splits] == ["manifest.csv"]
    settings = custom_config.parse_custom_config(gen.exec_properties["custom_config"])
    assert custom_config.dataset_source(gen.exec_properties["input_base"], settings) == str(manifest)
    # TFX's driver fingerprints input_base/pattern: the manifest file is one matching file.
    fingerprint, _, _ = example_gen_utils.calculate_splits_fingerprint_span_and_version(
        gen.exec_properties["input_base"], input_config.splits
    )
    assert "num_files:1," in fingerprint


def test_do_fails_clearly_when_the_index_has_no_song(tmp_path):
    manifest = write_csv(
        tmp_path / "data" / "manifest.csv",
        ["path", "quadrant"],
        [["gone1.wav", "Q1"], ["gone2.wav", "Q2"]],
    )
    with pytest.raises(DatasetError, match="2 skipped for their audio, none decoded"):
        _run(manifest, tmp_path / "out")
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "out")
    assert [Path(row["path"]).name for row in _skipped(examples)] == ["gone1.wav", "gone2.wav"]
