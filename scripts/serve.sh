#!/usr/bin/env bash
# Starts the server on the embedded local backend on a fresh machine: installs ffmpeg and the
# model files if they are missing, then builds and runs the release binary. Settings come from
# HUME_ACTION_* variables or flags (`scripts/serve.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-system.sh
scripts/install-models.sh "${HUME_ACTION_MODEL_DIR:-${HUME_ACTION_DATA_DIR:-./data}/models}"
exec cargo run --release --locked --bin hume-action -- "$@"
