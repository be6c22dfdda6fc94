"""The TFX Trainer and `mer experiment` train the same model: one recipe, not two.

On a tiny 4Q folder, the real AudioExampleGen and LogMelTransform write TFRecords
(LocalDagRunner); the real Trainer executor (`components.trainer.Executor` calling
`pipeline.trainer_module.run_fn`) trains on their train split. The protocol's fold
runner then trains on the same audio (through its own feature cache) with the same
seed, its fold's training songs being the Trainer's train split. With op determinism
on, both must pick the same validation songs and end with the same weights.

Tolerance: the two read their log-mels by different paths (TFRecords written by
Beam, a NumPy cache), both through `mer_tfx.features.clip_to_log_mel_segments`;
on the 2-core Xeon the embeddings and every weight came out bit-identical (largest
difference 0.0), and ATOL below leaves room only for float32 rounding of the
features on another machine. The run happens in a subprocess because op
determinism, once on, stays on for the whole process.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ATOL = 1e-6  # float32 rounding of the features; measured 0.0 (bit-identical)
SEED = 0


def _preset():
    from mer_tfx import presets

    # 16 frames x 16 mels per 1 s segment (1 + 1000 // 66), 4 segments per song:
    # small enough for the autoencoder's three poolings and a CPU in seconds.
    return presets.Preset(
        name="tiny-parity",
        features=presets.FeatureConfig(
            sample_rate=1000, segment_seconds=1, n_fft=64, hop_length=66, n_mels=16,
            clip_seconds=4,
        ),
        model=presets.ModelConfig(encoder_filters=(8, 4, 2), rnn_units=8, dropout=0.0),
        training=presets.TrainingConfig(
            ae_learning_rate=3e-3, ae_batch_size=16, ae_max_epochs=3, head_learning_rate=1e-2,
            head_batch_size=4, head_max_epochs=3, patience=3, freq_mask_param=4,
            time_mask_param=4,
        ),
    )


def _write_examples(work: Path, data_root: Path, preset) -> str:
    from tfx import v1 as tfx

    from components import AudioExampleGen, LogMelTransform

    example_gen = AudioExampleGen(str(data_root), preset=preset)
    transform = LogMelTransform(examples=example_gen.outputs["examples"])
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name="parity", pipeline_root=str(work / "pipeline"),
        components=[example_gen, transform], enable_cache=False,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(work / "metadata.sqlite"))))
    (uri,) = glob.glob(str(work / "pipeline" / "LogMelTransform" / "examples" / "*"))
    return uri


def _run_trainer(work: Path, examples_uri: str, preset) -> None:
    from tfx.proto import trainer_pb2
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import proto_utils

    from components.trainer import Executor

    examples = standard_artifacts.Examples()
    examples.uri = examples_uri
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    model = standard_artifacts.Model()
    model.uri = str(work / "model")
    model_run = standard_artifacts.ModelRun()
    model_run.uri = str(work / "model_run")
    Executor().Do(
        {"examples": [examples]},
        {"model": [model], "model_run": [model_run]},
        {
            "train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs(num_steps=0)),
            "eval_args": proto_utils.proto_to_json(trainer_pb2.EvalArgs(num_steps=0)),
            "custom_config": json.dumps(
                {"preset": preset.to_dict(), "seed": SEED, "val_fraction": 0.25}),
            "run_fn": "pipeline.trainer_module.run_fn",
        },
    )


def _run_fold_runner(work: Path, data_root: Path, preset, trainer_songs) -> None:
    from mer_tfx import recipe
    from mer_tfx.datasets import read_dataset
    from mer_tfx.experiment.features_cache import build_feature_caches
    from mer_tfx.experiment.fold_runner import FoldRunner
    from mer_tfx.experiment.folds import FoldSplit, fold_seed

    records = read_dataset(data_root).records
    cache = build_feature_caches([(r.song_id, r.path) for r in records],
                                 features={"parity": preset.features}, cache_dir=work / "cache",
                                 progress=False)["parity"]
    by_id = {r.song_id: r for r in records}
    ids = np.array(cache.song_ids)
    labels = {"valence": np.array([by_id[s].valence_high for s in ids]),
              "arousal": np.array([by_id[s].arousal_high for s in ids])}
    strata = recipe.stratification_labels(labels, targets=("valence", "arousal"))
    side = np.flatnonzero(np.isin(ids, trainer_songs))
    fit, val = recipe.validation_split(ids[side], strata[side], fraction=0.25,
                                       seed=fold_seed(SEED, 0, 0))
    split = FoldSplit(round=0, fold=0, train=np.sort(side[fit]), val=np.sort(side[val]),
                      test=np.flatnonzero(~np.isin(ids, trainer_songs)))
    runner = FoldRunner(dataset="4q", targets=("valence", "arousal"), heads=("bilstm",),
                        labels=labels, song_ids=ids, strata=strata, seed=SEED,
                        val_fraction=0.25, max_ae_epochs=None, max_head_epochs=None,
                        mixed_precision=False, progress=False)
    runner.run(preset=preset, variant="mask-mean", split=split, log_mels=cache.log_mels)


def _max_difference(a, b) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


def main(work: Path) -> dict:
    """Both trainings; returns what the test compares (JSON-able)."""
    import keras
    import tensorflow as tf

    from components.conftest import make_4q
    from mer_tfx import recipe

    preset = _preset()
    data_root = make_4q(work / "4q", per_quadrant=4, corrupt=False)["root"]
    examples_uri = _write_examples(work, data_root, preset)

    tf.config.experimental.enable_op_determinism()
    results = []
    train_heads = recipe.train_heads

    def capture(*args, **kwargs):
        results.append(train_heads(*args, **kwargs))
        return results[-1]

    recipe.train_heads = capture
    keras.utils.set_random_seed(SEED)
    _run_trainer(work, examples_uri, preset)
    trainer = results[-1]
    keras.utils.set_random_seed(SEED)
    _run_fold_runner(work, data_root, preset, trainer.song_ids)
    runner = results[-1]

    def weights(result, head):
        return ([w for w in result.encoder.get_weights()]
                + [w for t in ("valence", "arousal") for w in result.head(t, head).get_weights()])

    return {
        "results": len(results),
        "exported": (work / "model" / "Format-Serving" / "saved_model.pb").is_file(),
        # The executor found label_info.json through the examples artifact; the export has it.
        "label_info": [json.loads(Path(examples_uri, "label_info.json").read_text()),
                       json.loads((work / "model" / "Format-Serving" / "assets.extra"
                                   / "label_info.json").read_text())],
        "fit": [sorted(r.song_ids[r.fit].tolist()) for r in (trainer, runner)],
        "val": [sorted(r.song_ids[r.val].tolist()) for r in (trainer, runner)],
        "ae_epochs": [r.autoencoder.epochs for r in (trainer, runner)],
        "embedding_difference": _max_difference([trainer.fit_embeddings],
                                                [runner.fit_embeddings]),
        "weight_difference": _max_difference(weights(trainer, recipe.DEFAULT_HEAD),
                                             weights(runner, "bilstm")),
    }


@pytest.mark.e2e
def test_trainer_and_fold_runner_train_the_same_weights(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "CUDA_VISIBLE_DEVICES": "-1",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, __file__, str(tmp_path)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["results"] == 2 and out["exported"]
    assert out["label_info"][0] == out["label_info"][1] and out["label_info"][0]["counts"]
    trainer_fit, runner_fit = out["fit"]
    assert trainer_fit == runner_fit and out["val"][0] == out["val"][1]
    assert len(trainer_fit) > 0 and len(out["val"][0]) > 0
    assert out["ae_epochs"][0] == out["ae_epochs"][1]
    assert out["embedding_difference"] <= ATOL
    assert out["weight_difference"] <= ATOL, out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
