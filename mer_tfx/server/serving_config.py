"""Which models a server serves: TF Serving's `model_config_list`, from a file or arguments.

`ServedModelConfig` is one entry (name, base path, version policy, labels);
`load_models_config` reads a TF Serving `models.config`; `model_configs_from_args`
turns `mer serve`'s `--model-name/--model-base-path/--model-config-file` into entries.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

from mer_tfx.contract import MODEL_NAME
from mer_tfx.errors import ParameterError
from mer_tfx.server.servable import is_saved_model_dir, list_versions

PathLike = Union[str, os.PathLike]


@dataclasses.dataclass(frozen=True)
class ServedModelConfig:
    """One served model, like an entry of TF Serving's `model_config_list`.

    Args:
        name: the model name in URLs (`/v1/models/<name>`).
        base_path: folder holding the numeric version folders.
        version_policy: "latest", "all" or "specific". Defaults to "latest".
        num_versions: how many of the latest versions to serve. Defaults to 1.
        versions: the versions served by the "specific" policy.
        version_labels: label -> version (`/v1/models/<name>/labels/<label>`).
    """

    name: str
    base_path: str
    version_policy: str = "latest"
    num_versions: int = 1
    versions: Tuple[int, ...] = ()
    version_labels: Mapping[str, int] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not self.name or "/" in self.name or ":" in self.name:
            raise ParameterError(
                f"Model names must be non-empty without '/' or ':'. Received: name={self.name!r}"
            )
        if self.version_policy not in ("latest", "all", "specific"):
            raise ParameterError(
                "version_policy must be 'latest', 'all' or 'specific'. "
                f"Received: version_policy={self.version_policy!r}"
            )
        if self.num_versions < 1:
            raise ParameterError(
                f"num_versions must be >= 1. Received: num_versions={self.num_versions}"
            )
        if self.version_policy == "specific" and not self.versions:
            raise ParameterError(
                f"The 'specific' policy needs versions. Received: versions={self.versions!r}"
            )

    def desired_versions(self, available: Sequence[int]) -> List[int]:
        """The versions this policy serves out of those on disk, ascending."""
        available = sorted(available)
        if self.version_policy == "all":
            return available
        if self.version_policy == "specific":
            return [v for v in available if v in set(self.versions)]
        return available[-self.num_versions :]


def load_models_config(path: PathLike) -> List[ServedModelConfig]:
    """Reads a TF Serving `models.config` (text `ModelServerConfig` with a model_config_list).

    Relative base paths are taken relative to the config file's folder (TF Serving
    would take them relative to its working directory; in a container they are absolute).

    Raises:
        ParameterError: the file is missing, does not parse, or has no model.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ParameterError(
            f"Cannot read the models config. Received: path={str(path)!r} ({error})"
        ) from None
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ParameterError(
            f"models config does not parse: {error}. Received: path={str(path)!r}"
        ) from None
    result = []
    for model in config.model_config_list.config:
        policy = model.model_version_policy.WhichOneof("policy_choice") or "latest"
        base = Path(model.base_path)
        if not base.is_absolute():
            base = path.parent / base
        kwargs: Dict[str, Any] = {"version_policy": policy}
        if policy == "latest" and model.model_version_policy.latest.num_versions:
            kwargs["num_versions"] = int(model.model_version_policy.latest.num_versions)
        if policy == "specific":
            kwargs["versions"] = tuple(int(v) for v in model.model_version_policy.specific.versions)
        result.append(
            ServedModelConfig(
                name=model.name,
                base_path=str(base),
                version_labels={k: int(v) for k, v in model.version_labels.items()},
                **kwargs,
            )
        )
    if not result:
        raise ParameterError(f"The models config lists no model. Received: path={str(path)!r}")
    return result


def model_configs_from_args(
    *,
    model_name: str = MODEL_NAME,
    model_base_path: PathLike | None = None,
    model_config_file: PathLike | None = None,
) -> List[ServedModelConfig]:
    """Served models from `--model-name/--model-base-path` or a `models.config` file.

    A base path that holds a SavedModel directly, or that holds a single model-name folder
    (the Pusher's `<serving dir>/<name>/<version>`), is resolved to the folder of versions.
    """
    if model_config_file is not None:
        return load_models_config(model_config_file)
    if model_base_path is None:
        raise ParameterError("Pass a model base path or a models config file. Received: neither")
    base = Path(model_base_path)
    if is_saved_model_dir(base):
        raise ParameterError(
            "The model base path must hold numeric version folders, not a SavedModel itself. "
            f"Received: model_base_path={str(base)!r}; use its parent folder"
        )
    if not list_versions(base) and (base / model_name).is_dir():
        base = base / model_name
    return [ServedModelConfig(name=model_name, base_path=str(base))]
