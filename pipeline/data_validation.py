"""Data validation of the pipeline: TFDV on the audio-level features, and what it found.

    CuratedSchemaGen (pipeline/schema/schema.pbtxt) ─┬──────────────────────────┐
    AudioExampleGen -> StatisticsGen (reads only the schema's features) -> ExampleValidator

StatisticsGen computes statistics of the audio-level facts and the labels the
ExampleGen writes (never the waveform); the curated schema holds the bounds a
schema inferred from data would not have (level, silence, clipping, duration,
label values); ExampleValidator compares the two. Its anomalies are reported, they
do not stop the run: the Trainer does not wait for the validator.

TFDV has no check for a split whose label has one class (every song of the eval
split "high valence", say); `one_class_lines` adds it from the same statistics.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Mapping, Sequence

from mer_tfx import contract

SCHEMA_FILE = Path(__file__).resolve().parent / "schema" / "schema.pbtxt"
STATISTICS_KEY = "statistics"  # StatisticsGen's output
ANOMALIES_KEY = "anomalies"  # ExampleValidator's output
_STATS_FILE = "FeatureStats.pb"  # tfx.components.statistics_gen.executor.DEFAULT_FILE_NAME
_ANOMALIES_FILE = "SchemaDiff.pb"  # tfx.components.example_validator.executor.DEFAULT_FILE_NAME
_SPLIT_PREFIX = "Split-"


def validation_components(examples) -> list:
    """StatisticsGen, CuratedSchemaGen and ExampleValidator on an ExampleGen's `examples`."""
    import tensorflow_data_validation as tfdv
    from tfx import v1 as tfx

    from components.curated_schema_gen import CuratedSchemaGen

    schema = CuratedSchemaGen(schema_text=SCHEMA_FILE.read_text(encoding="utf-8"))
    # With the schema as input and `experimental_filter_read_paths`, StatisticsGen's
    # reader decodes only the schema's features (`contract.VALIDATED_FEATURES`), so the
    # waveform is never parsed into Arrow; a `feature_allowlist` would still decode it
    # (and StatsOptions' JSON cannot carry the FeaturePaths the filter needs).
    statistics = tfx.components.StatisticsGen(
        examples=examples,
        schema=schema.outputs["schema"],
        stats_options=tfdv.StatsOptions(experimental_filter_read_paths=True),
    )
    validator = tfx.components.ExampleValidator(
        statistics=statistics.outputs[STATISTICS_KEY], schema=schema.outputs["schema"]
    )
    return [schema, statistics, validator]


def _splits(uri: str, file_name: str):
    for entry in sorted(os.listdir(uri)):
        path = os.path.join(uri, entry, file_name)
        if entry.startswith(_SPLIT_PREFIX) and os.path.exists(path):
            yield entry[len(_SPLIT_PREFIX) :], path


def anomaly_lines(anomalies_uri: str) -> List[str]:
    """One line per anomaly ExampleValidator found, by split and feature."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    lines = []
    for split, path in _splits(anomalies_uri, _ANOMALIES_FILE):
        anomalies = anomalies_pb2.Anomalies.FromString(Path(path).read_bytes())
        for feature, info in sorted(anomalies.anomaly_info.items()):
            lines.append(f"  {split}: {feature}: {info.short_description} ({info.description})")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            lines.append(f"  {split}: {info.short_description} ({info.description})")
    return lines


def one_class_lines(statistics_uri: str) -> List[str]:
    """One line per split whose valence or arousal label has a single class."""
    import tensorflow_data_validation as tfdv

    lines = []
    for split, path in _splits(statistics_uri, _STATS_FILE):
        for dataset in tfdv.load_stats_binary(path).datasets:
            for feature in dataset.features:
                name = ".".join(feature.path.step)
                if name not in contract.LABEL_KEYS or not feature.HasField("num_stats"):
                    continue
                stats = feature.num_stats
                if dataset.num_examples and stats.min == stats.max:
                    lines.append(
                        f"  {split}: {name} has one class ({int(stats.min)}) in all "
                        f"{dataset.num_examples} examples"
                    )
    return lines


def summary_lines(outputs: Iterable[Mapping[str, Sequence[str]]]) -> List[str]:
    """The run summary's data-validation lines, from the components' output URIs.

    Args:
        outputs: each component's {output key: artifact URIs} (MLMD, newest run).

    Returns:
        [] when the pipeline ran no validation; otherwise a heading (the shapes
        of `mer_tfx.console.LINE_FORMATS`) and one row per anomaly or one-class
        label, or a row saying there is none.
    """
    outputs = list(outputs)
    anomalies = [uri for o in outputs for uri in o.get(ANOMALIES_KEY, [])]
    statistics = [uri for o in outputs for uri in o.get(STATISTICS_KEY, [])]
    if not anomalies and not statistics:
        return []
    found = [line for uri in anomalies for line in anomaly_lines(uri)]
    found += [line for uri in statistics for line in one_class_lines(uri)]
    if not found:
        return ["=== data validation ===", "  no anomaly in the audio-level features and labels"]
    count = f"{len(found)} anomal{'y' if len(found) == 1 else 'ies'}"
    return [f"=== data validation: {count} (reported; the run goes on) ===", *found]
