"""The real model shipped in `mer_tfx/pretrained/`: what its card says holds.

Without `../shared/data` these check the files, the signatures, `model_info` against the
card, that the answers depend on the audio, the Keras route and the size, and (e2e) install
the built wheel into a bare folder and predict with the model the wheel carries. With it,
one more test recomputes the card's eval-split figures from the audio through
`mer_tfx.predict`.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mer_tfx import pretrained

REPO = Path(__file__).resolve().parents[1]
SHARED_4Q = REPO.parent / "shared" / "data" / "4q"
HERE = REPO / "mer_tfx" / "pretrained"
MAX_MEGABYTES = 10.0


@pytest.fixture(autouse=True)
def _the_packaged_folder(monkeypatch):
    """These tests are about the files in the package, whatever MER_PRETRAINED_DIR says."""
    monkeypatch.delenv(pretrained.ENV_PRETRAINED_DIR, raising=False)


@pytest.fixture(scope="module")
def version_dir() -> Path:
    return pretrained.latest_version_dir()


@pytest.fixture(scope="module")
def card() -> str:
    return (HERE / pretrained.MODEL_CARD_FILE).read_text()


@pytest.fixture(scope="module")
def loaded(version_dir):
    import tensorflow as tf

    return tf.saved_model.load(str(version_dir))


def card_figures(card: str) -> dict:
    """The card's 'this model' row: the six figures, in %."""
    row = next(line for line in card.splitlines() if line.startswith("| this model |"))
    values = [float(cell) for cell in row.strip("|").split("|")[1:]]
    names = ("valence_accuracy", "valence_f1", "arousal_accuracy", "arousal_f1",
             "quadrant_accuracy", "quadrant_macro_f1")
    return dict(zip(names, values, strict=True))


def test_one_version_with_card_terms_and_eval_split(version_dir, card):
    assert pretrained.versions() == [int(version_dir.name)]
    assert (HERE / pretrained.WEIGHTS_TERMS_FILE).read_text().count("research") >= 1
    assert "4Q audio emotion dataset" in card and "Panda" in card
    assert "WEIGHTS_TERMS.md" in card
    rows = list(csv.DictReader(open(HERE / "eval_split.csv")))
    assert len(rows) >= 100
    assert f"{len(rows)} songs" in card


def test_size_without_optimizer_state(version_dir):
    import tensorflow as tf

    size = sum(f.stat().st_size for f in version_dir.rglob("*") if f.is_file()) / 1e6
    assert size <= MAX_MEGABYTES
    names = [name for name, _ in tf.train.list_variables(str(version_dir / "variables" / "variables"))]
    assert names and not [n for n in names if "optimizer" in n.lower()]


def test_signatures_and_model_info_match_the_card(loaded, card):
    import tensorflow as tf

    assert {"serving_default", "serving_wav", "serving_examples", "model_info"} <= set(loaded.signatures)
    info = loaded.signatures["model_info"](unused=tf.constant([0], tf.int32))
    preset = info["preset"].numpy()[0].decode()
    assert re.search(rf"the `{re.escape(preset)}` preset", card)
    assert "4Q" in info["training_data"].numpy()[0].decode()
    assert int(info["sample_rate"].numpy()[0]) == 22050


def test_different_clips_get_different_answers(loaded):
    import tensorflow as tf

    from mer_tfx import synthetic

    rate = 22050
    calm = synthetic.synthesize_clip(synthetic.plan_clip(quadrant="Q3", index=0), sample_rate=rate)
    lively = synthetic.synthesize_clip(synthetic.plan_clip(quadrant="Q1", index=0), sample_rate=rate)
    out = loaded.signatures["serving_default"](waveform=tf.constant(np.stack([calm, lively]), tf.float32))
    valence, arousal = out["valence_probability"].numpy(), out["arousal_probability"].numpy()
    assert np.all((0 <= valence) & (valence <= 1)) and np.all((0 <= arousal) & (arousal <= 1))
    assert abs(valence[0] - valence[1]) + abs(arousal[0] - arousal[1]) > 1e-3


