"""Constants of the mer-tfx pipeline: its name, gates and paths (its default preset is
`mer_tfx.presets.DEFAULT_NAME`).

The gate: a model is pushed only when, on the eval split, the binary accuracy and
the F1 score of valence AND of arousal are at least the value thresholds, and
(once a model has been blessed before) none of those metrics is lower than the
latest blessed model's (the change threshold).

Why 0.6: the eval split is balanced by quadrant, so a model that guesses at
random scores an accuracy of about 0.5, and one that always answers "high" (or
"low") scores exactly 0.5; 0.6 rejects both while the synthetic demo's models
score 0.9-1.0. A constant "always high" model has F1 = 0.67, which is why the
accuracy threshold, not the F1 one, is the guard against it.
"""

from __future__ import annotations

from pathlib import Path

from mer_tfx import contract

PIPELINE_NAME = "mer-tfx"
MODEL_NAME = contract.MODEL_NAME  # TF Serving model name: <serving dir>/<MODEL_NAME>/<version>/

# Value thresholds of the Evaluator's gate (per target: valence and arousal).
ACCURACY_THRESHOLD = 0.6
F1_THRESHOLD = 0.6
# Change threshold: no regression against the latest blessed model (an absolute
# tolerance of -1e-10 lets an equal score pass, as in TFX's own examples).
CHANGE_THRESHOLD = -1e-10

# Label keys of the transformed tf.Examples, by model output name.
LABEL_KEYS = contract.TARGETS
SLICE_FEATURES = (contract.GENRE,)
EVAL_SIGNATURE = contract.SERVING_EXAMPLES

# Tuner defaults: few trials, it only searches the stage-2 head.
TUNER_TRIALS = 4

# Output layout under the output folder (`mer pipeline --output`, env MER_OUTPUT);
# `pipeline.layout.Layout` is the one place that joins these into paths.
ENV_DATA = "MER_DATA"  # the dataset when none is given (else the synthetic one)
ENV_OUTPUT = "MER_OUTPUT"  # the output folder when none is given
ENV_PRESET = "MER_PRESET"  # the preset when none is given (`pipeline.run_config`)
DEFAULT_OUTPUT = Path("outputs")  # relative: under the current folder, not the package's
PIPELINE_ROOT_DIR = "tfx"  # <output>/tfx/<pipeline name>/... artifacts
METADATA_FILE = "metadata.sqlite"  # <output>/tfx/metadata.sqlite
SERVING_DIR = "serving_model"  # <output>/serving_model/<MODEL_NAME>/<version>/
SYNTHETIC_DIR = "synthetic_data"  # <output>/synthetic_data when no data is given
