"""Runs the mer-tfx pipeline with LocalDagRunner; also the file `tfx pipeline create` reads.

    tfx pipeline create --engine local --pipeline_path pipeline/local.py
    tfx run create --engine local --pipeline_name mer-tfx
    # or directly:
    python pipeline/local.py

The run's configuration is `pipeline.run_config.run_config_from()`, as `mer pipeline`
builds it, from the environment alone (the `tfx` CLI passes no flags):
- MER_DATA: the dataset (4Q / PMEmo folder or CSV manifest). Default: the
  synthetic 4Q dataset in <output>/synthetic_data (written on first use).
- MER_OUTPUT: the output folder. Default: ./outputs (of the current folder). Artifacts go to
  <output>/tfx/mer-tfx/, MLMD to <output>/tfx/metadata.sqlite, blessed models to
  <output>/serving_model/mer/<version>/ (see pipeline/layout.py).
- MER_PRESET: preset name or JSON. Default: `mer_tfx.presets.DEFAULT_NAME`.

Run as a script, Python puts this folder (pipeline/) first on sys.path; no module
here is named like a package it imports (`pipeline`, `components`, `mer_tfx`), so
those resolve to the installed packages.
"""

from __future__ import annotations

import os

# As `mer` does (mer_tfx/cli.py): TensorFlow's oneDNN kernels, which it leaves off on CPUs
# without AVX-512, train the models 2-4x faster there. Set before TensorFlow is imported;
# an explicit setting wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from absl import logging as absl_logging  # noqa: E402 (after the setting above)
from tfx import v1 as tfx  # noqa: E402

from pipeline.factory import create_pipeline  # noqa: E402
from pipeline.run_config import run_config_from  # noqa: E402


def main() -> None:
    absl_logging.set_verbosity(absl_logging.INFO)
    config = run_config_from()
    config.layout.pipeline_root.mkdir(parents=True, exist_ok=True)
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config))


if __name__ == "__main__":
    main()