def test_encoder_and_heads_load_as_keras_models(version_dir, loaded):
    import tensorflow as tf

    from mer_tfx.export import load_keras_models, read_preset

    encoder, valence_head, arousal_head = load_keras_models(version_dir)
    f = read_preset(version_dir).features
    log_mel = np.random.default_rng(0).uniform(0, 2, (2, f.num_segments, f.num_frames, f.n_mels))
    log_mel = log_mel.astype("float32")
    embedded = encoder(log_mel.reshape(-1, f.num_frames, f.n_mels, 1)).numpy().reshape(2, f.num_segments, -1)
    keras_valence = valence_head(embedded).numpy()[:, 1]
    from mer_tfx.contract import LOG_MEL

    examples = [tf.train.Example(features=tf.train.Features(feature={
        LOG_MEL: tf.train.Feature(float_list=tf.train.FloatList(value=song.ravel()))}))
        .SerializeToString() for song in log_mel]
    served = loaded.signatures["serving_examples"](examples=tf.constant(examples))
    np.testing.assert_allclose(keras_valence, served["valence"].numpy(), atol=1e-5)
    assert arousal_head(embedded).shape == (2, 2)


def _clip_path(song_id: str) -> Path:
    found = list(SHARED_4Q.glob(f"Q*/{song_id}.mp3"))
    assert found, f"{song_id} of the card's eval split is not in {SHARED_4Q}"
    return found[0]


@pytest.mark.skipif(not SHARED_4Q.is_dir(), reason="needs ../shared/data/4q")
def test_card_figures_recomputed_from_the_audio(card):
    from sklearn.metrics import accuracy_score, f1_score

    import mer_tfx

    rows = list(csv.DictReader(open(HERE / "eval_split.csv")))
    answers = mer_tfx.predict([str(_clip_path(r["song_id"])) for r in rows])
    expected = card_figures(card)
    for target in ("valence", "arousal"):
        truth = [int(r[f"{target}_high"]) for r in rows]
        predicted = [getattr(a, f"{target}_label") for a in answers]
        assert 100 * accuracy_score(truth, predicted) == pytest.approx(expected[f"{target}_accuracy"], abs=0.1)
        assert 100 * f1_score(truth, predicted) == pytest.approx(expected[f"{target}_f1"], abs=0.1)
    quadrants = [a.quadrant for a in answers]
    assert 100 * accuracy_score([r["quadrant"] for r in rows], quadrants) == pytest.approx(
        expected["quadrant_accuracy"], abs=0.1)


@pytest.mark.e2e
def test_the_wheel_carries_the_model_and_predicts_with_it(tmp_path):
    # Build from a copy of the tracked files, so that setuptools' build/ stays out of the checkout.
    source = tmp_path / "source"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(source)], check=True, capture_output=True, timeout=600)
    wheel = next(dist.glob("mer_tfx-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("mer_tfx/pretrained/mer/") and n.endswith("saved_model.pb") for n in names)
    assert {"pipeline/__init__.py", "components/__init__.py"} <= set(names)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=600)
    script = (
        "import numpy as np, mer_tfx, mer_tfx.pretrained as p\n"
        "print(mer_tfx.__file__)\n"
        "print(p.latest_version_dir())\n"
        "tone = np.sin(np.linspace(0, 2000, 22050 * 5)).astype('float32')\n"
        "[answer] = mer_tfx.predict([tone], sample_rate=22050)\n"
        "print(answer.quadrant, answer.valence_probability)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop(pretrained.ENV_PRETRAINED_DIR, None)
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    module_file, version_dir, answer = out.stdout.strip().splitlines()[-3:]
    assert Path(module_file).is_relative_to(target)
    assert Path(version_dir).is_relative_to(target)
    assert re.fullmatch(r"Q[1-4] [0-9.e-]+", answer)
