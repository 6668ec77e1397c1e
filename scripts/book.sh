#!/usr/bin/env bash
# Build the book into _build/html, executing every chapter (creates/refreshes .venv first).
# Warnings and failing cells are errors. Extra arguments go to `jupyter-book build`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
source "$ROOT/scripts/system.sh"
# npm fetches the widget JavaScript once (scripts/fetch_widget_js.py); skipped when cached.
[ -f "$ROOT/.cache/html_extra/_static/widgets/embed-amd.js" ] || need_system npm npm
cd "$ROOT"
python -m ipykernel install --sys-prefix --name python3 >/dev/null
python scripts/fetch_widget_js.py
start=$(date +%s)
jupyter-book build . --all -W -n --keep-going "$@"
echo "[book] built in $(( $(date +%s) - start )) s: open $ROOT/_build/html/index.html"
