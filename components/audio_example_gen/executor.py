"""Executor of the audio ExampleGen: a folder of songs -> one tf.Example per song.

A file-based ExampleGen executor in TFX's shape (`BaseExampleGenExecutor`, like tfx's
`import_example_gen`): `GetInputSourceToExamplePTransform` returns `AudioToExample`,
the whole of the ingest, which `GenerateExamplesByBeam` calls once and splits on
`song_id`. The work is done by the module-level PTransforms of its neighbours:

- `custom_config`: the settings and the dataset index they name;
- `decode`: `ReadSongs` / `DecodeSongs`, files -> Examples (failures set aside);
- `splits`: the output splits and TFX's hash-bucket rule on `song_id`;
- `reports`: `WriteReports`, `label_info.json` and `skipped_files.csv`.

`GenerateExamplesByBeam` and `Do` are overridden only where TFX's have no seam for
what this ExampleGen needs; their docstrings say what and why. On the DirectRunner
the executor does not package TFX for remote workers (`components.local_beam`).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, NamedTuple

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

#: The exec property `Executor.Do` adds for `AudioToExample`, as TFX's base class adds
#: `_beam_pipeline_args` for its input transforms: the run's `IngestRun`.
RUN_KEY = "_audio_example_gen_run"


class IngestRun(NamedTuple):
    """What `Executor.Do` hands `AudioToExample` for one run (exec property `RUN_KEY`).

    Attributes:
        index: the `mer_tfx.datasets.DatasetIndex`, read once per run.
        report_uri: the folder the reports go to (the examples artifact's uri); None:
            no reports.
        progress_path: a `console.SharedProgress` file the decoding advances; None: no bar.
    """

    index: Any
    report_uri: str | None = None
    progress_path: str | None = None


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def AudioToExample(  # noqa: N802 (Beam's PTransform naming)
    pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str
) -> beam.pvalue.PCollection:
    """The songs under `exec_properties["input_base"]` as serialized tf.Examples, one per song.

    TFX's `GetInputSourceToExamplePTransform` contract. Each file is decoded once; one
    that cannot be is logged as a WARNING naming it and left out. With the `IngestRun`
    of `Executor.Do` (exec property `RUN_KEY`) it decodes that index, advances that
    progress bar and writes the reports (`reports.WriteReports`, counting each split
    by TFX's rule on `song_id`) into that folder; without one, it reads the index itself.

    `split_pattern` is not used: the dataset reader finds the audio of its layout itself.

    Raises:
        ParameterError: no output splits, or a partition feature other than `song_id`.
    """
    del split_pattern
    split_names, buckets = splits.output_splits(exec_properties)
    settings = custom_config.exec_settings(exec_properties)
    run = exec_properties.get(RUN_KEY) or IngestRun(
        custom_config.read_index(exec_properties[standard_component_specs.INPUT_BASE_KEY], settings)
    )
    decoded = pipeline | "ReadSongs" >> decode.ReadSongs(
        run.index.records, features=settings.preset.features, progress_path=run.progress_path
    )
    if run.report_uri is not None:
        by_split = decoded.songs | "SplitForReports" >> splits.PartitionBySong(split_names, buckets)
        _ = (by_split, decoded[decode.SKIPPED_TAG]) | "WriteReports" >> reports.WriteReports(
            run.report_uri,
            index=run.index,
            preset=settings.preset,
            kmeans_seed=settings.kmeans_seed,
        )
    return decoded.songs | "ToExample" >> beam.Map(lambda song: song.example)


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


def _check_examples(uri: str, *, source: str) -> None:
    """Logs what the run wrote into the artifact at `uri`.

    Raises:
        DatasetError: no song became an example; the message gives the reasons.
    """
    report = os.path.join(uri, contract.SKIPPED_FILES_FILE)
    counts = artifact_files.read_label_info(uri)["counts"]
    if counts["examples"] == 0:
        raise DatasetError(reports.no_examples_message(source, reports.read_skipped_files(report)))
    _LOGGER.info(
        "Audio ExampleGen wrote %d examples, skipped %d file(s) (see %s).",
        counts["examples"],
        counts["skipped_files"],
        report,
    )


class Executor(local_beam.LocalBeamExecutor, base_example_gen_executor.BaseExampleGenExecutor):
    """Audio ExampleGen executor (see the module docstring)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 (TFX API)
        return AudioToExample

    def GenerateExamplesByBeam(  # noqa: N802 (TFX API)
        self, pipeline: beam.Pipeline, exec_properties: Dict[str, Any]
    ) -> Dict[str, beam.pvalue.PCollection]:
        """TFX's `GenerateExamplesByBeam` with its own split (TFX documents this override
        for custom splitting): the input transform's Examples, split on `song_id`.

        TFX's partition reads `song_id` through each Example's feature map, which
        copies the whole waveform (18 ms a song); `splits.PartitionExamples` reads
        that feature alone and gives the same split.

        Raises:
            ParameterError: no output splits, or a partition feature other than `song_id`.
        """
        split_names, buckets = splits.output_splits(exec_properties)
        input_config, _ = splits.split_configs(exec_properties)
        input_to_record = self.GetInputSourceToExamplePTransform()
        return (
            pipeline
            | "InputToRecord" >> input_to_record(exec_properties, input_config.splits[0].pattern)
            | "SplitData" >> splits.PartitionExamples(split_names, buckets)
        )

    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: Dict[str, List[Any]],
        output_dict: Dict[str, List[Any]],
        exec_properties: Dict[str, Any],
    ) -> None:
        """TFX's `Do` (split names, one Beam pipeline through `GenerateExamplesByBeam`,
        a writer per split, payload and file format) with what it has no seam for.

        - It writes the splits at gzip level 0: TFX's `WriteSplit` takes no level and
          compresses at zlib's default 6, which float audio repays with files 7 %
          smaller for a large share of the ingest's CPU (`components.gzip_tfrecord`
          has the figures). TFX's `Do` docstring leaves the writing to subclasses.
        - It indexes the dataset once, here, and hands the index, the artifact's uri
          (for the reports) and the progress bar's file to `AudioToExample` as an
          `IngestRun`: the hook's arguments hold only the exec properties.
        - It draws the progress bar around the Beam run (only when the workers run
          on this machine, where they can advance it).
        - It records the preset with the artifact (`preset.json` and a custom
          property, `artifact_files.write_preset`), which LogMelTransform and the
          Trainer read, and fails with the reasons when no song became an example.

        Raises:
            DatasetError: no file could be read (the message says why for each).
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
        reports.log_index_skips(
            index.skipped, report=os.path.join(examples.uri, contract.SKIPPED_FILES_FILE)
        )

        runs_here = local_beam.runs_locally(self._beam_pipeline_args)
        with (
            console.SharedProgress(
                total=len(index.records), desc="AudioExampleGen", unit="file"
            ) as progress,
            self._make_beam_pipeline() as pipeline,
        ):
            run = IngestRun(index, examples.uri, progress.path if runs_here else None)
            properties = {**exec_properties, RUN_KEY: run}
            for name, split in self.GenerateExamplesByBeam(pipeline, properties).items():
                prefix = os.path.join(
                    artifact_utils.get_split_uri(artifacts, name),
                    write_split.DEFAULT_TF_RECORD_FILE_NAME,
                )
                _ = split | f"WriteSplit[{name}]" >> gzip_tfrecord.WriteToGzipTFRecord(prefix)
        for artifact in artifacts:
            examples_utils.set_payload_format(artifact, example_gen_pb2.FORMAT_TF_EXAMPLE)
            examples_utils.set_file_format(artifact, _FILE_FORMAT)
        artifact_files.write_preset(examples, settings.preset)
        _check_examples(examples.uri, source=custom_config.dataset_source(input_base, settings))
