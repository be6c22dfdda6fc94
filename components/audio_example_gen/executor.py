"""Executor of the audio ExampleGen: a folder of songs -> one tf.Example per song.

A file-based ExampleGen executor (`BaseExampleGenExecutor`) in TFX's shape:
`GetInputSourceToExamplePTransform` returns `AudioToExample`, and
`GenerateExamplesByBeam` returns the split PCollections. The work is done by the
module-level PTransforms of its neighbours:

- `custom_config`: the settings and the dataset index they name;
- `decode`: `ReadSongs` / `DecodeSongs`, files -> Examples (failures set aside);
- `splits`: `PartitionBySong`, TFX's hash-bucket rule on `song_id`;
- `reports`: `WriteReports`, `label_info.json` and `skipped_files.csv`.

`Do` is the base class's `Do` (split names, one Beam pipeline writing every split
under `Split-<name>/`, payload and file format) with three differences: it writes
gzip level 0 (`components.gzip_tfrecord`, the figure is there), in the same
pipeline the two reports into the artifact's uri, and it records the preset with
the artifact (`components.artifact_files.write_preset`).

On the DirectRunner it does not package TFX for remote workers (`components.local_beam`).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Tuple

import apache_beam as beam
from tfx.components.example_gen import base_example_gen_executor, write_split
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs

from components import artifact_files, gzip_tfrecord, local_beam
from components.audio_example_gen import custom_config, decode, reports, splits
from mer_tfx import console, contract
from mer_tfx.errors import DatasetError, ParameterError

_LOGGER = logging.getLogger(__name__)

_FILE_FORMAT = "tfrecords_gzip"


def _to_example(song: decode.EncodedSong) -> bytes:
    return song.example


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def AudioToExample(  # noqa: N802 (Beam's PTransform naming)
    pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str
) -> beam.pvalue.PCollection:
    """The dataset under `exec_properties["input_base"]` as serialized tf.Examples.

    TFX's `GetInputSourceToExamplePTransform` contract. `split_pattern` is not
    used: the dataset reader finds the audio of its layout itself.
    """
    del split_pattern
    settings = custom_config.exec_settings(exec_properties)
    index = custom_config.read_index(
        exec_properties[standard_component_specs.INPUT_BASE_KEY], settings
    )
    decoded = pipeline | "ReadSongs" >> decode.ReadSongs(
        index.records, features=settings.preset.features
    )
    return decoded.songs | "ToExample" >> beam.Map(_to_example)


def _songs_by_split(
    pipeline: beam.Pipeline,
    exec_properties: Dict[str, Any],
    *,
    index: Any,
    settings: custom_config.Settings,
    progress_path: str | None = None,
) -> Tuple[Dict[str, beam.pvalue.PCollection], beam.pvalue.PCollection]:
    """({split name: PCollection of `EncodedSong`}, PCollection of decoding failures)."""
    split_names, buckets = splits.output_splits(exec_properties)
    decoded = pipeline | "InputToRecord" >> decode.ReadSongs(
        index.records, features=settings.preset.features, progress_path=progress_path
    )
    parts = decoded.songs | "SplitData" >> splits.PartitionBySong(split_names, buckets)
    return parts, decoded[decode.SKIPPED_TAG]


def _check_formats(exec_properties: Dict[str, Any]) -> None:
    file_format = exec_properties.get(
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY, example_gen_pb2.FILE_FORMAT_UNSPECIFIED
    )
    if file_format not in (
        example_gen_pb2.FILE_FORMAT_UNSPECIFIED,
        example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    ):
        raise ParameterError(
            f"AudioExampleGen writes gzipped TFRecords. Received: output_file_format={file_format!r}"
        )
    payload = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
    if payload not in (None, example_gen_pb2.FORMAT_UNSPECIFIED, example_gen_pb2.FORMAT_TF_EXAMPLE):
        raise ParameterError(
            f"AudioExampleGen writes tf.Examples. Received: output_data_format={payload!r}"
        )


class Executor(local_beam.LocalBeamExecutor, base_example_gen_executor.BaseExampleGenExecutor):
    """Audio ExampleGen executor (see the module docstring)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 (TFX API)
        return AudioToExample

    def GenerateExamplesByBeam(  # noqa: N802 (TFX API)
        self, pipeline: beam.Pipeline, exec_properties: Dict[str, Any]
    ) -> Dict[str, beam.pvalue.PCollection]:
        """Serialized Examples per output split, partitioned by `song_id` (`splits`).

        Raises:
            ParameterError: no output splits, or a partition feature other than `song_id`.
        """
        settings = custom_config.exec_settings(exec_properties)
        index = custom_config.read_index(
            exec_properties[standard_component_specs.INPUT_BASE_KEY], settings
        )
        parts, _ = _songs_by_split(pipeline, exec_properties, index=index, settings=settings)
        return {
            name: songs | f"ToExample[{name}]" >> beam.Map(_to_example)
            for name, songs in parts.items()
        }

    def _runs_here(self) -> bool:
        """Whether Beam's workers run on this machine (the DirectRunner, the default),
        where they can advance a `console.SharedProgress` bar through its file."""
        return local_beam.runs_locally(self._beam_pipeline_args)

    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: Dict[str, List[Any]],
        output_dict: Dict[str, List[Any]],
        exec_properties: Dict[str, Any],
    ) -> None:
        """Indexes the dataset, writes the splits and the two reports.

        Raises:
            DatasetError: no file could be read (the report says why for each).
            ParameterError: bad split or format settings.
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        _check_formats(exec_properties)
        split_names, _ = splits.output_splits(exec_properties)
        settings = custom_config.exec_settings(exec_properties)
        input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        index = custom_config.read_index(input_base, settings)
        artifacts = output_dict[standard_component_specs.EXAMPLES_KEY]
        examples = artifact_utils.get_single_instance(artifacts)
        examples.split_names = artifact_utils.encode_split_names(split_names)
        report = os.path.join(examples.uri, contract.SKIPPED_FILES_FILE)
        reports.log_index_skips(index.skipped, report=report)

        with console.SharedProgress(
            total=len(index.records), desc="AudioExampleGen", unit="file"
        ) as progress, self._make_beam_pipeline() as pipeline:
            parts, skipped = _songs_by_split(
                pipeline,
                exec_properties,
                index=index,
                settings=settings,
                progress_path=progress.path if self._runs_here() else None,
            )
            for name, songs in parts.items():
                prefix = os.path.join(
                    artifact_utils.get_split_uri(artifacts, name), write_split.DEFAULT_FILE_NAME
                )
                _ = (
                    songs
                    | f"ToExample[{name}]" >> beam.Map(_to_example)
                    | f"WriteSplit[{name}]" >> gzip_tfrecord.WriteToGzipTFRecord(prefix)
                )
            _ = (parts, skipped) | "WriteReports" >> reports.WriteReports(
                examples.uri,
                index=index,
                preset=settings.preset,
                kmeans_seed=settings.kmeans_seed,
            )
        for artifact in artifacts:
            examples_utils.set_payload_format(artifact, example_gen_pb2.FORMAT_TF_EXAMPLE)
            examples_utils.set_file_format(artifact, _FILE_FORMAT)
        # The run's preset, which LogMelTransform and the Trainer read from here.
        artifact_files.write_preset(examples, settings.preset)

        counts = artifact_files.read_label_info(examples.uri)["counts"]
        if counts["examples"] == 0:
            raise DatasetError(
                reports.no_examples_message(
                    custom_config.dataset_source(input_base, settings),
                    reports.read_skipped_files(report),
                )
            )
        _LOGGER.info(
            "Audio ExampleGen wrote %d examples, skipped %d file(s) (see %s).",
            counts["examples"],
            counts["skipped_files"],
            report,
        )
