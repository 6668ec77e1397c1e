"""Fetch the ipywidgets HTML manager and RequireJS from the npm registry, once.

The book is read offline, so the widget JavaScript is served from the build
(`html_extra_path`) instead of a CDN. Files land in .cache/html_extra/_static/widgets/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGES = {
    # npm spec -> {file inside the tarball: name in widgets/}
    "@jupyter-widgets/html-manager@1.0.15": {"package/dist/": ""},
    "requirejs@2.3.8": {"package/require.js": "require.min.js"},
}
EXTRA = Path(__file__).resolve().parent.parent / ".cache" / "html_extra"
# Sphinx serves a relative script path from _static/, so the files go to _static/widgets/.
OUT = EXTRA / "_static" / "widgets"
# The manager loads its icon fonts from "@jupyter-widgets/html-manager/dist/" relative to the
# page; every chapter lives in book/, so the fonts are served from there too.
FONTS = EXTRA / "book" / "@jupyter-widgets" / "html-manager" / "dist"
FONT_SUFFIXES = {".woff2", ".woff", ".ttf", ".eot", ".svg"}


def main() -> int:
    if (OUT / "embed-amd.js").exists() and (OUT / "require.min.js").exists() and FONTS.exists():
        return 0
    if shutil.which("npm") is None:
        print("[book] npm is needed once to fetch the widget JavaScript; install Node.js")
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for spec, members in PACKAGES.items():
            out = subprocess.run(
                ["npm", "pack", "--silent", spec],
                cwd=tmp,
                check=True,
                capture_output=True,
                text=True,
            )
            tarball = Path(tmp) / out.stdout.strip().splitlines()[-1]
            with tarfile.open(tarball) as tar:
                for member in tar.getmembers():
                    for prefix, rename in members.items():
                        if member.isfile() and member.name.startswith(prefix):
                            name = rename or member.name[len(prefix) :]
                            target = OUT / name
                            target.parent.mkdir(parents=True, exist_ok=True)
                            target.write_bytes(tar.extractfile(member).read())
    FONTS.mkdir(parents=True, exist_ok=True)
    for font in OUT.iterdir():
        if font.suffix in FONT_SUFFIXES:
            (FONTS / font.name).write_bytes(font.read_bytes())
    print(f"[book] widget JavaScript in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
