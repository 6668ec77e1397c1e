#!/usr/bin/env bash
# Browser tests of the built book (run scripts/book.sh first): Debian's headless Chromium,
# driven by Playwright, loads every page of _build/html from a local server with the network
# blocked. Installs chromium and chromium-driver with apt-get when they are missing (Playwright
# never downloads a browser here). Screenshots go to _build/html/_screenshots/.
# Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
source "$ROOT/scripts/system.sh"
cd "$ROOT"
if [ ! -f _build/html/index.html ]; then
  echo "[browser] no built book in _build/html: run 'bash scripts/book.sh' first"
  exit 1
fi
need_system chromium chromium
need_system chromedriver chromium-driver
echo "[browser] $(/usr/bin/chromium --version 2>/dev/null)"
python -m pytest tests/browser "$@"
