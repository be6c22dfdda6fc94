"""The contract shared by every part of mer-tfx: feature keys, signatures, files, wire format.

The ExampleGen writes these tf.Example features, the LogMelTransform adds `log_mel`,
the Trainer reads them, the export parses them in `serving_examples`, the REST server
and the client speak the signature names and the WAV wire format below. Each name is
written here once; everything else imports it. This module imports nothing heavy
(no TensorFlow), so the client and the command line can use it cheaply.
"""

from __future__ import annotations

# --------------------------------------------------------------- tf.Example features
# Written by AudioExampleGen (one Example per song).
SONG_ID = "song_id"  # bytes: the dataset's song id; splits are partitioned on it
AUDIO_PATH = "audio_path"  # bytes: the source file
WAVEFORM = "waveform"  # float list: mono samples at the preset's rate, looped/cut to 30 s
SAMPLE_RATE = "sample_rate"  # int64
VALENCE_HIGH = "valence_high"  # int64 0/1: the binary valence label
AROUSAL_HIGH = "arousal_high"  # int64 0/1: the binary arousal label
QUADRANT = "quadrant"  # bytes: "Q1".."Q4"
VALENCE = "valence"  # float: the continuous label where the dataset has one (PMEmo)
AROUSAL = "arousal"  # float
GENRE = "genre"  # bytes: a metadata column (4Q), used to slice the evaluation
# Audio-level facts of each song, written by AudioExampleGen for data validation
# (StatisticsGen, ExampleValidator; docs/data.md). The level, silence and clipping
# are measured on the clip the model sees (resampled, looped/cut to the preset's length).
DURATION_SECONDS = "duration_seconds"  # float: the file's length before looping or cutting
SOURCE_SAMPLE_RATE = "source_sample_rate"  # int64: the file's own rate, before resampling
RMS_DBFS = "rms_dbfs"  # float: RMS level in dB full scale, floored at RMS_FLOOR_DBFS
SILENCE_SHARE = "silence_share"  # float in [0, 1]: share of frames quieter than SILENCE_DBFS
CLIPPING_SHARE = "clipping_share"  # float in [0, 1]: share of samples at |x| >= CLIPPING_LEVEL
RMS_FLOOR_DBFS = -120.0  # the level of digital silence (every sample zero)
SILENCE_DBFS = -60.0  # a frame below this RMS level counts as silent
SILENCE_FRAME_SECONDS = 0.05  # frames of 50 ms for the silence share
CLIPPING_LEVEL = 0.999  # a sample at or above this magnitude counts as clipped
AUDIO_LEVEL_FEATURES = (
    DURATION_SECONDS, SOURCE_SAMPLE_RATE, RMS_DBFS, SILENCE_SHARE, CLIPPING_SHARE
)
# What the pipeline's data validation looks at: the audio-level facts and the labels,
# never the waveform or log-mel tensors.
VALIDATED_FEATURES = AUDIO_LEVEL_FEATURES + (SAMPLE_RATE, VALENCE_HIGH, AROUSAL_HIGH, QUADRANT)
# Added by LogMelTransform (the waveform is dropped).
LOG_MEL = "log_mel"  # float list: [segments, frames, mels] flattened

# Names a metadata column may not take (they are the features above).
RESERVED_FEATURES = frozenset(
    {SONG_ID, AUDIO_PATH, WAVEFORM, SAMPLE_RATE, VALENCE_HIGH, AROUSAL_HIGH, QUADRANT,
     VALENCE, AROUSAL, LOG_MEL, *AUDIO_LEVEL_FEATURES}
)

# ------------------------------------------------------------------ targets and labels
# Model output name -> its label feature. Index 1 of each output is "high".
TARGETS = {"valence": VALENCE_HIGH, "arousal": AROUSAL_HIGH}
LABEL_KEYS = tuple(TARGETS.values())
# Quadrant by index valence_label + 2 * arousal_label (Russell: Q1 = +V+A, Q2 = -V+A,
# Q3 = -V-A, Q4 = +V-A).
QUADRANT_BY_INDEX = ("Q3", "Q4", "Q2", "Q1")

