"""The check of an unlabelled-audio folder (`--unlabeled-data`) against a dataset's folder."""

from __future__ import annotations

from pathlib import Path

from mer_tfx.errors import ParameterError


def check_unlabeled_data(folder, *, data_root) -> Path | None:
    """`--unlabeled-data` as a resolved folder, or None when not given.

    Stage 1 may train on extra unlabelled audio; that audio must not include the
    dataset's own songs, whose evaluation split would then train stage 1.

    Args:
        folder: the unlabelled-audio folder, or None.
        data_root: the dataset's folder, or its manifest file.

    Returns:
        The resolved folder, or None when `folder` is None.

    Raises:
        ParameterError: it is not a folder, or it and the dataset's folder contain one
            another (the evaluation songs' audio would join stage 1's training set).
    """
    if folder is None:
        return None
    path = Path(folder).resolve()
    if not path.is_dir():
        raise ParameterError(f"--unlabeled-data must be a folder. Received: {folder}")
    data = Path(data_root).resolve()
    data_folder = data if data.is_dir() else data.parent
    if path == data_folder or data_folder in path.parents or path in data_folder.parents:
        raise ParameterError(
            "--unlabeled-data must not hold the dataset's audio (the evaluation songs would "
            f"train stage 1). Received: --unlabeled-data {folder}, data {data_root}")
    return path
