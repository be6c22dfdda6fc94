"""Training routines of both stages, shared by the TFX Trainer and `mer experiment`.

Stage 1 (`pretrain_autoencoder`) trains the convolutional autoencoder to
rebuild clean log-mel segments from SpecAugment-masked ones. Its encoder then
turns every segment into an embedding once (`encode_segments`), so stage 2
(`train_head`) trains the recurrent head on cached embeddings without running
the frozen encoder every epoch. `build_two_stage` assembles the encoder and the
head into one log-mel -> probabilities model for evaluation and export.
`train_baseline` trains the paper's CNN + BiLSTM baseline end to end.

All inputs are NumPy arrays in memory:

- segments / log-mels: float32 `[segments, 216, 128]` for stage 1, or
  `[songs, segments, 216, 128]` (stage 1 flattens it);
- embeddings: float32 `[songs, segments, D]` (D = 27 * 16 * filters[2]);
- labels: int `[songs]`, 0 = low, 1 = high.

Settings come from a preset (`mer_tfx.presets`, Table 3 of the paper): Adam,
batch size, epochs bound and early-stopping patience per stage. Nothing pins a
device: training runs on a GPU when TensorFlow sees one.

Examples:

>>> from mer_tfx import training
>>> ae = training.pretrain_autoencoder(train_segs, val_segs, preset="small").model
>>> emb_train = training.encode_segments(ae.encoder, train_log_mels)
>>> emb_val = training.encode_segments(ae.encoder, val_log_mels)
>>> head = training.train_head(emb_train, y_train, emb_val, y_val, preset="small").model
>>> model = training.build_two_stage(ae.encoder, head)   # [b, 6, 216, 128] -> [b, 2]

The modules: `fitting` (what both stages share: `TrainResult`, seeding, the fit with
early stopping, `epoch_bar`), `pretraining` (stage 1) and `heads` (stage 2, the
assembled model, the baseline). Import the names from here.
"""

from mer_tfx.training.fitting import (
    PresetLike,
    RelativeEarlyStopping,
    TrainResult,
    epoch_bar,
    gpu_visible,
    set_seed,
)
from mer_tfx.training.heads import (
    _compile_classifier,  # noqa: F401 (export_test compiles a head as train_head does)
    build_head,
    build_two_stage,
    train_baseline,
    train_head,
)
from mer_tfx.training.pretraining import (
    MASK_FILLS,
    VALIDATION_BATCH,
    encode_segments,
    masked_autoencoder_dataset,
    pretrain_autoencoder,
    unlabeled_log_mels,
)

__all__ = [
    "MASK_FILLS",
    "VALIDATION_BATCH",
    "PresetLike",
    "RelativeEarlyStopping",
    "TrainResult",
    "build_head",
    "build_two_stage",
    "encode_segments",
    "epoch_bar",
    "gpu_visible",
    "masked_autoencoder_dataset",
    "pretrain_autoencoder",
    "set_seed",
    "train_baseline",
    "train_head",
    "unlabeled_log_mels",
]
