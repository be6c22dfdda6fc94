"""The loaded versions of one served model, kept in step with its folder on disk.

`ModelManager` applies a `ServedModelConfig`'s version policy to the numeric
version folders under its base path: it loads new versions on a poller thread
while the current ones keep serving, switches atomically once they are loaded,
unloads versions the policy no longer wants, and reports TF Serving's
`ModelVersionStatus` states (LOADING, AVAILABLE, END with the load error).

Under the `latest` policy it serves the newest N versions that load: a version that
fails is reported and skipped for the next one down (TF Serving would serve nothing).
A failed version is retried while its folder's contents change.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Dict, List, Tuple

from mer_tfx.server.rest_error import RestError
from mer_tfx.server.servable import SAVED_MODEL_FILES, Servable, list_versions
from mer_tfx.server.serving_config import ServedModelConfig

logger = logging.getLogger("mer_tfx.server")


class ModelManager:
    """Keeps the versions of one model that its policy wants loaded, polling the disk.

    Loading happens on the poller thread; requests keep using the versions already
    loaded until the new set is ready, then switch atomically.

    Args:
        config: the model's name, base path and version policy.
        poll_seconds: seconds between scans of the base path; 0 disables polling
            (call `refresh()` yourself).
    """

    _MAX_LOAD_ATTEMPTS = 3
    _SETTLE_SECONDS = 0.5

    def __init__(self, config: ServedModelConfig, *, poll_seconds: float = 2.0):
        self.config = config
        self.poll_seconds = float(poll_seconds)
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._servables: Dict[int, Servable] = {}
        # version -> (state, error_code, error_message), TF Serving's ModelVersionStatus.
        self._states: Dict[int, Tuple[str, str, str]] = {}
        # version -> (fingerprint of its folder's files, failed attempts).
        self._failures: Dict[int, Tuple[tuple, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False  # the first scan loads at once; later ones let files settle

    @property
    def name(self) -> str:
        return self.config.name

    def refresh(self) -> None:
        """Scans the base path once: loads wanted versions, unloads unwanted ones."""
        with self._refresh_lock:
            available = list_versions(self.config.base_path)
            loaded = dict(self._servables)
            keep: Dict[int, Servable] = {}
            if self.config.version_policy == "latest":
                # The newest N versions that load: a broken push does not take the
                # model down while an older version on disk still loads.
                for version in reversed(available):
                    if len(keep) == self.config.num_versions:
                        break
                    servable = loaded.get(version) or self._try_load(version)
                    if servable is not None:
                        keep[version] = servable
            else:
                for version in self.config.desired_versions(available):
                    servable = loaded.get(version) or self._try_load(version)
                    if servable is not None:
                        keep[version] = servable
                # Never drop the last served version while no wanted version could be loaded.
                still_there = [v for v in loaded if v in available]
                if not keep and still_there:
                    keep = {max(still_there): loaded[max(still_there)]}
            with self._lock:
                for version in set(self._servables) - set(keep):
                    self._states[version] = ("END", "OK", "")
                    logger.info("model %s: unloaded version %d", self.name, version)
                self._servables = keep
                for version in keep:
                    self._states[version] = ("AVAILABLE", "OK", "")

    def _try_load(self, version: int) -> Servable | None:
        path = Path(self.config.base_path) / str(version)
        # TFX 1.16's Pusher copies saved_model.pb first, so its presence does not mean the
        # version is complete: wait until it has not changed for a moment, so a file still
        # being written is not read, and retry a failed load while the folder's files change.
        try:
            stat = next(
                (path / name).stat() for name in SAVED_MODEL_FILES if (path / name).exists()
            )
        except (StopIteration, OSError):
            return None
        if self._started and time.time() - stat.st_mtime < self._SETTLE_SECONDS:
            return None
        fingerprint = _fingerprint(path)
        if fingerprint is None:  # the folder vanished while being looked at
            return None
        last_fingerprint, attempts = self._failures.get(version, (None, 0))
        if last_fingerprint == fingerprint and attempts >= self._MAX_LOAD_ATTEMPTS:
            return None
        with self._lock:
            self._states[version] = ("LOADING", "OK", "")
        started = time.perf_counter()
        try:
            servable = Servable(path=path, version=version)
        except Exception as error:  # a broken or half-written SavedModel must not stop the poller
            attempts = attempts + 1 if last_fingerprint == fingerprint else 1
            self._failures[version] = (fingerprint, attempts)
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            message = f"Failed to load version {version} of model {self.name}: {reason}"
            with self._lock:
                self._states[version] = ("END", "UNKNOWN", message)
            logger.warning("%s (attempt %d)", message, attempts)
            return None
        self._failures.pop(version, None)
        logger.info(
            "model %s: loaded version %d from %s in %.1f s",
            self.name,
            version,
            path,
            time.perf_counter() - started,
        )
        return servable

    def start(self) -> None:
        """Loads the current versions now, then keeps polling in a daemon thread."""
        self.refresh()
        self._started = True
        if self.poll_seconds > 0 and self._thread is None:
            self._thread = threading.Thread(
                target=self._poll, name=f"poll-{self.name}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # keep polling whatever happens on disk
                logger.exception("model %s: polling %s failed", self.name, self.config.base_path)

    def served_versions(self) -> List[int]:
        with self._lock:
            return sorted(self._servables)

    def failed_versions(self) -> Dict[int, str]:
        """{version: load error} of the versions whose last load failed."""
        with self._lock:
            return {v: message for v, (_, code, message) in self._states.items() if code != "OK"}

    def servable(self, *, version: int | None = None, label: str | None = None) -> Servable:
        """The servable for a request: latest served version, a given version or a label.

        Raises:
            RestError: 404 when nothing matches (TF Serving's "Servable not found").
        """
        with self._lock:
            servables = dict(self._servables)
        if label is not None:
            if label not in self.config.version_labels:
                raise RestError(404, f"Unrecognized servable version label: {label}")
            version = self.config.version_labels[label]
        if version is None:
            if not servables:
                raise RestError(404, f"Servable not found for request: Latest({self.name})")
            return servables[max(servables)]
        if version not in servables:
            raise RestError(
                404, f"Servable not found for request: Specific({self.name}, {version})"
            )
        return servables[version]

    def status(self, *, version: int | None = None, label: str | None = None) -> dict:
        """TF Serving's GetModelStatus response as JSON."""
        if label is not None:
            if label not in self.config.version_labels:
                raise RestError(404, f"Unrecognized servable version label: {label}")
            version = self.config.version_labels[label]
        with self._lock:
            states = dict(self._states)
        if version is not None:
            if version not in states:
                raise RestError(404, f"Could not find version {version} of model {self.name}")
            states = {version: states[version]}
        elif not states:
            raise RestError(404, f"Could not find any versions of model {self.name}")
        return {
            "model_version_status": [
                {
                    "version": str(v),
                    "state": state,
                    "status": {"error_code": code, "error_message": message},
                }
                for v, (state, code, message) in sorted(states.items(), reverse=True)
            ]
        }


def _fingerprint(path: Path) -> tuple | None:
    """(relative path, mtime_ns, size) of every file under a version folder, or None.

    A failed load is retried when this changes: a version repaired in place, or a
    folder removed and pushed again, is loaded again.
    """
    entries = []
    try:
        for root, _, files in os.walk(path):
            for name in files:
                stat = os.stat(os.path.join(root, name))
                entries.append(
                    (
                        os.path.relpath(os.path.join(root, name), path),
                        stat.st_mtime_ns,
                        stat.st_size,
                    )
                )
    except OSError:
        return None
    return tuple(sorted(entries)) if entries else None
