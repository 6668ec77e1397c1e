#!/usr/bin/env bash
# Run the whole test suite (creates/refreshes .venv first). Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
echo "[test] ruff"
ruff check .
ruff format --check .
echo "[test] pytest"
python -m pytest -n 2 "$@"
