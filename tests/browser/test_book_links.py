"""Offline link check of the built HTML, launch and download buttons, and the bibliography.

External URLs are not fetched (no network here); every internal `href`/`src` must name a file
of the build, and every `#fragment` an `id` in it. Sphinx's own `-n -W` build already fails on
unresolved cross-references; this checks what actually reached the HTML.
"""

from __future__ import annotations

import json
import re
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from book_site import HTML, NOTEBOOK_PAGES, PAGES, ROOT, html_of

SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
LAUNCHERS = {
    "Binder": "https://mybinder.org/v2/gh/",
    "JupyterHub": "/hub/user-redirect/git-pull?",
    "Colab": "https://colab.research.google.com/github/",
}


class _Links(HTMLParser):
    """Collects (attribute, value) of every href/src, and every id/name, of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[tuple[str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("href", "src"):
                self.targets.append((name, value))
            elif name == "id" or (name == "name" and tag == "a"):
                self.ids.add(value)


@cache
def parse(path: Path) -> _Links:
    links = _Links()
    links.feed(path.read_text(encoding="utf-8"))
    return links


def broken_links(page: Path, root: Path = HTML) -> list[str]:
    """Internal links of `page` whose file or anchor does not exist in the build at `root`."""
    page, broken = page.resolve(), []
    for attr, value in parse(page).targets:
        if SCHEME.match(value) or value.startswith("//"):
            continue  # external (http, mailto, data, javascript): not fetched offline
        url = urlsplit(value)
        target = (page.parent / unquote(url.path)).resolve() if url.path else page
        if target.is_dir():
            target = target / "index.html"
        if root not in target.parents or not target.is_file():
            broken.append(f"{attr}={value}: no file {target}")
        elif (
            url.fragment
            and target.suffix == ".html"
            and unquote(url.fragment) not in parse(target).ids
        ):
            broken.append(f"{attr}={value}: no id #{url.fragment} in {target.name}")
    return broken


@pytest.mark.parametrize("docname", PAGES)
def test_internal_links_resolve(docname: str) -> None:
    page = html_of(docname)
    assert page.is_file(), f"{docname} is in _toc.yml but was not built"
    assert parse(page).targets, "a page with no links at all: wrong file?"
    assert broken_links(page) == []


def test_link_check_catches_a_broken_link(tmp_path: Path) -> None:
    # The checker itself: a missing file, a missing anchor and a path out of the build.
    (tmp_path / "other.html").write_text('<p id="there"></p>')
    page = tmp_path / "page.html"
    page.write_text(
        '<a id="here" href="#here"></a><a href="other.html#there"></a>'
        '<a href="nope.html"></a><a href="other.html#gone"></a><a href="../x.html"></a>'
        '<a href="https://example.org/"></a>'
    )
    found = broken_links(page, root=tmp_path.resolve())
    assert len(found) == 3
    assert "nope.html" in found[0] and "#gone" in found[1] and "../x.html" in found[2]


@pytest.mark.parametrize("docname", NOTEBOOK_PAGES)
def test_chapter_has_launch_and_download_buttons(docname: str) -> None:
    hrefs = [v for a, v in parse(html_of(docname)).targets if a == "href"]
    for name, marker in LAUNCHERS.items():
        launch = [h for h in hrefs if marker in h]
        assert launch, f"no {name} launch button"
        assert all(docname in unquote(h) for h in launch), f"{name} button names another page"
    # The download button offers the executed notebook, and it is in the build.
    ipynb = [h for h in hrefs if h.endswith(f"_sources/{docname}.ipynb")]
    assert ipynb, "no download link for the executed notebook"
    notebook = json.loads((html_of(docname).parent / ipynb[0]).read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code and all(c.get("execution_count") for c in code), "notebook not executed"


def _bib_keys() -> list[str]:
    text = (ROOT / "book" / "references.bib").read_text()
    return re.findall(r"^@\w+\{([^,\s]+),", text, re.M)


def test_bibliography_keys_are_unique() -> None:
    keys = _bib_keys()
    assert keys and len(keys) == len(set(keys))


def test_bibliography_page_lists_every_entry() -> None:
    pages = [d for d in PAGES if d.endswith("bibliography")]
    assert pages, "book/bibliography is not in _toc.yml"
    html = html_of(pages[0]).read_text()
    # sphinxcontrib-bibtex renders each entry as one citation item (<div class="citation">).
    n_entries = len(re.findall(r'<div class="citation" id="', html))
    assert n_entries == len(_bib_keys())
    for key, arxiv in re.findall(
        r"^@\w+\{([^,\s]+),[^@]*?eprint\s*=\s*\{([^}]+)\}",
        (ROOT / "book" / "references.bib").read_text(),
        re.M,
    ):
        assert f"arxiv.org/abs/{arxiv}" in html, f"{key}: arXiv {arxiv} not linked"
