"""Copies the model a pipeline run pushed into the package, with its eval split and card.

Usage (after `bash scripts/pipeline.sh --data /data/4q --seed 1 --output runs/ship`):

    .venv/bin/python scripts/ship_model.py --pipeline-output runs/ship --data /data/4q --seed 1

What it writes into `mer_tfx/pretrained/` (the folder `mer predict`, `mer serve`,
`mer score` and `mer_tfx.predict` fall back to):

- `mer/<version>/`: the pushed SavedModel, unchanged (older shipped versions are removed);
- `eval_split.csv`: the run's eval-split songs (the Evaluator's gate data), with their
  labels and the shipped model's probabilities on the transform's log-mels;
- `MODEL_CARD.md`: the card, its metric table computed from `eval_split.csv` (the script
  stops if those differ from the Evaluator's figures for the same songs by over 0.01 points).

The card's 10-fold figures are `docs/results.md`'s headline table, copied as it stands.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEST = ROOT / "mer_tfx" / "pretrained"

RESULTS_PAGE = ROOT / "docs" / "results.md"


def cross_validation_table() -> str:
    """The headline table of docs/results.md (between its markers), for the card."""
    text = RESULTS_PAGE.read_text()
    start = text.index("<!-- headline-table:start -->") + len("<!-- headline-table:start -->")
    return text[start:text.index("<!-- headline-table:end -->")].strip()


def latest_dir(pattern: str) -> Path:
    """The numerically largest folder matching `pattern` (TFX execution ids, push versions)."""
    found = [Path(p) for p in glob.glob(pattern) if Path(p).name.isdigit()]
    if not found:
        sys.exit(f"ship_model: nothing matches {pattern}")
    return max(found, key=lambda p: int(p.name))


def read_eval_split(transform_dir: Path) -> list[dict]:
    """Song id, labels and serialized log-mel Example of every eval-split song."""
    import tensorflow as tf

    from mer_tfx.contract import AROUSAL_HIGH, QUADRANT, SONG_ID, VALENCE_HIGH

    files = sorted(glob.glob(str(transform_dir / "Split-eval" / "*")))
    songs = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        feature = example.features.feature
        songs.append({
            "song_id": feature[SONG_ID].bytes_list.value[0].decode(),
            "quadrant": feature[QUADRANT].bytes_list.value[0].decode(),
            "valence_high": int(feature[VALENCE_HIGH].int64_list.value[0]),
            "arousal_high": int(feature[AROUSAL_HIGH].int64_list.value[0]),
            "example": record.numpy(),
        })
    return sorted(songs, key=lambda s: s["song_id"])


def score(songs: list[dict], version_dir: Path) -> None:
    """Adds the shipped model's probabilities (serving_examples signature) to each song."""
    import tensorflow as tf

    from mer_tfx.contract import SERVING_EXAMPLES

    signature = tf.saved_model.load(str(version_dir)).signatures[SERVING_EXAMPLES]
    for start in range(0, len(songs), 16):
        batch = songs[start:start + 16]
        out = signature(examples=tf.constant([s["example"] for s in batch]))
        for song, v, a in zip(batch, out["valence"].numpy(), out["arousal"].numpy(), strict=True):
            song["valence_probability"] = float(v)
            song["arousal_probability"] = float(a)


def metrics(rows: list[dict]) -> dict:
    """Accuracy and positive-class F1 per target, quadrant accuracy and macro-F1, in %."""
    from sklearn.metrics import accuracy_score, f1_score

    from mer_tfx.labels import binary_to_quadrant

    result = {"songs": len(rows)}
    for target in ("valence", "arousal"):
        truth = [int(r[f"{target}_high"]) for r in rows]
        predicted = [int(float(r[f"{target}_probability"]) > 0.5) for r in rows]
        result[f"{target}_accuracy"] = 100 * accuracy_score(truth, predicted)
        result[f"{target}_f1"] = 100 * f1_score(truth, predicted)
    truth_q = [r["quadrant"] for r in rows]
    predicted_q = [binary_to_quadrant(int(float(r["valence_probability"]) > 0.5),
                                      int(float(r["arousal_probability"]) > 0.5)) for r in rows]
    result["quadrant_accuracy"] = 100 * accuracy_score(truth_q, predicted_q)
    result["quadrant_macro_f1"] = 100 * f1_score(truth_q, predicted_q, average="macro")
    return result


