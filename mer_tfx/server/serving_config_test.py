"""The files that run the real TF Serving (serving/) parse and agree with each other.

The tensorflow/serving binary cannot run here, so these tests check what can be
checked: models.config parses with TF Serving's own ModelServerConfig proto, the
batching and monitoring files parse against their proto fields, and the compose
file mounts and passes everything the config files refer to.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SERVING = Path(__file__).resolve().parents[2] / "serving"


def test_models_config_parses_with_tf_serving_proto():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse(
        (SERVING / "models.config").read_text(), model_server_config_pb2.ModelServerConfig()
    )
    (model,) = config.model_config_list.config
    assert model.name == "mer"
    assert model.base_path == "/models/serving_model/mer"
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert model.model_version_policy.latest.num_versions == 1


def _message_classes(file_name: str, messages):
    """Proto message classes built from {message name: [(name, number, type, label, type_name)]}."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2  # noqa: F401

    pool = descriptor_pool.Default()
    file_proto = descriptor_pb2.FileDescriptorProto(
        name=f"mer_test_{file_name}.proto",
        package="mer_test",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    for name, fields in messages.items():
        message = file_proto.message_type.add(name=name)
        for field_name, number, field_type, label, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=field_type, label=label)
            if type_name:
                field.type_name = type_name
    try:
        pool.Add(file_proto)
    except TypeError:
        pass  # already added by an earlier run in this process
    result = {}
    for name in messages:
        descriptor = pool.FindMessageTypeByName(f"mer_test.{name}")
        result[name] = message_factory.MessageFactory(pool).GetPrototype(descriptor)
    return result


def test_batching_parameters_parse_as_tf_serving_batching_parameters():
    from google.protobuf import descriptor_pb2, text_format

    F = descriptor_pb2.FieldDescriptorProto
    int64_value = ".google.protobuf.Int64Value"
    # Field names and types of tensorflow_serving/servables/tensorflow/session_bundle_config.proto.
    cls = _message_classes(
        "batching",
        {
            "BatchingParameters": [
                ("max_batch_size", 1, F.TYPE_MESSAGE, F.LABEL_OPTIONAL, int64_value),
                ("batch_timeout_micros", 2, F.TYPE_MESSAGE, F.LABEL_OPTIONAL, int64_value),
                ("max_enqueued_batches", 3, F.TYPE_MESSAGE, F.LABEL_OPTIONAL, int64_value),
                ("num_batch_threads", 4, F.TYPE_MESSAGE, F.LABEL_OPTIONAL, int64_value),
                (
                    "thread_pool_name",
                    5,
                    F.TYPE_MESSAGE,
                    F.LABEL_OPTIONAL,
                    ".google.protobuf.StringValue",
                ),
                ("allowed_batch_sizes", 6, F.TYPE_INT64, F.LABEL_REPEATED, None),
                ("pad_variable_length_inputs", 7, F.TYPE_BOOL, F.LABEL_OPTIONAL, None),
            ]
        },
    )["BatchingParameters"]
    params = text_format.Parse((SERVING / "batching_parameters.txt").read_text(), cls())
    assert params.max_batch_size.value >= 1
    assert params.batch_timeout_micros.value > 0
    assert params.pad_variable_length_inputs is False  # padding would alter the audio


def test_monitoring_config_parses():
    from google.protobuf import descriptor_pb2, text_format

    F = descriptor_pb2.FieldDescriptorProto
    # Field names and types of tensorflow_serving/config/monitoring_config.proto.
    cls = _message_classes(
        "monitoring",
        {
            "PrometheusConfig": [
                ("enable", 1, F.TYPE_BOOL, F.LABEL_OPTIONAL, None),
                ("path", 2, F.TYPE_STRING, F.LABEL_OPTIONAL, None),
            ],
            "MonitoringConfig": [
                (
                    "prometheus_config",
                    1,
                    F.TYPE_MESSAGE,
                    F.LABEL_OPTIONAL,
                    ".mer_test.PrometheusConfig",
                )
            ],
        },
    )["MonitoringConfig"]
    config = text_format.Parse((SERVING / "monitoring.config").read_text(), cls())
    assert config.prometheus_config.enable and config.prometheus_config.path.startswith(
        "/monitoring/"
    )


def test_compose_file_runs_tf_serving_with_the_config_files():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((SERVING / "docker-compose.yml").read_text())
    service = compose["services"]["tf-serving"]
    assert "tensorflow/serving" in service["image"]
    flags = dict(flag.lstrip("-").split("=", 1) for flag in service["command"])
    assert flags["rest_api_port"] == "8501" and flags["port"] == "8500"
    assert flags["enable_batching"] == "true"
    assert int(flags["file_system_poll_wait_seconds"]) > 0
    assert int(flags["rest_api_num_threads"]) > 0
    # "source:target:ro"; the source may hold ${VAR:-default}, so split from the right.
    mounts = {v.rsplit(":", 2)[1]: v.rsplit(":", 2)[0] for v in service["volumes"]}
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
        target = flags[flag]
        assert target in mounts, f"{flag}={target} is not mounted"
        assert (SERVING / mounts[target]).is_file()
    # The models.config base path lives inside the mounted Pusher directory.
    assert mounts["/models/serving_model"] == "${MER_SERVING_DIR:-../outputs/serving_model}"
    assert {"8501:8501", "8500:8500"} <= set(service["ports"])


def test_local_server_reads_the_shipped_models_config():
    from mer_tfx.server.rest_server import load_models_config

    (model,) = load_models_config(SERVING / "models.config")
    assert (model.name, model.base_path, model.version_policy, model.num_versions) == (
        "mer",
        "/models/serving_model/mer",
        "latest",
        1,
    )
