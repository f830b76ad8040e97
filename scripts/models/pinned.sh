# Sourced by the model install scripts that pin every file in an associative array SHA256
# (file name -> sha256): the checks they share.
sha() { sha256sum "$1" | cut -d' ' -f1; }
verify() { # verify DIR: every file of SHA256 present in DIR with its pinned sha256
  local name
  for name in "${!SHA256[@]}"; do
    [[ -f $1/$name && $(sha "$1/$name") == "${SHA256[$name]}" ]] || return 1
  done
}
check() { # check FILE SHA256 WHAT: fail loudly on a mismatch
  local actual
  actual=$(sha "$1")
  if [[ $actual != "$2" ]]; then
    echo "error: $3 has sha256 $actual, expected $2" >&2
    exit 1
  fi
}
