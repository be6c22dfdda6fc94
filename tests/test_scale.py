"""Past one machine: the parallel ingest default, the cluster runners' Beam args, the
Kubeflow V2 spec and the Docker image it names (docs/scale.md)."""

from __future__ import annotations

import glob
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import pytest

from pipeline import beam_args

REPO = Path(__file__).resolve().parents[1]
SCALE_DOC = REPO / "docs" / "scale.md"
IMAGE = "registry.example.com/mer/mer-tfx:0.1.0"
# Example values for the placeholders of `beam_args.CLUSTER_RUNNER_ARGS`.
RUNNER_VALUES = {
    "flink": {"flink_master": "flink-jobmanager:8081", "parallelism": 8, "image": IMAGE},
    "spark": {"spark_master_url": "spark://spark-master:7077", "image": IMAGE},
    "dataflow": {
        "project": "my-project",
        "region": "europe-west1",
        "temp_location": "gs://my-bucket/beam-tmp",
        "max_num_workers": 20,
        "image": IMAGE,
    },
}
INGEST = ("AudioExampleGen", "LogMelTransform")


def _pipeline(tmp_path, **changes):
    from mer_tfx import presets
    from pipeline.factory import create_pipeline
    from pipeline.run_config import RunConfig

    changes.setdefault("data_root", str(tmp_path / "data"))
    changes["beam_pipeline_args"] = tuple(changes.get("beam_pipeline_args", ()))
    return create_pipeline(RunConfig(
        preset=presets.default(),
        pipeline_root=str(tmp_path / "root"),
        serving_model_dir=str(tmp_path / "serving" / "mer"),
        metadata_path=str(tmp_path / "m.sqlite"),
        **changes,
    ))


def _component_beam_args(pipe):
    """{component id: the Beam args it runs with} (pipeline-level args come first)."""
    return {
        c.id: list(c.executor_spec.beam_pipeline_args)
        for c in pipe.components
        if hasattr(c.executor_spec, "beam_pipeline_args")
    }


# ---------------------------------------------------------------- local parallel default


def test_ingest_runs_a_worker_per_core_by_default(tmp_path, monkeypatch):
    monkeypatch.setattr(beam_args.os, "cpu_count", lambda: 4)
    args = _component_beam_args(_pipeline(tmp_path))
    expected = ["--direct_running_mode=multi_threading", "--direct_num_workers=4"]
    assert {name: args[name] for name in INGEST} == {name: expected for name in INGEST}
    # Only the ingest: the Evaluator keeps Beam's default (one process).
    assert args["Evaluator"] == []


def test_a_one_core_machine_ingests_in_one_process(tmp_path, monkeypatch):
    monkeypatch.setattr(beam_args.os, "cpu_count", lambda: 1)
    args = _component_beam_args(_pipeline(tmp_path))
    assert [args[name] for name in INGEST] == [[], []]


@pytest.mark.parametrize(
    "user_args, added",
    [
        (["--direct_num_workers=1"], []),
        (["--direct_num_workers", "3"], ["--direct_running_mode=multi_threading"]),
        (["--direct_running_mode=multi_processing"], []),
        (["--runner=FlinkRunner", "--flink_master=host:8081"], []),
    ],
)
def test_the_users_runner_mode_or_workers_replace_the_default(
    tmp_path, monkeypatch, user_args, added
):
    monkeypatch.setattr(beam_args.os, "cpu_count", lambda: 4)
    args = _component_beam_args(_pipeline(tmp_path, beam_pipeline_args=user_args))
    for name in INGEST:
        assert args[name] == user_args + added


def test_other_user_args_keep_the_default_and_come_first(tmp_path, monkeypatch):
    monkeypatch.setattr(beam_args.os, "cpu_count", lambda: 2)
    args = _component_beam_args(_pipeline(tmp_path, beam_pipeline_args=["--temp_location=/t"]))
    assert args["AudioExampleGen"] == [
        "--temp_location=/t",
        "--direct_running_mode=multi_threading",
        "--direct_num_workers=2",
    ]


