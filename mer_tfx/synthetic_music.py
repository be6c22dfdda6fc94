"""The music of the synthetic dataset: one clip's plan and its audio.

`plan_clip` draws a clip's musical choices (mode, tonic, tempo, timbre, loudness,
progression) from a generator seeded by (seed, quadrant, clip index);
`synthesize_clip` renders them. How the quadrant sets the cues (mode for valence;
tempo, loudness and brightness for arousal) is described in `mer_tfx.synthetic`,
which writes these clips as a dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from mer_tfx.errors import ParameterError

QUADRANTS = ("Q1", "Q2", "Q3", "Q4")
# quadrant -> (valence_high, arousal_high); Russell: Q1 +V+A, Q2 -V+A, Q3 -V-A, Q4 +V-A.
_QUADRANT_BITS = {"Q1": (1, 1), "Q2": (0, 1), "Q3": (0, 0), "Q4": (1, 0)}

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)  # natural minor
# Chord progressions as scale degrees (0 = tonic), one chord per bar.
MAJOR_PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (0, 3, 0, 4), (0, 5, 1, 4))
MINOR_PROGRESSIONS = ((0, 5, 2, 6), (0, 3, 4, 0), (0, 3, 6, 2), (0, 5, 3, 4), (0, 6, 5, 6))

_TABLE_SIZE = 4096


@dataclass(frozen=True)
class ClipPlan:
    """The musical choices behind one synthetic clip (all drawn from its seed).

    Attributes:
        quadrant: "Q1".."Q4".
        mode: "major" (high valence) or "minor" (low valence).
        tonic_midi: MIDI note number of the tonic (its pitch class is the key).
        tempo_bpm: beats per minute.
        progression: scale degrees of the chords, one per bar, repeated.
        harmonics: harmonics in the instruments' timbre (brightness).
        rolloff: harmonic amplitude ~ 1 / h**rolloff (higher = darker).
        target_rms: loudness of the mix before peak limiting.
        drums: whether percussive noise bursts play on the beat.
        seconds: duration.
    """

    quadrant: str
    mode: str
    tonic_midi: int
    tempo_bpm: float
    progression: Tuple[int, ...]
    harmonics: int
    rolloff: float
    target_rms: float
    drums: bool
    seconds: float


def plan_clip(*, quadrant: str, index: int, seed: int = 0, seconds: float = 30.0) -> ClipPlan:
    """Draws the musical parameters of clip `index` of `quadrant` for a given seed."""
    if quadrant not in _QUADRANT_BITS:
        raise ParameterError(
            f"quadrant must be one of {QUADRANTS}. Received: quadrant={quadrant!r}"
        )
    valence_high, arousal_high = _QUADRANT_BITS[quadrant]
    rng = _clip_rng(seed=seed, quadrant=quadrant, index=index)
    if arousal_high:
        tempo = rng.uniform(140.0, 170.0)
        harmonics = int(rng.integers(6, 13))
        rolloff = rng.uniform(0.7, 1.3)
        target_rms = rng.uniform(0.11, 0.22)
    else:
        tempo = rng.uniform(60.0, 80.0)
        harmonics = int(rng.integers(1, 5))
        rolloff = rng.uniform(1.4, 2.6)
        target_rms = rng.uniform(0.035, 0.12)
    progressions = MAJOR_PROGRESSIONS if valence_high else MINOR_PROGRESSIONS
    progression = progressions[int(rng.integers(len(progressions)))]
    return ClipPlan(
        quadrant=quadrant,
        mode="major" if valence_high else "minor",
        # Higher register for high valence (pitch height is a second, weaker cue that a
        # model can pick up from a spectrogram); the ranges overlap by two semitones.
        tonic_midi=int(rng.integers(59, 71) if valence_high else rng.integers(50, 62)),
        tempo_bpm=float(tempo),
        progression=tuple(int(d) for d in progression),
        harmonics=harmonics,
        rolloff=float(rolloff),
        target_rms=float(target_rms),
        drums=bool(arousal_high),
        seconds=float(seconds),
    )


def _clip_rng(*, seed: int, quadrant: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), QUADRANTS.index(quadrant), int(index)])


def _midi_to_hz(midi: np.ndarray) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, np.float64) - 69.0) / 12.0)


def _wavetable(
    *, harmonics: int, rolloff: float, odd_boost: float, max_hz: float, sample_rate: int
) -> np.ndarray:
    """One period of a harmonic tone, band-limited below 0.45 * sample_rate at `max_hz`."""
    usable = max(1, min(harmonics, int(0.45 * sample_rate / max_hz)))
    h = np.arange(1, usable + 1, dtype=np.float64)
    amps = h**-rolloff * np.where(h % 2 == 1, 1.0, 1.0 - odd_boost)
    phase = np.arange(_TABLE_SIZE, dtype=np.float64) / _TABLE_SIZE
    table = (amps[:, None] * np.sin(2 * np.pi * h[:, None] * phase[None, :])).sum(axis=0)
    return (table / np.max(np.abs(table))).astype(np.float32)


def _voice(
    *,
    onsets: np.ndarray,
    pitches: np.ndarray,
    amps: np.ndarray,
    num_samples: int,
    sample_rate: int,
    tables: List[np.ndarray],
    attack_s: float,
    decay_s: float,
) -> np.ndarray:
    """Renders notes that start together in every voice (a line, or block chords).

    Args:
        onsets: int [notes], ascending sample positions, the first 0.
        pitches: MIDI numbers [voices, notes].
        amps: [notes] note amplitudes.
        tables: one wavetable per voice.

    Each note lasts until the next onset; its envelope (linear attack,
    exponential decay, 20 ms linear release) is computed once per distinct note
    length and copied, which keeps rendering a few passes over the samples.
    """
    keep = onsets < num_samples  # the last bar may run past the end
    onsets, pitches, amps = onsets[keep], pitches[:, keep], amps[keep]
    lengths = np.diff(np.append(onsets, num_samples))
    ramp = np.arange(int(lengths.max()), dtype=np.float32)
    base = np.minimum(ramp / np.float32(attack_s * sample_rate), 1.0) * np.exp(
        -ramp / np.float32(decay_s * sample_rate)
    )
    release = max(1, int(0.02 * sample_rate))
    curves = {}
    env_parts, time_parts = [], []
    for length, amp in zip(lengths.tolist(), amps.tolist(), strict=True):
        curve = curves.get(length)
        if curve is None:
            curve = base[:length].copy()
            r = min(release, length)
            curve[length - r :] *= np.arange(r, 0, -1, dtype=np.float32) / release
            curves[length] = curve
        env_parts.append(curve * np.float32(amp))
        time_parts.append(ramp[:length])
    env = np.concatenate(env_parts)
    t = np.concatenate(time_parts)  # samples since the note's onset
    out = np.zeros(num_samples, np.float32)
    for voice_pitches, table in zip(pitches, tables, strict=True):
        # Phase restarts at each onset (where the envelope is 0), so no running sum is needed.
        increment = (_midi_to_hz(voice_pitches) * (_TABLE_SIZE / sample_rate)).astype(np.float32)
        index = (t * np.repeat(increment, lengths)).astype(np.int32) & (_TABLE_SIZE - 1)
        out += table[index]
    return out * env


def _tile_bars(template: np.ndarray, *, bar_onsets: np.ndarray, num_samples: int) -> np.ndarray:
    """Repeats a one-bar template at each bar onset, cut to `num_samples`."""
    lengths = np.diff(np.append(bar_onsets[bar_onsets < num_samples], num_samples))
    return np.concatenate([template[:length] for length in lengths.tolist()])


def synthesize_clip(
    plan: ClipPlan, *, sample_rate: int = 22050, seed: int = 0, index: int = 0
) -> np.ndarray:
    """Renders a `ClipPlan` as audio.

    Args:
        plan: from `plan_clip`.
        sample_rate: output rate in Hz. Defaults to 22050.
        seed: the dataset seed (drives the melody, timbre details and noise).
        index: the clip index within its quadrant.

    Returns:
        float32 [round(plan.seconds * sample_rate)] with peak < 1.
    """
    rng = _clip_rng(seed=seed, quadrant=plan.quadrant, index=index + 1_000_000)
    num_samples = int(round(plan.seconds * sample_rate))
    beat = 60.0 / plan.tempo_bpm
    beat_samples = beat * sample_rate
    bar_samples = 4 * beat_samples
    num_bars = int(np.ceil(num_samples / bar_samples))
    scale = np.array(MAJOR_SCALE if plan.mode == "major" else MINOR_SCALE)
    high_arousal = plan.drums
    attack = rng.uniform(0.003, 0.012) if high_arousal else rng.uniform(0.08, 0.25)
    odd_boost = rng.uniform(0.0, 0.8)
    # Melody an octave up more often in major (pitch height again, with overlap).
    register = 12 if rng.uniform() < (0.7 if plan.mode == "major" else 0.3) else 0

    def degree_to_midi(degree: np.ndarray, octave: int) -> np.ndarray:
        degree = np.asarray(degree)
        return plan.tonic_midi + 12 * (octave + degree // 7) + scale[degree % 7]

    chords = np.array([plan.progression[b % len(plan.progression)] for b in range(num_bars)])
    bar_onsets = np.round(np.arange(num_bars) * bar_samples).astype(np.int64)

    def table(max_midi: float, boost: float = odd_boost) -> np.ndarray:
        return _wavetable(
            harmonics=plan.harmonics,
            rolloff=plan.rolloff,
            odd_boost=boost,
            max_hz=float(_midi_to_hz(max_midi)),
            sample_rate=sample_rate,
        )

    mix = np.zeros(num_samples, np.float32)
    # Pad: the triad of each bar's chord, three sustained voices.
    pad_pitches = np.stack([degree_to_midi(chords + 2 * voice, 0) for voice in range(3)])
    mix += 0.3 * _voice(
        onsets=bar_onsets,
        pitches=pad_pitches,
        amps=np.full(num_bars, 1.0),
        num_samples=num_samples,
        sample_rate=sample_rate,
        tables=[table(p.max()) for p in pad_pitches],
        attack_s=attack * 2,
        decay_s=4 * beat,
    )
    # Bass: the chord root an octave down, on every beat (high arousal) or every bar.
    per_bar = 4 if high_arousal else 1
    bass_onsets = np.round(np.arange(num_bars * per_bar) * bar_samples / per_bar).astype(np.int64)
    bass_pitches = degree_to_midi(np.repeat(chords, per_bar), -1)
    mix += 0.45 * _voice(
        onsets=bass_onsets,
        pitches=bass_pitches[np.newaxis],
        amps=np.full(len(bass_onsets), 1.0),
        num_samples=num_samples,
        sample_rate=sample_rate,
        tables=[table(bass_pitches.max(), boost=0.0)],
        attack_s=attack,
        decay_s=beat * (1.0 if high_arousal else 3.0),
    )
    # Melody: a random walk on the scale, eighth notes (high arousal) or quarter/half notes.
    step = 0.5 if high_arousal else float(rng.choice([1.0, 2.0]))
    num_notes = int(np.ceil(num_samples / (step * beat_samples)))
    note_onsets = np.round(np.arange(num_notes) * step * beat_samples).astype(np.int64)
    bar_of_note = np.minimum((note_onsets / bar_samples).astype(np.int64), num_bars - 1)
    walk = np.cumsum(rng.choice([-2, -1, -1, 0, 1, 1, 2], size=num_notes))
    walk = np.abs((walk + 7) % 16 - 8) - 1  # fold into about one octave, stays near the chord
    melody_degrees = chords[bar_of_note] + walk
    melody_pitches = degree_to_midi(melody_degrees, 1) + register
    accents = np.where(np.arange(num_notes) % (2 if high_arousal else 1) == 0, 1.0, 0.7)
    mix += 0.5 * _voice(
        onsets=note_onsets,
        pitches=melody_pitches[np.newaxis],
        amps=accents * rng.uniform(0.8, 1.0, size=num_notes),
        num_samples=num_samples,
        sample_rate=sample_rate,
        tables=[table(melody_pitches.max())],
        attack_s=attack,
        decay_s=beat * step * (0.6 if high_arousal else 1.5),
    )
    if plan.drums:
        bar = _drums(rng, sample_rate=sample_rate, beat_samples=beat_samples)
        mix += _tile_bars(bar, bar_onsets=bar_onsets, num_samples=num_samples)

    mix -= mix.mean()
    mix *= plan.target_rms / max(float(np.sqrt(np.mean(np.square(mix, dtype=np.float64)))), 1e-9)
    peak = float(np.max(np.abs(mix)))
    if peak > 0.95:
        mix *= 0.95 / peak
    return mix.astype(np.float32)


def _drums(rng: np.random.Generator, *, sample_rate: int, beat_samples: float) -> np.ndarray:
    """One bar: kick on beats 1 and 3, snare on 2 and 4, hi-hat on every eighth note."""
    n = np.arange(int(np.ceil(4 * beat_samples)) + 1, dtype=np.float64)
    beat_pos = n / beat_samples
    t_beat = (beat_pos % 1.0) * beat_samples / sample_rate
    t_eighth = ((2 * beat_pos) % 1.0) * beat_samples / 2 / sample_rate
    beat_index = np.floor(beat_pos).astype(np.int64) % 4
    noise = rng.standard_normal(len(n) + 1)
    bright = np.diff(noise)  # first difference: a high-pass, hiss-like noise
    kick_phase = 2 * np.pi * (50.0 * t_beat + 100.0 * 0.03 * (1 - np.exp(-t_beat / 0.03)))
    kick = np.sin(kick_phase) * np.exp(-t_beat / 0.15) * (beat_index % 2 == 0)
    snare = noise[: len(n)] * np.exp(-t_beat / 0.08) * (beat_index % 2 == 1)
    hat = bright * np.exp(-t_eighth / 0.025)
    level = rng.uniform(0.6, 1.0)
    return (level * (0.5 * kick + 0.25 * snare + 0.2 * hat)).astype(np.float32)
