"""Sphinx extension: each chapter's "download .ipynb" button serves the executed notebook.

With `execute_notebooks: cache`, myst-nb 1.4 writes out the notebook it parsed rather than the
one it merged with the cached outputs, so a rebuild that re-executes nothing (the point of the
cache) would offer notebooks without outputs. After the HTML build, merge the cached outputs
(and saved widget state) into every downloadable notebook that lacks them.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from jupyter_cache import get_cache
from sphinx.application import Sphinx


def restore_cached_outputs(app: Sphinx, exception: Exception | None) -> None:
    """Rewrite `_sources/*.ipynb` in the HTML output with the outputs from the cache."""
    if exception is not None or app.builder.format != "html":
        return
    if app.config.nb_execution_mode != "cache":
        return
    cache = get_cache(app.config.nb_execution_cache_path or ".jupyter_cache")
    for path in sorted(Path(app.outdir, "_sources").rglob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        if any(cell.get("outputs") for cell in notebook.cells):
            continue
        try:
            _, merged = cache.merge_match_into_notebook(notebook)
        except KeyError:
            continue  # not in the cache: it was executed in this build and written whole
        nbformat.write(merged, path)


def setup(app: Sphinx) -> dict[str, bool]:
    app.connect("build-finished", restore_cached_outputs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