def test_a_small_local_dataset_ingests_in_one_worker(tmp_path, monkeypatch):
    monkeypatch.setattr(beam_args.os, "cpu_count", lambda: 4)
    for songs, expected in ((beam_args.THREADS_MIN_SONGS - 1, []),
                            (beam_args.THREADS_MIN_SONGS, ["--direct_num_workers=4"])):
        data = tmp_path / f"4q-{songs}"
        for index in range(songs):  # the 4Q layout; read_dataset decodes nothing
            path = data / f"Q{index % 4 + 1}" / f"MT{index:04d}.mp3"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
        args = _component_beam_args(_pipeline(tmp_path, data_root=data))
        assert [args[name][1:] for name in INGEST] == [expected, expected], songs
    # What the user asks for still wins over the dataset's size.
    args = _component_beam_args(_pipeline(tmp_path, data_root=data, ingest_workers=2))
    assert args["AudioExampleGen"][-1] == "--direct_num_workers=2"


def test_local_parallel_args_checks_the_worker_count():
    assert beam_args.local_parallel_args(0)[-1] == "--direct_num_workers=0"  # all cores
    assert beam_args.local_parallel_args(1) == []
    with pytest.raises(beam_args.ParameterError, match="workers=-1"):
        beam_args.local_parallel_args(-1)


# ---------------------------------------------------------------- cluster runners


@pytest.mark.parametrize("runner", sorted(beam_args.CLUSTER_RUNNER_ARGS))
def test_cluster_runner_args_parse_into_beam_options(runner):
    from apache_beam.options import pipeline_options as po
    from apache_beam.runners import runner as beam_runner

    args = beam_args.cluster_runner_args(runner, **RUNNER_VALUES[runner])
    options = po.PipelineOptions(args)
    known = options.get_all_options()  # unknown flags are dropped here
    assert set(beam_args.option_names(args)) <= set(known)
    standard = options.view_as(po.StandardOptions)
    assert standard.runner == {"flink": "FlinkRunner", "spark": "SparkRunner"}.get(
        runner, "DataflowRunner"
    )
    # The runner name resolves to Beam's runner class (nothing is contacted).
    assert type(beam_runner.create_runner(standard.runner)).__name__ == standard.runner
    if runner == "flink":
        flink = options.view_as(po.FlinkRunnerOptions)
        assert (flink.flink_master, flink.parallelism) == ("flink-jobmanager:8081", 8)
        assert flink.flink_version in po.FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS
        assert flink.flink_submit_uber_jar is True
    elif runner == "spark":
        spark = options.view_as(po.SparkRunnerOptions)
        assert spark.spark_master_url == "spark://spark-master:7077"
    else:
        cloud = options.view_as(po.GoogleCloudOptions)
        assert (cloud.project, cloud.region, cloud.temp_location) == (
            "my-project",
            "europe-west1",
            "gs://my-bucket/beam-tmp",
        )
        worker = options.view_as(po.WorkerOptions)
        assert (worker.sdk_container_image, worker.max_num_workers) == (IMAGE, 20)
        assert options.view_as(po.SetupOptions).sdk_location == "container"
    if runner in ("flink", "spark"):
        portable = options.view_as(po.PortableOptions)
        assert (portable.environment_type, portable.environment_config) == ("DOCKER", IMAGE)


@pytest.mark.parametrize("runner", sorted(beam_args.CLUSTER_RUNNER_ARGS))
def test_the_pipeline_builds_and_compiles_with_each_runner(tmp_path, runner):
    from tfx.dsl.compiler import compiler
    from tfx.proto.orchestration import executable_spec_pb2, pipeline_pb2

    args = beam_args.cluster_runner_args(runner, **RUNNER_VALUES[runner])
    pipe = _pipeline(tmp_path, beam_pipeline_args=args)
    ir = compiler.Compiler().compile(pipe)  # what LocalDagRunner and the others run
    deployment = pipeline_pb2.IntermediateDeploymentConfig()
    ir.deployment_config.Unpack(deployment)
    for name in (*INGEST, "Evaluator"):
        spec = executable_spec_pb2.BeamExecutableSpec()
        deployment.executor_specs[name].Unpack(spec)
        assert list(spec.beam_pipeline_args) == args  # no local default added


def test_cluster_runner_args_need_every_value():
    with pytest.raises(beam_args.ParameterError, match="parallelism"):
        beam_args.cluster_runner_args("flink", flink_master="h:8081", image=IMAGE)
    with pytest.raises(beam_args.ParameterError, match="Unknown runner"):
        beam_args.cluster_runner_args("storm")


def test_the_scale_doc_quotes_every_argument_set():
    doc = SCALE_DOC.read_text()
    for runner, template in beam_args.CLUSTER_RUNNER_ARGS.items():
        for arg in template:
            assert f"--beam-arg={arg}" in doc, (runner, arg)
    for arg in beam_args.LOCAL_PARALLEL_ARGS:
        assert arg.split("{")[0] in doc


