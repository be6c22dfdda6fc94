"""Which songs and presets a protocol run uses: the dataset's presets for the durations
asked, and a balanced subset of the songs for quick runs."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from mer_tfx import presets as presets_lib
from mer_tfx.errors import ParameterError


def dataset_presets(layout: str, *, durations, small: bool) -> Tuple[str, Tuple]:
    """("4q" or "pmemo", the dataset's presets for `durations` seconds, all when None)."""
    dataset = "pmemo" if str(layout).lower().startswith("pmemo") else "4q"
    available = presets_lib.for_dataset(dataset, small=small)
    if durations is None:
        return dataset, available
    by_seconds = {float(p.features.segment_seconds): p for p in available}
    chosen = []
    for seconds in durations:
        if float(seconds) not in by_seconds:
            raise ParameterError(
                f"No {dataset} preset for this segment duration. Received: duration={seconds}. "
                f"Available: {sorted(by_seconds)}")
        chosen.append(by_seconds[float(seconds)])
    return dataset, tuple(chosen)


def limit_songs(records, limit: Optional[int], *, seed: int):
    """The first `limit` songs of a seeded shuffle, round-robin over quadrants (balanced),
    in dataset order."""
    if limit is None or limit >= len(records):
        return list(records)
    if limit < 2:
        raise ParameterError(f"limit_songs must be >= 2. Received: limit_songs={limit}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(records))
    buckets: Dict[Tuple[int, int], List] = {}
    for i in order:
        rec = records[i]
        buckets.setdefault((int(rec.valence_high), int(rec.arousal_high)), []).append(rec)
    chosen: List = []
    queues = [buckets[k] for k in sorted(buckets)]
    while len(chosen) < limit:
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    order_of = {id(rec): i for i, rec in enumerate(records)}
    return sorted(chosen, key=lambda rec: order_of[id(rec)])
