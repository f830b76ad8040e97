# Sourced by every model install script: the sha256 checks they share. Pins are associative
# arrays of file name -> sha256 (`SHA256` unless another is named).
sha() { sha256sum "$1" | cut -d' ' -f1; }
verify() { # verify DIR [ARRAY_NAME]: every pinned file present in DIR with its sha256
  local -n pins=${2:-SHA256}
  local name
  for name in "${!pins[@]}"; do
    [[ -f $1/$name && $(sha "$1/$name") == "${pins[$name]}" ]] || return 1
  done
}
check() { # check FILE SHA256 [WHAT]: fail loudly on a mismatch
  local actual
  actual=$(sha "$1")
  if [[ $actual != "$2" ]]; then
    echo "error: ${3:-$1} has sha256 $actual, expected $2" >&2
    exit 1
  fi
}