# --------------------------------------------------------------- SavedModel signatures
SERVING_DEFAULT = "serving_default"  # float32 waveform [batch, samples] at the model's rate
SERVING_WAV = "serving_wav"  # base64 16-bit PCM WAV bytes [batch]
SERVING_EXAMPLES = "serving_examples"  # serialized tf.Examples with LOG_MEL (TFMA)
MODEL_INFO = "model_info"  # sample rate, clip and segment seconds, preset, training data, gate
SIGNATURES = (SERVING_DEFAULT, SERVING_WAV, SERVING_EXAMPLES, MODEL_INFO)
# The served model's name: the Pusher writes <serving dir>/<MODEL_NAME>/<version>/, and
# TF Serving, `mer serve` and the client address it as /v1/models/<MODEL_NAME>.
MODEL_NAME = "mer"

# ------------------------------------------------------------------ files in artifacts
LABEL_INFO_FILE = "label_info.json"  # thresholds and counts (examples artifact, export)
SKIPPED_FILES_FILE = "skipped_files.csv"  # unreadable audio: path, song_id, reason
SKIPPED_COLUMNS = ("path", "song_id", "reason")
PRESET_FILE = "preset.json"  # the preset a transform or a model used
MODEL_INFO_FILE = "model_info.json"  # the export's `model_info` answer, readable without TF
KERAS_MODELS_FILE = "keras_models.json"  # the exported Keras models' configs (no weights)
WARMUP_FILE = "tf_serving_warmup_requests"  # TF Serving's warm-up PredictionLog records
ASSETS_EXTRA = "assets.extra"  # SavedModel folder for the files above (TF Serving reads only WARMUP_FILE)

# ------------------------------------------------------------------- audio wire format
# What `serving_wav` accepts and the client sends: RIFF/WAVE, PCM (format 1), 16 bit,
# little-endian, any channel count (averaged to mono), with the canonical 44-byte
# header ("RIFF" size "WAVE" "fmt " 16 1 channels rate byte-rate block-align 16 "data"
# size) read on a fast path; other valid WAV layouts go through tf.audio.decode_wav.
WAV_SAMPLE_WIDTH_BYTES = 2
WAV_HEADER_BYTES = 44
WAV_PCM_SCALE = 32768.0  # int16 -> float32 in [-1, 1): sample / 32768
WAV_ENCODE_SCALE = 32767.0  # float32 in [-1, 1] -> int16: round(sample * 32767), clipped
# (offset, bytes) pieces of the canonical header that must match.
WAV_CANONICAL_HEADER = (
    (0, b"RIFF"), (8, b"WAVEfmt "), (16, b"\x10\x00\x00\x00"), (20, b"\x01\x00"),
    (34, b"\x10\x00"), (36, b"data"),
)
WAV_CHANNELS_OFFSET = 22
WAV_RATE_OFFSET = 24
WAV_DATA_SIZE_OFFSET = 40

# ------------------------------------------------------- clip length, log-mel Examples
def clip_samples(*, clip_seconds: float, sample_rate: int) -> int:
    """Samples in one clip, `clip_seconds * sample_rate` rounded: what every clip is looped
    or cut to (the ExampleGen, the export's signatures, the client, the scorer)."""
    return int(round(clip_seconds * sample_rate))


def log_mel_size(features) -> int:
    """Values in one song's `LOG_MEL` feature: segments * frames * mels of `features` (a
    `mer_tfx.presets.FeatureConfig`)."""
    return features.num_segments * features.num_frames * features.n_mels


def log_mel_example_schema(features, *, with_labels: bool = False) -> dict:
    """The schema of a LogMelTransform Example: the one its readers parse with (the
    Trainer, the export's `serving_examples`), without TensorFlow.

    Args:
        features: a `mer_tfx.presets.FeatureConfig`.
        with_labels: also `SONG_ID` (bytes, "" when absent) and each of `LABEL_KEYS` (int64).

    Returns:
        {feature name: (shape, dtype name, default value)}, in `tf.io.FixedLenFeature`'s
        argument order: `{k: tf.io.FixedLenFeature(*v) for k, v in schema.items()}` is the
        `tf.io.parse_example` spec. `LOG_MEL` is float32 [segments * frames * mels].
    """
    schema = {LOG_MEL: ([log_mel_size(features)], "float32", None)}
    if with_labels:
        schema[SONG_ID] = ([], "string", "")
        schema.update({label: ([], "int64", None) for label in LABEL_KEYS})
    return schema
