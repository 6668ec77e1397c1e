"""The built book as the browser tests see it: pages of the table of contents, and a page
opened in Chromium with every request off 127.0.0.1 blocked and recorded."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html")).resolve()
SCREENSHOTS = HTML / "_screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-gpu",
]
# The only console errors a page may log, matched exactly. Both come from the theme on every
# page and change nothing a reader sees (shared/notes/jupyter-book.md): sphinx-thebe's
# inline script is included twice, and pydata-sphinx-theme resets an unset theme mode.
ALLOWED_CONSOLE_ERRORS = frozenset(
    {
        "uncaught: Identifier 'THEBE_JS_URL' has already been declared",
        "Got invalid theme mode: . Resetting to auto.",
    }
)
TIMEOUT_MS = 30_000


def toc_docnames(toc_file: Path = ROOT / "_toc.yml") -> list[str]:
    """Every document of the table of contents, in reading order (root first)."""
    toc = yaml.safe_load(toc_file.read_text())
    names = [toc["root"]]

    def walk(entries: list[dict] | None) -> None:
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    return [re.sub(r"\.(md|ipynb)$", "", name) for name in names]


def source_of(docname: str) -> Path:
    """The source file of a document: `.md` (MyST, maybe a jupytext notebook) or `.ipynb`."""
    for suffix in (".md", ".ipynb"):
        path = ROOT / f"{docname}{suffix}"
        if path.exists():
            return path
    raise FileNotFoundError(f"no source for {docname} in {ROOT}")


def is_notebook(docname: str) -> bool:
    """True for an executed page: an `.ipynb`, or MyST markdown with a kernelspec header."""
    try:
        source = source_of(docname)
    except FileNotFoundError:
        return False  # a page in _toc.yml with no source: the page tests report it
    if source.suffix == ".ipynb":
        return True
    header = re.match(r"---\n(.*?)\n---\n", source.read_text(), re.S)
    return bool(header) and "kernelspec" in header.group(1)


def html_of(docname: str) -> Path:
    """The built HTML file of a document."""
    return HTML / f"{docname}.html"


PAGES = toc_docnames()
NOTEBOOK_PAGES = [d for d in PAGES if is_notebook(d)]
FIRST_CHAPTER = NOTEBOOK_PAGES[0] if NOTEBOOK_PAGES else PAGES[0]


@dataclass
class Visit:
    """One page opened in the browser, with what happened while it loaded."""

    page: object  # playwright.sync_api.Page
    url: str
    console_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)

    @property
    def docname(self) -> str:
        """`book/intro` for http://127.0.0.1:port/book/intro.html."""
        return self.url.split("/", 3)[3].split("?")[0].removesuffix(".html")

    def unexpected_console_errors(self) -> list[str]:
        return [m for m in self.console_errors if not any(a in m for a in ALLOWED_CONSOLE_ERRORS)]

    def assert_offline(self) -> None:
        assert not self.external_requests, (
            f"{self.url} tried to reach the network: {self.external_requests}"
        )


# Runs in the page once it has loaded: waits for MathJax's first typesetting pass and for the
# widget manager to render every saved view, then makes every image load and reports them.
_SETTLE_JS = """
async (timeoutMs) => {
  const deadline = Date.now() + timeoutMs;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  if (document.querySelector('.math, .MathJax_Preview, script[src*="mathjax"]')) {
    while (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
      if (Date.now() > deadline) break;
      await sleep(50);
    }
    if (window.MathJax && MathJax.startup) await MathJax.startup.promise;
  }
  const state = document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]');
  const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]');
  if (state && views.length) {
    while (document.querySelectorAll('.widget-subarea > *').length < views.length) {
      if (Date.now() > deadline) break;
      await sleep(50);
    }
  }
  const images = Array.from(document.images);
  for (const img of images) img.loading = 'eager';
  await Promise.all(images.map((img) => img.decode().catch(() => null)));
  return images.map((img) => ({
    src: img.getAttribute('src'), naturalWidth: img.naturalWidth, complete: img.complete,
    inFigure: !!img.closest('figure, .cell_output, .output'),
  }));
}
"""


def open_page(browser: object, base_url: str, path: str) -> Visit:
    """Open `path` (relative to the book root) in a fresh context that cannot leave 127.0.0.1."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    visit = Visit(page=page, url=base_url + path)
    local = urlsplit(base_url).netloc

    def route(route_) -> None:
        if urlsplit(route_.request.url).netloc == local:
            route_.continue_()
        else:
            visit.external_requests.append(route_.request.url)
            route_.abort()

    def on_response(response) -> None:
        if response.status >= 400:
            visit.failed_requests.append(f"{response.status} {response.url}")

    def on_failed(request) -> None:
        if urlsplit(request.url).netloc == local:
            visit.failed_requests.append(f"{request.failure} {request.url}")

    context.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and visit.console_errors.append(m.text))
    page.on("pageerror", lambda e: visit.console_errors.append(f"uncaught: {e}"))
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    page.goto(visit.url, wait_until="load")
    visit.images = page.evaluate(_SETTLE_JS, TIMEOUT_MS)
    page.wait_for_load_state("networkidle")
    return visit
