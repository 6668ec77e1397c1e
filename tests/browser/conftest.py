"""Browser tests of the built book: Debian's headless Chromium driven by Playwright, offline.

The tests read an existing build in `_build/html` (or `$BOOK_HTML`), serve it over HTTP on
127.0.0.1 and block every request that would leave this machine. They are collected only
when `tests/browser` is named on the command line, as `scripts/browser_tests.sh` does, so
`bash scripts/test.sh` needs neither a built book nor a browser.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from book_site import CHROMIUM, CHROMIUM_ARGS, HERE, HTML, PAGES, Visit, html_of, open_page


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Skip this folder unless a command-line argument points into it."""
    if HERE not in collection_path.parents:
        return None
    cwd = config.invocation_params.dir
    asked = [(cwd / str(arg).split("::")[0]).resolve() for arg in config.args]
    return not any(a == HERE or HERE in a.parents for a in asked)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass


@pytest.fixture(scope="session")
def base_url() -> Iterator[str]:
    """The built book served over HTTP on 127.0.0.1, on a free port."""
    if not (HTML / "index.html").is_file():
        pytest.fail(f"no built book in {HTML}: run `bash scripts/book.sh` first", pytrace=False)
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless (Playwright never downloads a browser here)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run `bash scripts/browser_tests.sh`", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def open_visit(browser: object, base_url: str) -> Iterator[Callable[[str], Visit]]:
    """Factory: open a page by path; every page it opened is closed at the end."""
    opened: list[Visit] = []

    def _open(path: str) -> Visit:
        visit = open_page(browser, base_url, path)
        opened.append(visit)
        return visit

    yield _open
    for visit in opened:
        visit.page.context.close()


@pytest.fixture(scope="session", params=PAGES)
def page_visit(request: pytest.FixtureRequest, browser: object, base_url: str) -> Iterator[Visit]:
    """Each page of the table of contents, loaded once and shared by the per-page checks."""
    docname = request.param
    if not html_of(docname).is_file():
        pytest.fail(f"{docname} is in _toc.yml but {html_of(docname)} was not built")
    visit = open_page(browser, base_url, f"{docname}.html")
    yield visit
    visit.page.context.close()
