#!/usr/bin/env bash
# The main command: sets up .venv if needed, then runs the TFX pipeline end to end.
# With no --data it trains on the synthetic 4Q dataset it writes into the output folder.
# Arguments go to `mer pipeline`, e.g. `bash scripts/pipeline.sh --data /path/to/4q --tune`.
# The console shows the project's own lines; what TensorFlow, TFX and Beam print goes to
# <output>/mer-pipeline.log (`--verbose` shows it live too).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$(bash "$root/scripts/bootstrap.sh")"
cd "$root"
exec "$(dirname "$py")/mer" pipeline "$@"
