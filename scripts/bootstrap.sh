#!/usr/bin/env bash
# Python side of `make setup`: uv (pinned) in .tools/, then .venv exactly as uv.lock says.
# Idempotent: a second run is a version check and a no-op `uv sync`.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
PYTHON=${PYTHON:-python3.11}

if ! command -v "$PYTHON" >/dev/null; then
  echo "error: $PYTHON was not found: install Python 3.11 (or set PYTHON=/path/to/python3.11)." >&2
  exit 1
fi
if [ ! -x .tools/bin/uv ] || [ "$(.tools/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  echo "==> Installing uv $UV_VERSION into .tools/"
  rm -rf .tools
  "$PYTHON" -m venv .tools
  .tools/bin/pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
echo "==> Python environment .venv (from uv.lock)"
UV_PYTHON_DOWNLOADS=never .tools/bin/uv sync --frozen --python "$PYTHON" --quiet
