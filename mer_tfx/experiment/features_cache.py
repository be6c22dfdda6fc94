"""Log-mel features computed once per dataset and preset, cached on disk.

Decoding an MP3 and resampling it costs several times more than its log-mel
spectrogram, and the protocol reuses the same features for every fold, round,
variant and head. So each clip is decoded once per sample rate, turned into the
log-mel segments of every requested preset in the same pass, and saved as
`<cache_dir>/<name>.npy` (float32 [songs, segments, 216, 128]) with a
`<name>.json` that records the song order, the skipped files and a key of the
feature settings and input files; a later run with the same key memory-maps the
array instead of recomputing it.

Unreadable audio files are reported by name and skipped, never fatal.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mer_tfx.errors import AudioLoadError, DatasetError, ParameterError
from mer_tfx.presets import FeatureConfig

_FORMAT_VERSION = 1


@dataclasses.dataclass
class FeatureCache:
    """The cached log-mel segments of one preset.

    Attributes:
        name: cache name (file stem).
        log_mels: float32 [songs, segments, frames, mels] (memory-mapped when loaded).
        song_ids: the song of each row, in dataset order, skipped songs removed.
        skipped: (path, reason) of every file that could not be read.
        path: the `.npy` file.
        seconds: wall time spent computing (0.0 when loaded from disk).
        loaded: True when the array came from an existing cache file.
    """

    name: str
    log_mels: np.ndarray
    song_ids: List[str]
    skipped: List[Tuple[str, str]]
    path: Path
    seconds: float = 0.0
    loaded: bool = False


def cache_name(preset) -> str:
    """Features do not depend on the model size, so "-small" presets share the cache."""
    name = preset.name
    return name[: -len("-small")] if name.endswith("-small") else name


def _file_signature(path: str) -> str:
    try:
        stat = os.stat(path)
        return f"{path}:{stat.st_size}:{int(stat.st_mtime)}"
    except OSError:
        return f"{path}:missing"


def cache_key(*, features: FeatureConfig, songs: Sequence[Tuple[str, str]], dtype: str) -> str:
    """A hash of the feature settings, the (song id, path, size, mtime) list and the dtype."""
    digest = hashlib.sha256()
    digest.update(json.dumps(
        {"v": _FORMAT_VERSION, "features": dataclasses.asdict(features), "dtype": dtype},
        sort_keys=True).encode())
    for song_id, path in songs:
        digest.update(f"{song_id}|{_file_signature(str(path))}\n".encode())
    return digest.hexdigest()[:16]


def _load(npy: Path, meta_path: Path, key: str) -> Optional[Tuple[np.ndarray, dict]]:
    if not (npy.exists() and meta_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != key:
            return None
        array = np.load(npy, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if array.shape[0] != len(meta.get("song_ids", [])):
        return None
    return array, meta


def _default_loader(path: str, sample_rate: int, clip_seconds: float) -> np.ndarray:
    from mer_tfx.audio import load_clip

    return load_clip(path, sample_rate=sample_rate, clip_seconds=clip_seconds)


def build_feature_caches(
    songs: Sequence[Tuple[str, str]],
    *,
    features: Mapping[str, FeatureConfig],
    cache_dir: Path,
    dtype: str = "float32",
    batch_size: int = 8,
    progress: bool = True,
    loader=None,
) -> Dict[str, FeatureCache]:
    """Computes (or loads) the log-mel segments of every song for each named preset.

    Args:
        songs: (song_id, audio path) pairs, in the order the arrays will have.
        features: cache name -> feature settings (e.g. {"4q-5s": preset.features}).
            Presets with the same sample rate share one decoding pass.
        cache_dir: folder of the `.npy`/`.json` files; created if missing.
        dtype: "float32" (default) or "float16" (half the disk and memory).
        batch_size: clips per log-mel batch.
        progress: show a tqdm bar per decoding pass.
        loader: `loader(path, sample_rate, clip_seconds) -> float32 [samples]`, raising
            `AudioLoadError` for unreadable files. Defaults to `mer_tfx.audio.load_clip`.

    Returns:
        name -> FeatureCache. Every cache holds the same songs: a file that fails to
        load is skipped for all presets, so scores stay matched across durations.
    """
    if dtype not in ("float32", "float16"):
        raise ParameterError(f"dtype must be 'float32' or 'float16'. Received: dtype={dtype!r}")
    if not songs:
        raise ParameterError("songs must not be empty. Received: 0 songs")
    ids = [s for s, _ in songs]
    if len(set(ids)) != len(ids):
        dupes = sorted({s for s in ids if ids.count(s) > 1})[:5]
        raise ParameterError(f"song ids must be unique. Received duplicates: {dupes}")
    loader = loader or _default_loader
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)

    out: Dict[str, FeatureCache] = {}
    todo: Dict[int, List[Tuple[str, FeatureConfig, str]]] = {}
    for name, config in features.items():
        key = cache_key(features=config, songs=songs, dtype=dtype)
        npy, meta_path = cache_dir / f"{name}.npy", cache_dir / f"{name}.json"
        loaded = _load(npy, meta_path, key)
        if loaded is not None:
            array, meta = loaded
            out[name] = FeatureCache(
                name=name, log_mels=array, song_ids=list(meta["song_ids"]),
                skipped=[tuple(s) for s in meta["skipped"]], path=npy, loaded=True)
        else:
            todo.setdefault(config.sample_rate, []).append((name, config, key))

    for sample_rate, group in todo.items():
        out.update(_compute_pass(songs, sample_rate=sample_rate, group=group,
                                 cache_dir=cache_dir, dtype=dtype, batch_size=batch_size,
                                 progress=progress, loader=loader))
    return {name: out[name] for name in features}


def _compute_pass(songs, *, sample_rate, group, cache_dir, dtype, batch_size, progress, loader):
    import tensorflow as tf

    from mer_tfx.features import clip_to_log_mel_segments, loop_to_length_np

    start = time.perf_counter()
    clip_seconds = max(config.clip_seconds for _, config, _ in group)
    tmp = {
        name: np.lib.format.open_memmap(
            cache_dir / f"{name}.partial.npy", mode="w+", dtype=dtype,
            shape=(len(songs), config.num_segments, config.num_frames, config.n_mels))
        for name, config, _ in group
    }
    fns = {
        name: tf.function(lambda w, c=config: clip_to_log_mel_segments(w, c), reduce_retracing=True)
        for name, config, _ in group
    }
    kept: List[str] = []
    skipped: List[Tuple[str, str]] = []
    batch: List[np.ndarray] = []

    def flush():
        if not batch:
            return
        for name, config, _ in group:
            waves = np.stack([loop_to_length_np(w, num_samples=config.clip_samples) for w in batch])
            values = fns[name](tf.constant(waves)).numpy()
            row = len(kept) - len(batch)
            tmp[name][row:row + len(batch)] = values.astype(dtype)
        batch.clear()

    names = ", ".join(name for name, _, _ in group)
    iterator = songs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(songs, desc=f"log-mel {names}", unit="clip", leave=False)
    for song_id, path in iterator:
        try:
            waveform = np.asarray(loader(str(path), sample_rate, clip_seconds), dtype=np.float32)
            if waveform.ndim != 1 or waveform.size == 0 or not np.all(np.isfinite(waveform)):
                raise AudioLoadError(str(path), "decoded to an empty or non-finite waveform")
        except AudioLoadError as error:
            skipped.append((str(path), error.reason))
            continue
        except (OSError, RuntimeError, ValueError) as error:  # a decoder's own error type
            skipped.append((str(path), f"{type(error).__name__}: {error}"))
            continue
        kept.append(song_id)
        batch.append(waveform)
        if len(batch) >= batch_size:
            flush()
    flush()
    if skipped:
        print(f"Skipped {len(skipped)} unreadable audio file(s):")
        for path, reason in skipped:
            print(f"  {path}: {reason}")

    if not kept:
        raise DatasetError(f"No audio file could be read ({len(skipped)} tried), e.g. {skipped[0]}")
    seconds = time.perf_counter() - start
    out = {}
    for name, config, key in group:
        partial = cache_dir / f"{name}.partial.npy"
        npy = cache_dir / f"{name}.npy"
        array = tmp.pop(name)
        if len(kept) < len(songs):
            np.save(npy, np.ascontiguousarray(array[: len(kept)]))
            del array
            partial.unlink()
        else:
            array.flush()
            del array
            os.replace(partial, npy)
        (cache_dir / f"{name}.json").write_text(json.dumps({
            "key": key, "features": dataclasses.asdict(config), "dtype": dtype,
            "song_ids": kept, "skipped": skipped, "seconds": seconds}, indent=1))
        out[name] = FeatureCache(
            name=name, log_mels=np.load(npy, mmap_mode="r"), song_ids=list(kept),
            skipped=list(skipped), path=npy, seconds=seconds)
    return out
