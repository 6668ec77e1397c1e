"""Every page of the table of contents, as Chromium renders it from the offline build."""

from __future__ import annotations

import json
import re

import pytest
from book_site import Visit, html_of

# Text a reader would see if MathJax had not run: TeX delimiters, or $...$ holding TeX.
RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\\begin\{|\$\$")
RAW_DOLLAR_TEX = re.compile(r"(?<![\\$])\$[^$\n]{1,200}?[\\^_{}][^$\n]{0,200}?\$")
# A widget whose state was not saved is printed as its Python repr instead of being drawn.
WIDGET_REPR = re.compile(
    r"^\s*(VBox|HBox|Box|IntSlider|FloatSlider|Dropdown|Text|Textarea|Output|Button|"
    r"interactive|Tab|Accordion|Checkbox|SelectionSlider)\(",
    re.M,
)

# The article text with code, scripts and typeset math removed.
_PROSE_JS = """
() => {
  const article = document.querySelector('article') || document.body;
  const copy = article.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, mjx-container, .cell_input')
      .forEach((e) => e.remove());
  return copy.textContent;
}
"""


def test_page_makes_no_request_off_this_machine(page_visit: Visit) -> None:
    page_visit.assert_offline()


def test_page_loads_without_console_errors(page_visit: Visit) -> None:
    assert page_visit.unexpected_console_errors() == []
    assert page_visit.failed_requests == []


def test_all_math_is_typeset(page_visit: Visit) -> None:
    page = page_visit.page
    n_math_nodes = (
        html_of(page_visit.docname).read_text().count('class="math notranslate nohighlight"')
    )
    untypeset = page.evaluate(
        "() => Array.from(document.querySelectorAll('.math'))"
        ".filter((e) => !e.querySelector('mjx-container')).map((e) => e.textContent.trim())"
    )
    assert untypeset == [], "math nodes MathJax did not typeset"
    n_typeset = page.locator("mjx-container").count()
    assert n_typeset >= n_math_nodes
    assert page.locator("mjx-merror").count() == 0, "MathJax reported a TeX error"
    prose = page.evaluate(_PROSE_JS)
    assert RAW_TEX.findall(prose) == [], "raw TeX delimiters left in the text"
    assert RAW_DOLLAR_TEX.findall(prose) == [], "raw $...$ math left in the text"


def test_no_cell_shows_an_error(page_visit: Visit) -> None:
    page = page_visit.page
    assert page.locator(".output.error, .output.traceback").count() == 0
    outputs = page.locator(".cell_output").all_inner_texts()
    assert [o for o in outputs if "Traceback (most recent call last)" in o] == []
    stderr = page.locator(".cell_output .stderr, .cell_output .output.stderr").all_inner_texts()
    assert [s for s in stderr if re.search(r"Traceback|Error\b", s)] == []


def test_every_image_is_loaded(page_visit: Visit) -> None:
    broken = [img["src"] for img in page_visit.images if img["naturalWidth"] == 0]
    assert broken == []
    page = page_visit.page
    empty_figures = page.evaluate(
        "() => Array.from(document.querySelectorAll('article figure'))"
        ".filter((f) => !f.querySelector('img, svg')).length"
    )
    assert empty_figures == 0


def test_saved_widgets_are_drawn(page_visit: Visit) -> None:
    html = html_of(page_visit.docname).read_text()
    n_views = html.count('type="application/vnd.jupyter.widget-view+json"')
    page = page_visit.page
    outputs = "\n".join(page.locator(".cell_output").all_inner_texts())
    assert WIDGET_REPR.findall(outputs) == [], "a widget shows its repr: its state was not saved"
    if n_views == 0:
        pytest.skip("no widget on this page")
    state_script = page.locator('script[type="application/vnd.jupyter.widget-state+json"]')
    assert state_script.count() == 1, "widget views but no saved widget state"
    state = json.loads(state_script.text_content())["state"]
    view_ids = [
        json.loads(s)["model_id"]
        for s in page.locator(
            'script[type="application/vnd.jupyter.widget-view+json"]'
        ).all_text_contents()
    ]
    assert [m for m in view_ids if m not in state] == [], "views of models with no saved state"
    drawn = page.locator(".widget-subarea > .jupyter-widgets")
    assert drawn.count() == n_views
    assert page.locator(".jupyter-widgets-error-widget").count() == 0
    for i in range(n_views):
        box = drawn.nth(i).bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0

    # The frozen page shows the saved defaults: every output the notebook left in a displayed
    # Output widget, with its images loaded, and every text box's saved value.
    shown = _reachable(state, view_ids)
    n_outputs = sum(
        len(state[m]["state"].get("outputs", []))
        for m in shown
        if state[m]["model_name"] == "OutputModel"
    )
    rendered = ".widget-subarea .widget-output .jp-OutputArea-output"
    page.wait_for_function(f"() => document.querySelectorAll('{rendered}').length >= {n_outputs}")
    assert page.locator(rendered).count() == n_outputs
    widths = page.locator(".widget-subarea img").evaluate_all(
        "async (imgs) => { await Promise.all(imgs.map((i) => i.decode().catch(() => null)));"
        " return imgs.map((i) => i.naturalWidth); }"
    )
    assert all(w > 0 for w in widths)
    texts = [
        state[m]["state"]["value"]
        for m in shown
        if state[m]["model_name"] in ("TextModel", "TextareaModel") and state[m]["state"]["value"]
    ]
    values = page.locator(".widget-subarea input, .widget-subarea textarea").evaluate_all(
        "(inputs) => inputs.map((i) => i.value)"
    )
    assert [t for t in texts if t not in values] == []


def _reachable(state: dict, roots: list[str]) -> set[str]:
    """Model ids displayed from `roots`: the roots and every model they reference."""
    seen, todo = set(), list(roots)
    while todo:
        model = todo.pop()
        if model in seen or model not in state:
            continue
        seen.add(model)
        todo += re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(state[model]["state"]))
    return seen