# ---------------------------------------------------------------- Kubeflow V2 and the image


def _machine_paths(tmp_path):
    """Paths of this machine that must not appear in a spec meant for containers."""
    paths = {
        str(REPO),
        str(tmp_path),
        sys.prefix,
        tempfile.gettempdir() + "/",
        os.path.expanduser("~") + "/",
        "/work/",
        "/tmp/",
        "/root/",
        "/home/",
        "site-packages",
    }
    return sorted(p for p in paths if p not in ("/", ""))


@pytest.fixture(scope="module")
def kubeflow_spec(tmp_path_factory):
    from pipeline import kubeflow_v2_runner

    tmp = tmp_path_factory.mktemp("kfp")
    output = tmp / "spec.json"
    kubeflow_v2_runner.main(
        [
            "--image", IMAGE,
            "--pipeline-root", "gs://my-bucket/tfx",
            "--data-root", "/gcs/my-bucket/4q",
            "--serving-dir", "gs://my-bucket/serving_model/mer",
            "--preset", "4q-5s",
            "--tune",
            "--output", str(output),
        ]
    )  # fmt: skip
    return tmp, output.read_text()


def test_kubeflow_v2_spec_runs_every_component_in_the_image(kubeflow_spec):
    tmp, text = kubeflow_spec
    spec = json.loads(text)["pipelineSpec"]
    tasks = set(spec["root"]["dag"]["tasks"])
    pipe = _pipeline(tmp, enable_tuning=True)
    for component in pipe.components:
        # The resolver compiles to one resolver task per channel, prefixed by its id.
        assert any(task == component.id or task.startswith(component.id + "-") for task in tasks)
    containers = [
        e["container"] for e in spec["deploymentSpec"]["executors"].values() if "container" in e
    ]
    assert len(containers) == len(pipe.components) - 1  # all but the resolver
    assert {c["image"] for c in containers} == {IMAGE}
    # Code is named by module path, so the image's installed package provides it.
    trainer = spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]
    assert trainer["run_fn"]["runtimeValue"]["constantValue"]["stringValue"] == (
        "pipeline.trainer_module.run_fn"
    )
    assert "module_file" not in trainer
    assert json.loads(text)["runtimeConfig"]["gcsOutputDirectory"] == "gs://my-bucket/tfx"


def test_kubeflow_v2_spec_holds_no_path_of_this_machine(kubeflow_spec):
    tmp, text = kubeflow_spec
    found = [path for path in _machine_paths(tmp) if path in text]
    assert not found, f"the spec names paths of the compiling machine: {found}"


def test_kubeflow_v2_ingest_uses_the_cores_where_it_runs(kubeflow_spec):
    _, text = kubeflow_spec
    executors = json.loads(text)["pipelineSpec"]["deploymentSpec"]["executors"]
    for name in INGEST:
        assert executors[f"{name}_executor"]["container"]["args"][-2:] == [
            "--direct_running_mode=multi_threading",
            "--direct_num_workers=0",
        ]


@pytest.mark.parametrize(
    "option, value",
    [("--pipeline-root", "/srv/tfx"), ("--serving-dir", "outputs/serving"),
     ("--data-root", "data/4q")],
)  # fmt: skip
def test_kubeflow_v2_runner_refuses_paths_the_containers_cannot_see(tmp_path, option, value):
    from pipeline import kubeflow_v2_runner

    argv = {
        "--image": IMAGE,
        "--pipeline-root": "gs://b/tfx",
        "--data-root": "/gcs/b/4q",
        "--serving-dir": "gs://b/serving",
        "--output": str(tmp_path / "spec.json"),
    }
    argv[option] = value
    with pytest.raises(SystemExit, match=re.escape(option)):
        kubeflow_v2_runner.main([item for pair in argv.items() for item in pair])
    assert not (tmp_path / "spec.json").exists()


def _pin(name):
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(name + "=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{name} is not pinned in constraints.txt")


