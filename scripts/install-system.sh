#!/usr/bin/env bash
# Installs the programs the server and the tests run, from Debian's packages, when missing:
# ffmpeg/ffprobe (decoding audio, video and images) always; espeak-ng (speech the tests
# synthesise), PostgreSQL and Redis (the replica tests' servers), Node.js (its `fetch` is one
# of the clients tests/api/early_answers.rs checks), chromium with chromium-driver (the
# playground's browser tests) and hedgewars-data (acted vocal bursts for the burst tests) with
# --tests. Needs root (or sudo) and apt; says what to do otherwise.
#
# Usage: scripts/install-system.sh [--tests]
set -euo pipefail

need=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || need+=(ffmpeg)
if [[ ${1:-} == --tests ]]; then
  command -v espeak-ng >/dev/null || need+=(espeak-ng)
  # The replica tests start their own PostgreSQL and Redis servers in temporary directories.
  compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
  command -v redis-server >/dev/null || need+=(redis-server)
  command -v node >/dev/null || need+=(nodejs)
  command -v chromium >/dev/null || need+=(chromium)
  command -v chromedriver >/dev/null || need+=(chromium-driver)
  # Acted vocal bursts (laughs, coughs, moans; GFDL) for the burst model's tests.
  [[ -d /usr/share/games/hedgewars/Data/Sounds/voices ]] || need+=(hedgewars-data)
fi
[[ ${#need[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "error: please install ${need[*]} (Debian/Ubuntu: apt-get install ${need[*]})" >&2
  exit 1
fi
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
echo "installing ${need[*]} from Debian's packages"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