def evaluator_metrics(evaluator_dir: Path) -> dict:
    """The Evaluator's overall accuracy and F1 per target (TFMA), in %."""
    import tensorflow_model_analysis as tfma

    found = {}
    for record in tfma.load_metrics(str(evaluator_dir)):
        if tfma.slicer.deserialize_slice_key(record.slice_key):
            continue
        for kv in record.metric_keys_and_values:
            key = kv.key
            if key.HasField("sub_key") or key.is_diff or not kv.value.HasField("double_value"):
                continue
            if key.name in ("binary_accuracy", "f1_score"):
                name = "accuracy" if key.name == "binary_accuracy" else "f1"
                found[f"{key.output_name}_{name}"] = 100 * kv.value.double_value.value
    return found


CARD = """# Model card: the shipped 4Q model (`mer`, version {version})

Read this before you use the model that `mer predict`, `mer serve`, `mer score` and
`mer_tfx.predict` fall back to when you give them none: what it was trained on, how well
it does, what it is not for, and how to rebuild it.

## What it is

He & Ferguson's segment-level two-stage model (the `{preset}` preset: 5 s segments,
log-mel 128 x 216, a convolutional autoencoder pretrained with SpecAugment masks, then a
BiLSTM per target on the frozen encoder's embeddings), exported as a TF Serving SavedModel
({size_mb:.1f} MB, no optimizer state). It answers, for a 30 s excerpt (shorter clips are
looped, longer ones cut), the probability of high **valence** and of high **arousal**, and
the quadrant they imply (Q1 +V+A, Q2 -V+A, Q3 -V-A, Q4 +V-A). The encoder and heads also
load as Keras models: `mer_tfx.export.load_keras_models("{rel_version}")`.

## Training data and terms

- **Data**: {songs_total} clips of the 4Q audio emotion dataset (Panda, Malheiro & Paiva,
  "Novel audio features for music emotion recognition", IEEE TAFFC 2018), the paper's
  "AllMusic" set: 30 s AllMusic previews, {per_quadrant} per quadrant, labelled by quadrant.
  The pipeline's ExampleGen puts each song in the train or eval split by a hash of its id
  (8:2): {train_songs} songs train it (of which {validation_percent} % decide early stopping), {eval_songs}
  are held out for the gate.
- **Terms**: the weights are for research use only, because the clips are
  ([WEIGHTS_TERMS.md](WEIGHTS_TERMS.md)); the code is Apache-2.0 (`LICENSE`).

## How good it is

On the run's eval split ({eval_songs} songs no part of its training saw; in
[eval_split.csv](eval_split.csv) with each song's labels and probabilities):

| | valence accuracy | valence F1 (high) | arousal accuracy | arousal F1 (high) | quadrant accuracy | quadrant macro-F1 |
|---|---|---|---|---|---|---|
| this model | {valence_accuracy:.2f} | {valence_f1:.2f} | {arousal_accuracy:.2f} | {arousal_f1:.2f} | {quadrant_accuracy:.2f} | {quadrant_macro_f1:.2f} |
| majority class | {majority_valence:.2f} | {majority_valence_f1:.2f} | {majority_arousal:.2f} | {majority_arousal_f1:.2f} | {majority_quadrant:.2f} | - |

The Evaluator's own figures for the same songs (TFMA, the gate's input): valence
{ev_valence_accuracy:.2f} / F1 {ev_valence_f1:.2f}, arousal {ev_arousal_accuracy:.2f} /
F1 {ev_arousal_f1:.2f}; the gate (accuracy at least {gate_accuracy} and F1 at least {gate_f1} on
both targets) passed: the Pusher pushes only a blessed model.
{note}
With {eval_songs} songs a figure moves by about {stderr:.0f} points (one standard error), so
the cross-validated figures of the method say more; they are those of the project's results
page (`docs/results.md`), copied here when the model is shipped:

{cv_table}

<details><summary>The eval split's {eval_songs} song ids (4Q / AllMusic ids)</summary>

{song_ids}

</details>

## What it is not for

- Not for decisions about people, nor for any commercial use (the weights' terms).
- Not a mood tagger: it answers two binary questions (high or low valence, high or low
  arousal) for Western popular music previews like AllMusic's; on other music, speech, or
  audio far from 30 s excerpts of produced songs it has not been measured.
- Not calibrated: a probability of 0.55 is a weak answer, not a 55 % chance; the timeline
  plot names a quadrant only where both probabilities are clear of 0.5.
- Valence is the hard target (the cross-validated figures above: well under arousal's);
  treat single answers with
  care and prefer averages over many songs.

## Rebuild it

```bash
bash scripts/pipeline.sh --data /path/to/4q --seed {seed} --output runs/ship
.venv/bin/python scripts/ship_model.py --pipeline-output runs/ship --data /path/to/4q --seed {seed}
```

Trained on a 2-core CPU (no GPU) in {minutes} by the pipeline at commit {commit}.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline-output", required=True, type=Path)
    parser.add_argument("--data", required=True, help="the dataset the run trained on")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--minutes", type=float, default=None,
                        help="the run's wall time in minutes, for the card")
    parser.add_argument("--commit", default="(not recorded)")
    parser.add_argument("--dest", type=Path, default=DEST)
    parser.add_argument("--note", default="", help="a paragraph for the card's figures, e.g. which seeds were tried")
    args = parser.parse_args(argv)

    out = args.pipeline_output
    pushed = latest_dir(str(out / "serving_model" / "mer" / "*"))
    base = args.dest / "mer"
    if base.exists():
        shutil.rmtree(base)
    version_dir = base / pushed.name
    shutil.copytree(pushed, version_dir)
    print(f"ship_model: copied {pushed} -> {version_dir}")

    tfx = out / "tfx" / "mer-tfx"
    songs = read_eval_split(latest_dir(str(tfx / "LogMelTransform" / "examples" / "*")))
    score(songs, version_dir)
    columns = ["song_id", "quadrant", "valence_high", "arousal_high",
               "valence_probability", "arousal_probability"]
    with open(args.dest / "eval_split.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        for song in songs:
            writer.writerow({**song, "valence_probability": f"{song['valence_probability']:.6f}",
                             "arousal_probability": f"{song['arousal_probability']:.6f}"})
    rows = list(csv.DictReader(open(args.dest / "eval_split.csv")))
    figures = metrics(rows)
    evaluator = evaluator_metrics(latest_dir(str(tfx / "Evaluator" / "evaluation" / "*")))
    print("ship_model: eval split", json.dumps(figures), "evaluator", json.dumps(evaluator))
    differ = {k: (figures[k], v) for k, v in evaluator.items() if abs(figures[k] - v) > 0.01}
    if differ:  # the card's table must be the gate's figures, from the same songs
        sys.exit(f"ship_model: the shipped model's eval-split figures differ from the Evaluator's: {differ}")

    from mer_tfx.export import read_preset
    from pipeline import configs
    from pipeline.trainer_module import VALIDATION_FRACTION

    total = sum(1 for _ in Path(args.data).glob("Q*/*.mp3"))
    n = len(rows)
    majority = {t: max(sum(int(r[f"{t}_high"]) for r in rows), n - sum(int(r[f"{t}_high"]) for r in rows))
                for t in ("valence", "arousal")}
    high = {t: sum(int(r[f"{t}_high"]) for r in rows) for t in ("valence", "arousal")}
    quadrant_majority = max(sum(r["quadrant"] == q for r in rows) for q in ("Q1", "Q2", "Q3", "Q4"))
    size = sum(f.stat().st_size for f in version_dir.rglob("*") if f.is_file()) / 1e6

    def majority_f1(t):  # predicting "high" for every song (the tie rule), else 0
        return 0.0 if 2 * high[t] < n else 100 * 2 * high[t] / (high[t] + n)

    card = CARD.format(
        version=pushed.name, preset=read_preset(version_dir).name, size_mb=size,
        rel_version=os.path.relpath(version_dir, ROOT), songs_total=total,
        per_quadrant=total // 4, train_songs=total - n, eval_songs=n,
        **figures,
        majority_valence=100 * majority["valence"] / n, majority_arousal=100 * majority["arousal"] / n,
        majority_valence_f1=majority_f1("valence"), majority_arousal_f1=majority_f1("arousal"),
        majority_quadrant=100 * quadrant_majority / n,
        **{f"ev_{k}": v for k, v in evaluator.items()},
        stderr=100 * (0.25 / n) ** 0.5, cv_table=cross_validation_table(),
        seed=args.seed,
        minutes=("a wall time not recorded" if args.minutes is None
                 else f"{args.minutes:g} minutes"), commit=args.commit,
        validation_percent=round(100 * VALIDATION_FRACTION),
        gate_accuracy=configs.ACCURACY_THRESHOLD, gate_f1=configs.F1_THRESHOLD,
        note=f"\n{args.note}\n" if args.note else "",
        song_ids=", ".join(r["song_id"] for r in rows),
    )
    (args.dest / "MODEL_CARD.md").write_text(card)
    print(f"ship_model: wrote {args.dest / 'MODEL_CARD.md'} and eval_split.csv ({n} songs), {size:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
