"""Named configurations: the paper's Table 1 (features), Table 2/3 (model, training).

A preset bundles everything that must agree between training, evaluation and
serving: how audio becomes log-mel segments (`FeatureConfig`), the size of the
autoencoder and the sequence head (`ModelConfig`), and the optimiser settings of
the two training stages (`TrainingConfig`).

The paper presets (`pmemo-1s` … `4q-10s`) reproduce He & Ferguson's settings.
Each also exists with a `-small` suffix: same features, a model a few hundred
times cheaper and a faster stage-2 learning rate, so that it trains in minutes
on a laptop CPU. `small` is an alias of `4q-5s-small`.

Examples:

>>> from mer_tfx import presets
>>> p = presets.get("4q-5s")
>>> p.features.sample_rate, p.features.n_fft, p.features.hop_length
(22050, 1024, 512)
>>> p.features.num_segments, p.features.num_frames
(6, 216)
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Mapping, Optional, Tuple

from mer_tfx import contract
from mer_tfx.errors import ParameterError

CLIP_SECONDS = 30
NUM_MELS = 128
# The preset a run, a component or a command uses when it is given none: the one place
# this name is written (`default()` returns the preset).
DEFAULT_NAME = "small"
NUM_FRAMES = 216


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """How a 30 s clip becomes a sequence of log-mel spectrograms.

    Args:
        sample_rate: audio is resampled to this rate (Hz).
        segment_seconds: length of each contiguous segment (s); must divide
            `clip_seconds`.
        n_fft: FFT window length in samples.
        hop_length: samples between successive frames.
        n_mels: mel bands. Defaults to 128.
        clip_seconds: every clip is looped or cut to this length. Defaults to 30.
    """

    sample_rate: int
    segment_seconds: float
    n_fft: int
    hop_length: int
    n_mels: int = NUM_MELS
    clip_seconds: float = CLIP_SECONDS

    def __post_init__(self):
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ParameterError(
                    f"{name} must be a positive integer. Received: {name}={value!r}"
                )
        if self.segment_seconds <= 0 or self.clip_seconds <= 0:
            raise ParameterError(
                "segment_seconds and clip_seconds must be positive. Received: "
                f"segment_seconds={self.segment_seconds}, clip_seconds={self.clip_seconds}"
            )
        ratio = self.clip_seconds / self.segment_seconds
        if abs(ratio - round(ratio)) > 1e-9:
            raise ParameterError(
                "segment_seconds must divide clip_seconds. Received: "
                f"segment_seconds={self.segment_seconds}, clip_seconds={self.clip_seconds}"
            )
        exact = self.segment_seconds * self.sample_rate
        if abs(exact - round(exact)) > 1e-6:
            raise ParameterError(
                "segment_seconds * sample_rate must be a whole number of samples. "
                f"Received: segment_seconds={self.segment_seconds}, "
                f"sample_rate={self.sample_rate}"
            )

    @property
    def clip_samples(self) -> int:
        """Samples in one clip (`clip_seconds * sample_rate`)."""
        return contract.clip_samples(clip_seconds=self.clip_seconds, sample_rate=self.sample_rate)

    @property
    def segment_samples(self) -> int:
        """Samples in one segment."""
        return int(round(self.segment_seconds * self.sample_rate))

    @property
    def num_segments(self) -> int:
        """Segments per clip."""
        return int(round(self.clip_seconds / self.segment_seconds))

    @property
    def num_frames(self) -> int:
        """STFT frames per segment with centred frames (librosa's default)."""
        return 1 + self.segment_samples // self.hop_length

    @property
    def spectrogram_shape(self) -> Tuple[int, int]:
        """(frames, mels) of one segment's log-mel spectrogram."""
        return (self.num_frames, self.n_mels)


# What a head may do to each segment embedding before its recurrent layer
# (`ModelConfig.head_pool`, `SequenceHead(pool=...)`).
HEAD_POOLS = ("none", "mean", "meanstd")
# The stage-2 heads by name, as `ModelConfig.rnn_type` and `.bidirectional` (`mer
# experiment --heads`); named here, where parsing the command's arguments reads them
# without importing the experiment (and TensorFlow).
HEADS = {
    "bilstm": ("lstm", True),
    "lstm": ("lstm", False),
    "gru": ("gru", False),
    "bigru": ("gru", True),
}
# The models the experiment compares (`mer experiment --variants`): the paper's, its
# masking ablations, the jointly trained baseline and the logistic-regression floor.
VARIANTS = ("mask-mean", "mask-zero", "no-mask", "baseline", "logreg")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Sizes of the autoencoder (Table 2) and the sequence head.

    Args:
        encoder_filters: filters of the three encoder convolutions. The decoder
            mirrors them. Defaults to the paper's (128, 64, 32).
        activity_l2: L2 penalty on the first convolution's output. Defaults to 1e-3.
        rnn_units: units of the recurrent head, each direction. Defaults to 512.
        rnn_type: "lstm" or "gru". Defaults to "lstm".
        bidirectional: whether the head is bidirectional. Defaults to True.
        dropout: dropout after the recurrent layer. Defaults to 0.5.
        normalize_embeddings: standardise the segment embeddings inside the head
            (`SequenceHead(normalize=True)`, adapted on the training songs), not part
            of the paper's head. Defaults to False (the paper's).
        normalize_min_songs: the recipe (`training.build_head`) standardises and
            pools (`head_pool`) only when the head is fitted on at least this many
            songs: the means and deviations of a few songs' embeddings are noise.
            Defaults to 0.
        head_pool: "none" (the paper's head), "mean" or "meanstd": the head first
            summarises each segment embedding over the encoder map's time frames
            (`SequenceHead(pool=...)`), not part of the paper's head. Defaults to "none".
    """

    encoder_filters: Tuple[int, int, int] = (128, 64, 32)
    activity_l2: float = 1e-3
    rnn_units: int = 512
    rnn_type: str = "lstm"
    bidirectional: bool = True
    dropout: float = 0.5
    normalize_embeddings: bool = False
    normalize_min_songs: int = 0
    head_pool: str = "none"

    def __post_init__(self):
        if self.head_pool not in HEAD_POOLS:
            raise ParameterError(
                f"head_pool must be one of {HEAD_POOLS}. Received: head_pool={self.head_pool!r}"
            )


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Optimiser settings of the two stages (Table 3, section 4.4).

    Args:
        ae_learning_rate: Adam learning rate of the autoencoder. Defaults to 1e-3.
        ae_batch_size: autoencoder batch size (segments). Defaults to 64.
        ae_max_epochs: upper bound on autoencoder epochs. Defaults to 200.
        ae_max_steps: upper bound on autoencoder optimiser updates (batches), or None
            for no such bound. Stage 1 then runs at most
            ceil(ae_max_steps / batches per epoch) epochs (and never more than
            `ae_max_epochs`): a budget that means the same on 30 songs and on 700,
            where an epoch bound does not. Defaults to None.
        ae_segments_per_epoch: when set, each autoencoder epoch trains on this many
            training segments drawn afresh at random (and validates on a fixed quarter
            as many); None uses every segment every epoch, as the paper does.
            Defaults to None.
        head_learning_rate: Adam learning rate of the sequence head. Defaults to 1e-5.
        head_batch_size: head batch size (songs). Defaults to 10.
        head_max_epochs: upper bound on head epochs. Defaults to 100.
        head_seeds: heads trained per target from consecutive seeds, their
            probabilities averaged (one model in `.keras` and in the SavedModel).
            Defaults to 1 (the paper's single head).
        patience: early-stopping patience (epochs) of both stages. Defaults to 10.
        ae_patience: early-stopping patience of stage 1 when set; None uses
            `patience`. Defaults to None.
        ae_min_delta: the relative drop of stage 1's monitored loss that counts as
            an improvement for early stopping (0.01: at least 1 % below the best so
            far); 0 counts any drop, as the paper. Defaults to 0.
        freq_mask_param: SpecAugment F. Defaults to 30.
        time_mask_param: SpecAugment T. Defaults to 32.
        mask_fill: "mean", "zero" or "none" (no masking). Defaults to "mean".
    """

    ae_learning_rate: float = 1e-3
    ae_batch_size: int = 64
    ae_max_epochs: int = 200
    ae_max_steps: Optional[int] = None
    ae_segments_per_epoch: Optional[int] = None
    head_learning_rate: float = 1e-5
    head_batch_size: int = 10
    head_max_epochs: int = 100
    head_seeds: int = 1
    patience: int = 10
    ae_patience: Optional[int] = None
    ae_min_delta: float = 0.0
    freq_mask_param: int = 30
    time_mask_param: int = 32
    mask_fill: str = "mean"

    def __post_init__(self):
        if self.ae_max_steps is not None and (
            isinstance(self.ae_max_steps, bool) or not isinstance(self.ae_max_steps, int)
            or self.ae_max_steps < 1
        ):
            raise ParameterError(
                f"ae_max_steps must be a positive integer or None. Received: "
                f"ae_max_steps={self.ae_max_steps!r}"
            )


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named, complete configuration."""

    name: str
    features: FeatureConfig
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()

    def replace(self, **changes) -> Preset:
        """A copy with fields of `features`, `model` or `training` changed.

        >>> get("4q-5s").replace(mask_fill="zero").training.mask_fill
        'zero'
        """
        groups = {"features": {}, "model": {}, "training": {}}
        for key, value in changes.items():
            for group in groups:
                if key in {f.name for f in dataclasses.fields(getattr(self, group))}:
                    groups[group][key] = value
                    break
            else:
                raise ParameterError(f"Unknown preset field. Received: {key}={value!r}")
        return dataclasses.replace(
            self,
            **{g: dataclasses.replace(getattr(self, g), **c) for g, c in groups.items() if c},
        )

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (used to record the preset with artifacts)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """`to_dict()` as JSON with sorted keys: how artifacts and exec properties record it."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Preset:
        """Inverse of `to_json` (and reads `preset.json` files, which are indented).

        Raises:
            ParameterError: the text is not the JSON of a preset.
        """
        try:
            return cls.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ParameterError(
                f"Malformed preset JSON ({error}). Received: {text[:200]!r}") from None

    @classmethod
    def from_dict(cls, config: dict) -> Preset:
        """Inverse of `to_dict`."""
        model = dict(config.get("model", {}))
        if "encoder_filters" in model:
            model["encoder_filters"] = tuple(model["encoder_filters"])
        return cls(
            name=config["name"],
            features=FeatureConfig(**config["features"]),
            model=ModelConfig(**model),
            training=TrainingConfig(**config.get("training", {})),
        )


# The paper's Table 1: (dataset, segment seconds) -> (sample rate, n_fft, hop_length).
_TABLE_1 = {
    ("pmemo", 1): (44100, 1024, 205),
    ("pmemo", 3): (44100, 1024, 615),
    ("pmemo", 5): (44100, 2048, 1024),
    ("pmemo", 10): (44100, 2048, 2048),
    ("4q", 3): (22050, 1024, 307),
    ("4q", 5): (22050, 1024, 512),
    ("4q", 10): (22050, 2048, 1024),
}

# A model and a schedule that fit a 2-core CPU: the same layer structure as
# Table 2 with 8 filters per convolution (the full-resolution convolutions
# dominate the cost, ~25x fewer multiply-adds than 128-64-32), a 32-unit BiLSTM,
# and a learning rate that converges in tens rather than hundreds of epochs on a
# few hundred songs. Stage 1 sees every training segment every epoch until its
# validation loss stops falling by 1 % within 5 epochs, or after 1,000 updates
# (10 epochs of a 700-clip fold; the synthetic default stops on its own first):
# on 700 4Q clips, training on to early stopping (33-84 epochs) cost 5x the time
# and scored lower on average on the validation songs of the 3 folds measured.
# The head standardises its embeddings and pools them over each segment's frames
# (mean and deviation) when fitted on at least 100 songs: both re-decided on the
# validation songs of 700 clips (seed 103); on the synthetic default's ~24 fitted
# songs standardising cost the gate. docs/results.md has the figures and commands.
SMALL_MODEL = ModelConfig(encoder_filters=(8, 8, 8), rnn_units=32, dropout=0.5,
                          normalize_embeddings=True, normalize_min_songs=100,
                          head_pool="meanstd")
SMALL_TRAINING = TrainingConfig(
    ae_learning_rate=1e-3,
    ae_batch_size=32,
    ae_max_epochs=100,
    ae_max_steps=1000,
    ae_segments_per_epoch=None,
    ae_patience=5,
    ae_min_delta=0.01,
    head_learning_rate=1e-3,
    head_batch_size=10,
    head_max_epochs=60,
    patience=10,
)


def _build_presets() -> Dict[str, Preset]:
    table = {}
    for (dataset, seconds), (rate, n_fft, hop) in _TABLE_1.items():
        features = FeatureConfig(
            sample_rate=rate, segment_seconds=seconds, n_fft=n_fft, hop_length=hop
        )
        name = f"{dataset}-{seconds}s"
        table[name] = Preset(name=name, features=features)
        table[f"{name}-small"] = Preset(
            name=f"{name}-small", features=features, model=SMALL_MODEL, training=SMALL_TRAINING
        )
    table["small"] = dataclasses.replace(table["4q-5s-small"], name="small")
    return table


PRESETS: Dict[str, Preset] = _build_presets()
PAPER_PRESETS = tuple(f"{d}-{s}s" for d, s in _TABLE_1)


def names() -> Tuple[str, ...]:
    """All preset names, sorted."""
    return tuple(sorted(PRESETS))


def get(name: str) -> Preset:
    """Looks a preset up by name.

    Raises:
        ParameterError: the name is unknown; the message lists the known names.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise ParameterError(
            f"Unknown preset. Received: name={name!r}. Known presets: {', '.join(names())}"
        ) from None


def default() -> Preset:
    """The preset used when none is given (`DEFAULT_NAME`)."""
    return get(DEFAULT_NAME)


def for_dataset(dataset: str, *, small: bool = False) -> Tuple[Preset, ...]:
    """The paper presets of one dataset ("pmemo" or "4q"), shortest segment first."""
    if dataset not in {"pmemo", "4q"}:
        raise ParameterError(f"dataset must be 'pmemo' or '4q'. Received: dataset={dataset!r}")
    suffix = "-small" if small else ""
    return tuple(get(f"{d}-{s}s{suffix}") for d, s in _TABLE_1 if d == dataset)



def resolve(preset: str | Preset | Mapping[str, Any]) -> Preset:
    """The one way to turn what a caller holds into a `Preset`.

    Accepts a preset name (`"4q-5s"`), a `Preset` (returned as it is), the dict of
    `Preset.to_dict()`, or that dict as JSON (as TFX exec properties carry it).

    Raises:
        ParameterError: an unknown name, malformed JSON, or a value of another type.
    """
    if isinstance(preset, Preset):
        return preset
    if isinstance(preset, Mapping):
        return Preset.from_dict(dict(preset))
    if isinstance(preset, str) and preset.lstrip().startswith("{"):
        return Preset.from_json(preset)
    if isinstance(preset, str):
        return get(preset)
    raise ParameterError(
        f"preset must be a preset name, a Preset or its dict. Received: preset={preset!r}"
    )
