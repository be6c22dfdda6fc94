"""Runs the mer-tfx pipeline with LocalDagRunner; also the file `tfx pipeline create` reads.

    tfx pipeline create --engine local --pipeline_path pipeline/local.py
    tfx run create --engine local --pipeline_name mer-tfx
    # or directly:
    python pipeline/local.py

Paths (environment variables override them):
- MER_DATA: the dataset (4Q / PMEmo folder or CSV manifest). Default: the
  synthetic 4Q dataset in <output>/synthetic_data (written on first use).
- MER_OUTPUT: the output folder. Default: <repo>/outputs. Artifacts go to
  <output>/tfx/mer-tfx/, MLMD to <output>/tfx/metadata.sqlite, blessed models to
  <output>/serving_model/mer/<version>/.
- MER_PRESET: preset name. Default: small.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # Executed as a script (also by the tfx CLI, which puts pipeline/ first on
    # sys.path, where pipeline.py would shadow the package): import from the root.
    _root = str(Path(__file__).resolve().parents[1])
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    sys.path.insert(0, _root)

    from absl import logging as absl_logging
    from tfx import v1 as tfx

    from mer_tfx.commands import pipeline as pipeline_command
    from pipeline import configs
    from pipeline.factory import create_pipeline

    absl_logging.set_verbosity(absl_logging.INFO)
    output = Path(os.environ.get("MER_OUTPUT") or configs.DEFAULT_OUTPUT).resolve()
    layout = pipeline_command.Layout(
        output=output, pipeline_name=configs.PIPELINE_NAME, model_name=configs.MODEL_NAME
    )
    data_root = pipeline_command.prepare_data(os.environ.get("MER_DATA"), layout=layout)
    layout.pipeline_root.mkdir(parents=True, exist_ok=True)
    tfx.orchestration.LocalDagRunner().run(
        create_pipeline(
            pipeline_name=configs.PIPELINE_NAME,
            pipeline_root=layout.pipeline_root,
            data_root=data_root,
            serving_model_dir=layout.serving_base,
            metadata_path=layout.metadata_path,
            preset=os.environ.get("MER_PRESET", configs.DEFAULT_PRESET),
        )
    )
