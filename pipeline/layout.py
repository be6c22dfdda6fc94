"""Where a pipeline run's files go under the output folder, and the data it reads.

    <output>/
      synthetic_data/                          the demo dataset (only when no data is given)
      tfx/metadata.sqlite                      MLMD: caching and lineage
      tfx/<pipeline name>/...                  the components' artifacts
      serving_model/<model name>/<version>/    blessed models (TF Serving's base path)

The folder names are the constants in `pipeline/configs.py`; this module is the one
place that joins them into paths. `mer pipeline`, `pipeline/local.py` (the `tfx`
CLI) and the pipeline benchmark all build their paths here.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from mer_tfx import console
from mer_tfx.errors import DatasetError
from pipeline import configs

SYNTHETIC_MARKER = ".mer-pipeline-synthetic"  # records how the synthetic set was made


@dataclasses.dataclass(frozen=True)
class Layout:
    """One pipeline's paths under the output folder.

    Args:
        output: the output folder.
        pipeline_name: TFX pipeline name. Defaults to `configs.PIPELINE_NAME`.
        model_name: TF Serving model name. Defaults to `configs.MODEL_NAME`.
    """

    output: Path
    pipeline_name: str = configs.PIPELINE_NAME
    model_name: str = configs.MODEL_NAME

    @classmethod
    def at(cls, output: str | os.PathLike | None = None, **names: str) -> Layout:
        """The layout under `output`, else `$MER_OUTPUT`, else `./outputs` (of the current
        folder)."""
        folder = output or os.environ.get(configs.ENV_OUTPUT) or configs.DEFAULT_OUTPUT
        return cls(output=Path(folder).expanduser().resolve(), **names)

    @property
    def pipeline_root(self) -> Path:
        return self.output / configs.PIPELINE_ROOT_DIR / self.pipeline_name

    @property
    def metadata_path(self) -> Path:
        return self.output / configs.PIPELINE_ROOT_DIR / configs.METADATA_FILE

    @property
    def serving_base(self) -> Path:
        """TF Serving's --model_base_path: <output>/serving_model/<model name>."""
        return self.output / configs.SERVING_DIR / self.model_name

    @property
    def synthetic_data(self) -> Path:
        return self.output / configs.SYNTHETIC_DIR


def prepare_data(
    data: str | os.PathLike | None, *, layout: Layout, clips_per_quadrant: int = 8,
    seed: int = 0, seconds: float = 30.0,
) -> Path:
    """The dataset path: `data` when given, else the synthetic 4Q set (written once).

    Raises:
        DatasetError: `data` is given but does not exist.
    """
    if data:
        path = Path(data).expanduser().resolve()
        if not path.exists():
            raise DatasetError(f"The dataset path does not exist. Received: data={str(data)!r}")
        return path
    target = layout.synthetic_data
    marker = target / SYNTHETIC_MARKER
    stamp = f"clips_per_quadrant={clips_per_quadrant} seed={seed} seconds={seconds}\n"
    if marker.exists() and marker.read_text() == stamp:
        console.say(f"mer pipeline: using the synthetic 4Q dataset already in {target}")
        return target
    from mer_tfx import synthetic

    console.say(f"mer pipeline: no data given: writing the synthetic 4Q dataset "
                f"({clips_per_quadrant} clips per quadrant, seed {seed}) to {target}")
    path = synthetic.make_synthetic_4q(
        target, clips_per_quadrant=clips_per_quadrant, seed=seed, seconds=seconds
    )
    marker.write_text(stamp)
    return Path(path)
