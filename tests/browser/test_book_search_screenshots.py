"""The search page, and screenshots of representative pages for a person to review."""

from __future__ import annotations

from collections.abc import Callable

from book_site import FIRST_CHAPTER, PAGES, SCREENSHOTS, Visit, html_of

# A term that chapter 1 (embeddings) is about; checked against its HTML below.
TERM = "cosine"


def test_search_finds_a_term_from_chapter_1(open_visit: Callable[[str], Visit]) -> None:
    assert TERM in html_of(FIRST_CHAPTER).read_text().lower(), "premise: the term is in ch. 1"
    visit = open_visit(f"search.html?q={TERM}")
    page = visit.page
    page.locator("#search-results ul.search li").first.wait_for()
    hits = page.locator("#search-results ul.search li a").evaluate_all(
        "(links) => links.map((a) => a.getAttribute('href'))"
    )
    assert any(h.split("?")[0].split("#")[0] == f"{FIRST_CHAPTER}.html" for h in hits), hits
    visit.assert_offline()
    assert visit.unexpected_console_errors() == []


def test_search_finds_nothing_for_a_word_not_in_the_book(
    open_visit: Callable[[str], Visit],
) -> None:
    # The page really searches: a word that appears nowhere gives no result.
    visit = open_visit("search.html?q=xylophonequux")
    page = visit.page
    page.locator("#search-results .search-summary").wait_for()
    assert page.locator("#search-results ul.search li").count() == 0


def test_screenshots_of_three_pages(open_visit: Callable[[str], Visit]) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    front = open_visit(f"{PAGES[0]}.html")
    front.page.screenshot(path=SCREENSHOTS / "front_page.png")

    chapter = open_visit(f"{FIRST_CHAPTER}.html")
    chapter.page.screenshot(path=SCREENSHOTS / "chapter1_top.png")

    figure = chapter.page.locator("article .cell_output img").first
    # Centre the figure in the viewport so the text around it shows too.
    figure.evaluate("(img) => img.scrollIntoView({block: 'center'})")
    assert figure.evaluate("(img) => img.naturalWidth") > 0
    chapter.page.screenshot(path=SCREENSHOTS / "chapter1_figure.png")

    # And the chapter's first displayed equation, to see the typeset math.
    math = chapter.page.locator("article div.math").first
    math.evaluate("(m) => m.scrollIntoView({block: 'center'})")
    assert math.locator("mjx-container").count() == 1
    chapter.page.screenshot(path=SCREENSHOTS / "chapter1_math.png")

    for visit in (front, chapter):
        visit.assert_offline()
    for name in ("front_page", "chapter1_top", "chapter1_figure", "chapter1_math"):
        # A blank 1280x900 PNG compresses to a few kB; a rendered page is far larger.
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 20_000, name
