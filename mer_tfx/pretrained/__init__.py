"""The model shipped inside the package: where it is, and the line that announces it.

The shipped model is a TF Serving model base path inside this folder,
`mer_tfx/pretrained/mer/<numeric version>/saved_model.pb` (model name "mer"),
with `MODEL_CARD.md` (what it was trained on, how it scores) and
`WEIGHTS_TERMS.md` (what the weights may be used for) beside the `mer/` folder.
`mer predict`, `mer serve`, `mer score` and `mer_tfx.predict` use it when no
model is given, and say so in one line (`notice()`).

`MER_PRETRAINED_DIR` points these functions at another folder of the same
layout (tests use a tiny fixture model this way; a site may keep its own model
there). This module imports nothing heavy (no TensorFlow).

Examples:

>>> latest_version_dir()  # doctest: +SKIP
PosixPath('.../mer_tfx/pretrained/mer/1')
>>> notice()  # doctest: +SKIP
'using the shipped 4Q model (trained on the 4Q dataset, Panda et al. 2018; ...)'
"""

from __future__ import annotations

import os
from pathlib import Path

from mer_tfx.contract import MODEL_NAME
from mer_tfx.errors import ParameterError

#: Environment variable naming a folder to use instead of this one (tests, advanced use).
ENV_PRETRAINED_DIR = "MER_PRETRAINED_DIR"
#: The shipped model's name: its base path is `<folder>/mer`, its URLs /v1/models/mer.
PRETRAINED_MODEL_NAME = MODEL_NAME
MODEL_CARD_FILE = "MODEL_CARD.md"
WEIGHTS_TERMS_FILE = "WEIGHTS_TERMS.md"
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")

#: The line a command prints when it falls back to the shipped model; `{terms}` is
#: the path of WEIGHTS_TERMS.md (`notice()` fills it in).
NOTICE = (
    "using the shipped 4Q model (trained on the 4Q dataset, Panda et al. 2018; "
    "weights for research use only, see {terms})"
)


def pretrained_dir() -> Path:
    """The folder holding `mer/`, MODEL_CARD.md and WEIGHTS_TERMS.md: $MER_PRETRAINED_DIR,
    else this package's folder."""
    override = os.environ.get(ENV_PRETRAINED_DIR)
    return Path(override).expanduser() if override else Path(__file__).resolve().parent


def model_base_path() -> Path:
    """The shipped model's TF Serving base path, `<pretrained_dir>/mer` (may not exist)."""
    return pretrained_dir() / PRETRAINED_MODEL_NAME


def model_card_path() -> Path:
    """`<pretrained_dir>/MODEL_CARD.md`."""
    return pretrained_dir() / MODEL_CARD_FILE


def weights_terms_path() -> Path:
    """`<pretrained_dir>/WEIGHTS_TERMS.md`: the terms the weights are shipped under."""
    return pretrained_dir() / WEIGHTS_TERMS_FILE


def versions() -> list[int]:
    """The shipped model's numeric version folders that hold a SavedModel, ascending."""
    base = model_base_path()
    if not base.is_dir():
        return []
    return sorted(
        int(entry.name)
        for entry in base.iterdir()
        if entry.name.isdigit()
        and entry.is_dir()
        and any((entry / name).is_file() for name in _SAVED_MODEL_FILES)
    )


def is_shipped() -> bool:
    """Whether a shipped model is there to fall back to."""
    return bool(versions())


def latest_version_dir() -> Path:
    """The SavedModel folder of the shipped model's latest version.

    Raises:
        ParameterError: no model is shipped; the message says where one was looked
            for and how to pass a model instead.
    """
    found = versions()
    if not found:
        raise ParameterError(
            "No model is shipped with this installation of mer-tfx (expected "
            f"{model_base_path()}/<version>/saved_model.pb); pass a model (a pushed "
            f"model folder or a TF Serving URL), or set {ENV_PRETRAINED_DIR} to a folder "
            f"holding {PRETRAINED_MODEL_NAME}/<version>/. Received: "
            f"{ENV_PRETRAINED_DIR}={os.environ.get(ENV_PRETRAINED_DIR)!r}"
        )
    return model_base_path() / str(found[-1])


def notice() -> str:
    """The one line saying the shipped model is used, naming the weights' terms."""
    return NOTICE.format(terms=weights_terms_path())