def test_dockerfile_installs_the_pinned_stack_and_this_package():
    text = (REPO / "Dockerfile").read_text()
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    (base,) = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert re.fullmatch(r"python:3\.10(\.\d+)?-slim", base)
    assert 'requires-python = ">=3.10,<3.11"' in (REPO / "pyproject.toml").read_text()
    # Beam's worker boot comes from the SDK image of the pinned Beam, same Python.
    assert f"apache/beam_python3.10_sdk:{_pin('apache-beam')}" in text
    assert "--constraint /mer-tfx/constraints.txt" in text
    copied = {
        line.split()[1] for line in lines if line.startswith("COPY ") and "--from" not in line
    }
    assert {"pyproject.toml", "mer_tfx", "components", "pipeline"} <= copied
    assert "constraints.txt" in text.split("RUN", 1)[0]  # copied before the install
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
    assert not {"mer_tfx", "components", "pipeline", "pyproject.toml", "constraints.txt"} & set(
        ignored
    )


# ---------------------------------------------------------------- two workers, same examples


def _examples(uri):
    """{(split, song_id): tf.train.Example} of an Examples artifact's uri."""
    import tensorflow as tf

    out = {}
    for path in glob.glob(os.path.join(uri, "Split-*", "*.gz")):
        split = os.path.basename(os.path.dirname(path))
        for record in tf.data.TFRecordDataset([path], compression_type="GZIP"):
            example = tf.train.Example.FromString(record.numpy())
            out[split, example.features.feature["song_id"].bytes_list.value[0]] = example
    return out


def _run_ingest(root: Path, dataset: Path, args):
    from tfx import v1 as tfx

    from components import AudioExampleGen, LogMelTransform
    from components.conftest import TINY_PRESET

    example_gen = AudioExampleGen(str(dataset), preset=TINY_PRESET)
    transform = LogMelTransform(examples=example_gen.outputs["examples"])
    for component in (example_gen, transform):
        component.with_beam_pipeline_args(list(args))
    tfx.orchestration.LocalDagRunner().run(
        tfx.dsl.Pipeline(
            pipeline_name="ingest",
            pipeline_root=str(root),
            components=[example_gen, transform],
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                str(root / "metadata.sqlite")
            ),
            enable_cache=False,
        )
    )
    return {name: _examples(glob.glob(str(root / name / "examples" / "*"))[0]) for name in INGEST}


@pytest.fixture(scope="module")
def one_worker_ingest(tmp_path_factory):
    from components.conftest import make_4q

    tmp = tmp_path_factory.mktemp("ingest")
    dataset = make_4q(tmp / "4q", per_quadrant=2)
    return dataset, _run_ingest(tmp / "one", dataset["root"], [])


@pytest.mark.e2e
@pytest.mark.parametrize(
    "args, handler",
    [
        (beam_args.local_parallel_args(2), "EmbeddedGrpcWorkerHandler"),  # the default: threads
        (
            ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
            "SubprocessSdkWorkerHandler",
        ),
    ],
    ids=["threads", "processes"],
)
def test_two_workers_write_the_same_examples_as_one(
    tmp_path, monkeypatch, one_worker_ingest, args, handler
):
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    started = []
    for name in ("EmbeddedGrpcWorkerHandler", "SubprocessSdkWorkerHandler"):
        cls = getattr(worker_handlers, name)

        def counting_start_worker(self, _start=cls.start_worker, _name=name):
            started.append(_name)
            return _start(self)

        monkeypatch.setattr(cls, "start_worker", counting_start_worker)
    dataset, one = one_worker_ingest
    two = _run_ingest(tmp_path / "two", dataset["root"], args)
    # Two workers for each component (with processes, its DoFns are pickled into them).
    assert started == [handler] * 4

    for name in INGEST:
        assert {song for _, song in one[name]} == {s.encode() for s in dataset["songs"]}
        assert sorted(two[name]) == sorted(one[name])
        for key, example in one[name].items():
            _assert_same_example(two[name][key], example, (name, key))


def _assert_same_example(got, expected, where):
    """Every feature equal, except that the log-mel may differ in its last bit.

    TensorFlow's kernels split their sums over its thread pool as the scheduling
    allows, so two worker threads calling the log-mel graph at once can round a value
    differently in float32's last place (seen on a loaded 2-core machine: at most
    6e-8 on values of order 0.01-1, in tiny songs' log-mels). Anything larger is a
    real difference; the waveforms and every other feature must match exactly.
    """
    import numpy as np

    from mer_tfx import contract

    got, expected = dict(got.features.feature), dict(expected.features.feature)
    assert sorted(got) == sorted(expected), where
    for key in expected:
        if key == contract.LOG_MEL:
            np.testing.assert_allclose(
                got[key].float_list.value, expected[key].float_list.value,
                rtol=5e-7, atol=1e-7, err_msg=str(where),
            )
        else:
            assert got[key] == expected[key], (where, key)
