#!/usr/bin/env bash
# Make sure `uv` is on PATH (installed from PyPI when missing), then sync the
# locked environment. Sourced by demo.sh and test.sh.
set -euo pipefail
if ! command -v uv >/dev/null 2>&1; then
  export PATH="$HOME/.local/bin:$PATH"
fi
if ! command -v uv >/dev/null 2>&1; then
  echo "installing uv from PyPI..." >&2
  python3 -m pip install --quiet --user uv 2>/dev/null \
    || python3 -m pip install --quiet uv 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages uv
  hash -r
fi
command -v uv >/dev/null 2>&1 || { echo "uv could not be installed" >&2; exit 1; }
# Bytecode compiled at install: where PYTHONDONTWRITEBYTECODE is set (this machine sets it), every
# party process would otherwise compile SecretFlow, JAX and pandas from source at start-up (import
# secretflow: 8 s, not 3 s). A no-op but for a check once everything is compiled.
uv sync --frozen --python 3.11 --quiet --compile-bytecode
