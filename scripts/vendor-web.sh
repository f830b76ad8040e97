#!/usr/bin/env bash
# Refreshes the playground's vendored browser files (assets/playground/vendor/) from the npm
# registry: uPlot's minified IIFE build, its stylesheet and its licence, taken from the package
# tarball `npm pack` fetches (npm checks the tarball against the registry's sha512 integrity).
# Each file is then checked against the sha256 recorded in assets/playground/VENDOR.md, so a
# refresh that brings other bytes fails loudly instead of changing the page silently.
#
# Usage: scripts/vendor-web.sh            # fetch the pinned version, verify, copy
#        scripts/vendor-web.sh --update   # after changing VERSION: print the new sha256 lines
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=1.6.32
dest=assets/playground/vendor
record=assets/playground/VENDOR.md

command -v npm >/dev/null || { echo "error: npm is needed (Debian: apt-get install npm)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@$VERSION" >/dev/null)
tar -xzf "$work/uplot-$VERSION.tgz" -C "$work"

declare -A files=(
  [uPlot.iife.min.js]=package/dist/uPlot.iife.min.js
  [uPlot.min.css]=package/dist/uPlot.min.css
  [uPlot.LICENSE]=package/LICENSE
)
status=0
for name in "${!files[@]}"; do
  got=$(sha256sum "$work/${files[$name]}" | cut -d' ' -f1)
  if [[ ${1:-} == --update ]]; then
    echo "| \`$name\` | \`$got\` |"
    continue
  fi
  want=$(grep -F "\`$name\`" "$record" | grep -oE '[0-9a-f]{64}' || true)
  if [[ $got != "$want" ]]; then
    echo "error: $name of uplot@$VERSION has sha256 $got, $record records ${want:-none}" >&2
    status=1
    continue
  fi
  cp "$work/${files[$name]}" "$dest/$name"
done
[[ ${1:-} == --update ]] && { echo "put these lines into $record, then run again without --update" >&2; exit 0; }
[[ $status -eq 0 ]] && echo "vendored uplot@$VERSION into $dest (sha256 verified)"
exit $status
