"""End-to-end runs of the TFX pipeline with LocalDagRunner on tiny data.

(a) synthetic audio -> every component runs, a model is pushed in TF Serving's
    layout and the Evaluator's metrics are there;
(b) an unreachable gate (threshold 1.01) -> not blessed, nothing pushed;
(c) the same run again -> data, transform and Trainer are reused from TFX's cache;
(d) 16 real 4Q clips (4 per quadrant, mixed sample rates) -> pushed;
(e) `tfx pipeline create --engine local` accepts pipeline/local.py;
(f) a run that fails in the Trainer, started again, resumes from the cache;
(g) a preset of another segment length, given only by MER_PRESET and then only by
    --preset, reaches every component: the examples record it, the log-mel tensors
    have its shape, the export and its `model_info` name it.

Epochs are cut to 1-2 through the preset overrides: these tests check the
plumbing, not the model's quality. (a) and (d) set the gate's thresholds to 0 so
that an under-trained model is still pushed; (b) checks the gate itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ("AudioExampleGen", "LogMelTransform", "Trainer", "Evaluator", "Pusher")
QUICK = {"max_ae_epochs": 1, "max_head_epochs": 2}


def _run(data_root: Path, output: Path, *, model_name: str = "mer", environ=None, **flags):
    """`mer pipeline --data DATA --output OUTPUT` with `flags` (by their argparse names) and
    the environment `environ` (none by default: the machine's MER_* variables stay out)."""
    from pipeline.run_config import run_config_from
    from pipeline.runner import run_pipeline

    config = run_config_from({"data": str(data_root), "output": str(output),
                              "pipeline_name": "mer-tfx-test", "model_name": model_name,
                              **flags}, environ=environ or {})
    return config.layout, run_pipeline(config)


def _versions(serving_base: Path):
    if not serving_base.exists():
        return []
    return sorted(p for p in serving_base.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    from mer_tfx import synthetic

    root = tmp_path_factory.mktemp("pipeline")
    data = synthetic.make_synthetic_4q(
        root / "data", clips_per_quadrant=4, seconds=5.0, seed=0, short_clips=1, corrupt_files=1
    )
    layout, report = _run(
        Path(data), root / "out", accuracy_threshold=0.0, f1_threshold=0.0, **QUICK
    )
    return Path(data), layout, report


def _assert_pushed(layout, report):
    for name in COMPONENTS:
        assert report.nodes[name].state in {"COMPLETE", "CACHED"}, (name, report.nodes[name].state)
    assert report.blessed is True
    (version,) = _versions(layout.serving_base)
    assert version.name.isdigit()  # TF Serving loads <base>/<numeric version>/
    assert (version / "saved_model.pb").exists() and (version / "variables").is_dir()
    assert (version / "assets.extra" / "preset.json").exists()
    assert report.pushed_path == str(version)
    return version


def test_a_synthetic_pipeline_pushes_a_servable_model(synthetic_run):
    import numpy as np
    import tensorflow as tf

    from pipeline.run_report import evaluation_summary

    _, layout, report = synthetic_run
    assert all(report.nodes[name].state == "COMPLETE" for name in COMPONENTS)
    version = _assert_pushed(layout, report)
    lines = evaluation_summary(report.evaluation_uri)
    overall = [line for line in lines if line.strip().startswith("overall")]
    assert {line.split()[1] for line in overall} == {"valence", "arousal"}
    assert all("binary_accuracy=" in line and "f1_score=" in line for line in overall)
    assert report.skipped_count >= 1  # the synthetic set has a corrupt file on purpose
    from pipeline import data_validation

    # ... and a silent clip: data validation reports it, and the run still pushed (above).
    found = data_validation.summary_lines(node.outputs for node in report.nodes.values())
    assert any(": rms_dbfs: Out-of-range" in line for line in found), found
    assert any(": silence_share: Out-of-range" in line for line in found), found
    model = tf.saved_model.load(str(version))
    info = model.signatures["model_info"](unused=tf.constant([0], tf.int32))
    assert info["preset"].numpy()[0] == b"small"
    wave = (0.3 * np.sin(np.arange(22050 * 2) / 7.0)).astype(np.float32)[None]
    out = model.signatures["serving_default"](waveform=tf.constant(wave))
    assert out["quadrant"].numpy()[0] in {b"Q1", b"Q2", b"Q3", b"Q4"}


def test_b_model_failing_the_gate_is_not_pushed(synthetic_run):
    data, layout, _ = synthetic_run
    gated, report = _run(
        data, layout.output, model_name="gated", accuracy_threshold=1.01, f1_threshold=1.01, **QUICK
    )
    assert report.blessed is False
    assert report.pushed_path is None
    assert _versions(gated.serving_base) == []
    assert report.nodes["Evaluator"].state == "COMPLETE"  # a new gate: evaluated again


def test_c_second_run_reuses_the_cache(synthetic_run):
    data, layout, first = synthetic_run
    start = time.monotonic()
    again, report = _run(data, layout.output, accuracy_threshold=0.0, f1_threshold=0.0, **QUICK)
    for name in ("AudioExampleGen", "LogMelTransform", "Trainer"):
        assert report.nodes[name].state == "CACHED", (name, report.nodes[name].state)
        assert report.nodes[name].outputs == first.nodes[name].outputs
    # The Evaluator runs again only because its input changed: the first run's model
    # is now the latest blessed baseline. It compares the model with itself and passes.
    assert report.blessed is True
    assert time.monotonic() - start < first.seconds


@pytest.mark.shared_data
def test_d_real_4q_clips(real_4q_subset, tmp_path):
    layout, report = _run(
        real_4q_subset, tmp_path / "out", accuracy_threshold=0.0, f1_threshold=0.0, **QUICK
    )
    _assert_pushed(layout, report)
    assert report.skipped_count == 0


def test_e_tfx_cli_creates_the_pipeline(tmp_path, synthetic_run):
    """`tfx pipeline create --engine local --pipeline_path pipeline/local.py` accepts local.py."""
    data, _, _ = synthetic_run
    env = dict(
        os.environ, MER_DATA=str(data), MER_OUTPUT=str(tmp_path / "out"),
        LOCAL_HOME=str(tmp_path / "local_home"),
    )
    tfx_cli = Path(sys.executable).parent / "tfx"
    result = subprocess.run(
        [str(tfx_cli), "pipeline", "create", "--engine", "local",
         "--pipeline_path", str(REPO_ROOT / "pipeline" / "local.py")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'Pipeline "mer-tfx" created successfully' in result.stdout
    assert (tmp_path / "local_home" / "mer-tfx" / "pipeline_args.json").exists()


def test_f_interrupted_run_resumes_from_the_cache(synthetic_run, tmp_path):
    """A run that dies in the Trainer, started again, reuses the finished components."""
    data, _, _ = synthetic_run
    output = tmp_path / "out"
    # ae_max_epochs=0 makes the Trainer fail, as if the run had been killed there.
    with pytest.raises(Exception, match="max_epochs"):
        _run(data, output, accuracy_threshold=0.0, f1_threshold=0.0,
             max_ae_epochs=0, max_head_epochs=1)
    layout, report = _run(data, output, accuracy_threshold=0.0, f1_threshold=0.0, **QUICK)
    assert report.nodes["AudioExampleGen"].state == "CACHED"
    assert report.nodes["LogMelTransform"].state == "CACHED"
    assert report.nodes["Trainer"].state == "COMPLETE"
    _assert_pushed(layout, report)


def _assert_the_run_used(preset, layout, report):
    """Every component of the run used `preset`: the examples record it, the log-mel
    tensors have its segments x frames x mels, the export and `model_info` name it."""
    import json

    import tensorflow as tf

    from components import artifact_files
    from mer_tfx import contract

    for name in ("AudioExampleGen", "LogMelTransform"):
        node = report.nodes[name]
        assert node.properties["examples"][artifact_files.PRESET_PROPERTY] == preset.name, name
        assert artifact_files.read_preset(node.outputs["examples"][0]) == preset, name
    f = preset.features
    split = Path(report.nodes["LogMelTransform"].outputs["examples"][0], "Split-train")
    record = next(iter(tf.data.TFRecordDataset(
        [str(p) for p in split.glob("*.gz")], compression_type="GZIP")))
    example = tf.train.Example.FromString(record.numpy())
    size = len(example.features.feature[contract.LOG_MEL].float_list.value)
    assert size == f.num_segments * f.num_frames * f.n_mels
    export = Path(report.nodes["Trainer"].outputs["model"][0], "Format-Serving")
    recorded = json.loads((export / contract.ASSETS_EXTRA / contract.PRESET_FILE).read_text())
    assert recorded["name"] == preset.name and recorded["features"] == json.loads(
        preset.to_json())["features"]
    model = tf.saved_model.load(str(export))
    info = model.signatures[contract.MODEL_INFO](unused=tf.constant([0], tf.int32))
    assert info["preset"].numpy()[0] == preset.name.encode()
    assert info["segment_seconds"].numpy()[0] == f.segment_seconds
    assert report.blessed is True
    assert report.pushed_path.startswith(str(layout.serving_base))


def test_g_a_preset_given_once_reaches_every_component(synthetic_run, tmp_path):
    """The 3 s preset, first from MER_PRESET alone, then from --preset alone (the
    environment then names another, which the flag overrides)."""
    from mer_tfx import cli, presets

    three = presets.get("4q-3s-small")
    assert three.features.segment_seconds != presets.default().features.segment_seconds
    data, _, _ = synthetic_run
    gate = {"accuracy_threshold": 0.0, "f1_threshold": 0.0}
    layout, report = _run(data, tmp_path / "env", environ={"MER_PRESET": three.name},
                          **gate, **QUICK)
    _assert_the_run_used(three, layout, report)

    args = cli.command_parser("pipeline").parse_args(
        ["--preset", three.name, "--data", str(data), "--output", str(tmp_path / "flag"),
         "--pipeline-name", "mer-tfx-test", "--accuracy-threshold", "0", "--f1-threshold", "0",
         "--max-ae-epochs", "1", "--max-head-epochs", "2"])
    from pipeline.run_config import run_config_from
    from pipeline.runner import run_pipeline

    config = run_config_from(args, environ={"MER_PRESET": presets.DEFAULT_NAME})
    assert config.preset == three
    _assert_the_run_used(three, config.layout, run_pipeline(config))
