#!/usr/bin/env bash
# Installs onnxruntime's CPU shared library, the runtime the embedded models run on when it is
# there (crate::models::onnx): libonnxruntime.so from PyPI's onnxruntime 1.31.1 wheel (manylinux
# x86_64; Microsoft, MIT; ThirdPartyNotices.txt lists what it bundles), verified by sha256. The
# server loads it at run time; without it every model runs on the built-in runtimes (candle, tract).
#
# Usage: scripts/models/onnxruntime.sh [MODELS_DIR] (scripts/install-models.sh calls it)
# Installs into MODELS_DIR/onnxruntime/. Needs python3 with pip and access to PyPI. Safe to re-run.
set -euo pipefail

VERSION=1.31.1
WHEEL=onnxruntime-$VERSION-cp311-cp311-manylinux_2_28_x86_64.whl
WHEEL_SHA256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
LIBRARY=libonnxruntime.so.$VERSION

# Installed name -> sha256 (the library's is pinned in src/models/onnx.rs too).
declare -A SHA256=(
  [$LIBRARY]=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3
  [LICENSE]=2f07c72751aed99790b8a4869cf2311df85a860b22ded05fa22803587a48922c
  [ThirdPartyNotices.txt]=143764b952fdb1a7c69ce653bfba74a7744d6a8a573bfb73e235fba356c83de3
)

root=${1:-${HUME_ACTION_MODEL_DIR:-${HUME_ACTION_DATA_DIR:-./data}/models}}
target=$root/onnxruntime

# shellcheck source=scripts/models/pinned.sh
source "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"

if [[ $(uname -m) != x86_64 ]]; then
  echo "onnxruntime: no pinned library for $(uname -m); the models run on the built-in runtimes"
  exit 0
fi
if verify "$target"; then
  echo "onnxruntime $VERSION already installed in $(cd "$target" && pwd)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The wheel is chosen by name, not by this machine's Python: only its C library is used.
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
  --platform manylinux_2_28_x86_64 -d "$tmp" "onnxruntime==$VERSION"
check "$tmp/$WHEEL" "$WHEEL_SHA256" "$WHEEL"
python3 -m zipfile -e "$tmp/$WHEEL" "$tmp/wheel"
mkdir -p "$target"
for name in "${!SHA256[@]}"; do
  case $name in
    "$LIBRARY") source_path=$tmp/wheel/onnxruntime/capi/$name ;;
    *) source_path=$tmp/wheel/onnxruntime/$name ;;
  esac
  check "$source_path" "${SHA256[$name]}" "$name in $WHEEL"
  cp "$source_path" "$target/$name.partial"
  mv "$target/$name.partial" "$target/$name"
done
verify "$target"
echo "installed onnxruntime $VERSION into $(cd "$target" && pwd)"
