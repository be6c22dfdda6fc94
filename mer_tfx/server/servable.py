"""One loaded SavedModel version, and the TF Serving directory layout.

TF Serving (and the TFX Pusher) lay models out as
`<model_base_path>/<numeric version>/saved_model.pb`. `Servable` wraps one
loaded version: its signatures, their input/output specs, a `run` that takes
and returns NumPy arrays, and the `SignatureDefMap` JSON that TF Serving's
metadata endpoint returns.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Mapping, Union

import numpy as np

from mer_tfx.errors import ParameterError

PathLike = Union[str, os.PathLike]
_VERSION_RE = re.compile(r"^[0-9]+$")
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


def is_saved_model_dir(path: PathLike) -> bool:
    """Whether `path` holds a SavedModel (saved_model.pb or .pbtxt)."""
    return any((Path(path) / name).is_file() for name in SAVED_MODEL_FILES)


def list_versions(model_base_path: PathLike) -> List[int]:
    """Numeric version folders under `model_base_path` that hold a SavedModel, ascending.

    Folders that are not purely numeric (e.g. a pusher's temporary folder) are
    ignored, as TF Serving ignores them. A missing base path gives [].
    """
    base = Path(model_base_path)
    try:
        entries = list(base.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    versions = [
        int(entry.name)
        for entry in entries
        if _VERSION_RE.match(entry.name) and entry.is_dir() and is_saved_model_dir(entry)
    ]
    return sorted(versions)


def resolve_model_dir(path: PathLike) -> Path:
    """A SavedModel folder from a version folder, a model base path or a serving base dir.

    Accepts `<version dir>` (holds saved_model.pb), `<model_base_path>` (numeric
    version folders; the latest is taken) or a Pusher base holding exactly one
    model name folder (`<base>/<name>/<version>`).

    Raises:
        ParameterError: no SavedModel is found; the message names the path.
    """
    path = Path(path)
    if is_saved_model_dir(path):
        return path
    versions = list_versions(path)
    if versions:
        return path / str(versions[-1])
    if path.is_dir():
        names = [child for child in path.iterdir() if child.is_dir() and list_versions(child)]
        if len(names) == 1:
            return names[0] / str(list_versions(names[0])[-1])
        if len(names) > 1:
            raise ParameterError(
                "Several models under the directory; pass one model's folder. Received: "
                f"model_dir={str(path)!r} holding {sorted(n.name for n in names)}"
            )
    raise ParameterError(
        "No SavedModel found (expected saved_model.pb, <version>/saved_model.pb or "
        f"<name>/<version>/saved_model.pb). Received: model_dir={str(path)!r}"
    )


_ASSERTION_RE = re.compile(r"assertion failed: \[(?P<message>[^\]]*)\]")
_NOISE_PREFIXES = (
    "Graph execution error",
    "Detected at node",
    "<stack traces unavailable>",
    "[[{{node",
)


def graph_error_message(error: Exception) -> str:
    """The useful line of a TensorFlow error: the assertion's message, or the op's error."""
    text = getattr(error, "message", None) or str(error)
    match = _ASSERTION_RE.search(text)
    if match:
        return f"Invalid input: {match['message'].strip()}"
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(_NOISE_PREFIXES):
            return f"Invalid input: {line.replace(chr(92) + chr(39), chr(39))}"
    return type(error).__name__


class Servable:
    """A loaded SavedModel version.

    Args:
        path: the version folder (holds saved_model.pb).
        version: its version number. Defaults to the folder's name when numeric, else 0.

    Examples:

    >>> servable = Servable(path="serving/mer/3")  # doctest: +SKIP
    >>> servable.run("model_info", {"unused": np.zeros([1], np.int32)})["sample_rate"]  # doctest: +SKIP
    array([22050])
    """

    def __init__(self, *, path: PathLike, version: int | None = None):
        import tensorflow as tf

        self.path = Path(path)
        if not is_saved_model_dir(self.path):
            raise ParameterError(f"Not a SavedModel folder. Received: path={str(self.path)!r}")
        if version is None:
            version = int(self.path.name) if _VERSION_RE.match(self.path.name) else 0
        self.version = int(version)
        self._model = tf.saved_model.load(str(self.path))
        self._signatures = dict(self._model.signatures)
        self._inputs = {
            name: dict(fn.structured_input_signature[1]) for name, fn in self._signatures.items()
        }
        self._outputs = {name: dict(fn.structured_outputs) for name, fn in self._signatures.items()}
        self._signature_def_json = None

    @property
    def signature_names(self) -> List[str]:
        return sorted(self._signatures)

    def input_specs(self, signature_name: str) -> Dict[str, object]:
        """{input name: tf.TensorSpec} of a signature."""
        return self._inputs[signature_name]

    def output_specs(self, signature_name: str) -> Dict[str, object]:
        """{output name: tf.TensorSpec} of a signature."""
        return self._outputs[signature_name]

    def has_signature(self, signature_name: str) -> bool:
        return signature_name in self._signatures

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Calls a signature on NumPy inputs.

        Args:
            signature_name: e.g. "serving_default".
            inputs: {input name: array}; arrays are converted to the signature's dtypes.

        Returns:
            {output name: NumPy array}; string outputs are object arrays of bytes.

        Raises:
            KeyError: unknown signature.
            tf.errors.InvalidArgumentError: the graph rejected the input.
        """
        import tensorflow as tf

        fn = self._signatures[signature_name]
        specs = self._inputs[signature_name]
        tensors = {
            name: tf.convert_to_tensor(inputs[name], dtype=spec.dtype)
            for name, spec in specs.items()
        }
        outputs = fn(**tensors)
        return {name: value.numpy() for name, value in outputs.items()}

    def signature_def_map(self) -> dict:
        """The SavedModel's signature_def map as TF Serving's metadata JSON renders it."""
        if self._signature_def_json is None:
            self._signature_def_json = _signature_def_json(self.path)
        return self._signature_def_json


def _signature_def_json(path: Path) -> dict:
    from google.protobuf import json_format, text_format
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    saved_model = saved_model_pb2.SavedModel()
    if (path / "saved_model.pb").is_file():
        saved_model.ParseFromString((path / "saved_model.pb").read_bytes())
    else:
        text_format.Parse((path / "saved_model.pbtxt").read_text(), saved_model)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, value in saved_model.meta_graphs[0].signature_def.items():
        signature_map.signature_def[key].CopyFrom(value)
    return json_format.MessageToDict(
        signature_map, including_default_value_fields=True, preserving_proto_field_name=True
    )
