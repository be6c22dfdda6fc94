"""What a protocol run records about itself in config.json: arguments, software
versions, the machine, and the protocol key that decides whether a rerun may resume."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from mer_tfx.errors import ParameterError


def versions() -> dict:
    """Versions of Python, this package and the libraries the results depend on."""
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for dist in ("tensorflow", "keras", "numpy", "scikit-learn", "scipy", "librosa", "tfx"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    from mer_tfx import __version__

    out["mer-tfx"] = __version__
    return out


def machine() -> dict:
    """Platform, CPU count, host name and the GPUs TensorFlow sees (None if it cannot say)."""
    info = {"platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "hostname": platform.node()}
    try:
        import tensorflow as tf

        info["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception:  # noqa: BLE001 - machine info is best effort
        info["gpus"] = None
    return info


def jsonable(value):
    """`value` with dataclasses, NumPy values and other objects turned into JSON types."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if dataclasses.is_dataclass(value):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def protocol_key(*, folds, seed, val_fraction, targets, small, max_ae_epochs, max_head_epochs,
                 song_ids: Sequence[str], unlabeled_data=None, group_by=None) -> dict:
    """What makes rows of two invocations comparable: same songs, splits (and how songs
    are grouped into folds), training caps and extra stage-1 audio. More rounds,
    durations, variants, heads or label fractions only add rows."""
    key = {"folds": folds, "seed": seed, "val_fraction": val_fraction, "targets": list(targets),
           "small": small, "max_ae_epochs": max_ae_epochs, "max_head_epochs": max_head_epochs,
           "songs_sha256": hashlib.sha256("\n".join(song_ids).encode()).hexdigest()}
    if unlabeled_data is not None:  # absent otherwise, so earlier folders still resume
        key["unlabeled_data"] = unlabeled_data
    if group_by is not None:  # likewise: folds by song alone are the earlier folders' folds
        key["group_by"] = group_by
    return key


def write_config(config: dict, config_json: Path, *, resume: bool, results_exist: bool) -> None:
    """Writes config.json; when resuming over earlier results, checks that they come from
    the same protocol and records the earlier invocations' arguments.

    Raises:
        ParameterError: the folder holds results of a different protocol.
    """
    if resume and config_json.exists() and results_exist:
        try:
            previous = json.loads(config_json.read_text())
        except (OSError, ValueError):
            previous = {}
        if previous.get("protocol", config["protocol"]) != config["protocol"]:
            changed = sorted(k for k, v in config["protocol"].items()
                             if previous["protocol"].get(k) != v)
            raise ParameterError(
                f"{config_json.parent} holds results of a different protocol (changed: "
                f"{', '.join(changed)}). Use another output folder, or resume=False "
                "(--no-resume) to start over.")
        config["previous_invocations"] = previous.get("previous_invocations", []) + [
            previous.get("arguments")]
    config_json.write_text(json.dumps(config, indent=1))
