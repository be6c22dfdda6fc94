"""Catalog scoring (`mer score`): every song of a folder or manifest through a pushed model.

- `catalog`: `score_catalog`, a Beam pipeline over the songs, and `read_scores`.
- `score_files`: the scores file, its skipped-songs sidecar, and what a killed run
  leaves beside them.

Submodules are imported on use; importing this package loads nothing heavy.
See docs/scoring.md.
"""
