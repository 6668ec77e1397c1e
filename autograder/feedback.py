"""Per-student HTML feedback: what passed, what failed and why, nothing hidden revealed.

Failures on visible cases show the same readable mismatch as the notebook's test cell
(inputs, first differing element, expected next to got); failures on hidden cases only say
that a hidden case failed and whether the type, shape or values were wrong. Everything the
learner wrote is escaped. No timestamps: grading twice gives byte-identical files.
"""

from __future__ import annotations

from html import escape

from autograder.evaluate import ERROR, FLAGGED, Outcome

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 56rem; margin: 2rem auto; padding: 0 1rem; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #ddd; padding: .35rem .5rem; text-align: left; }
pre { background: #f6f6f6; padding: .6rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.ok { color: #176e2a; } .fail { color: #a4121b; } .flagged, .error { color: #8a5300; }
"""


def render(
    assignment: str,
    student: str,
    outcomes: list[Outcome],
    notes: list[str],
    late: tuple[float, str] | None = None,
) -> str:
    """The feedback page of one student; `late`: (penalty, why) under a late policy."""
    auto = [o for o in outcomes if o.score is not None or o.status == ERROR]
    earned = sum(o.score or 0.0 for o in auto)
    possible = sum(o.max for o in auto)
    manual = sum(o.max for o in outcomes if o.score is None and o.status != ERROR)
    rows = "\n".join(
        f"<tr><td>{escape(o.part)}</td><td>{_score(o)}</td>"
        f'<td class="{_css(o)}">{escape(_verdict(o))}</td></tr>'
        for o in outcomes
    )
    sections = "\n".join(
        f'<section><h2>{escape(o.part)} <span class="{_css(o)}">{escape(_verdict(o))}</span>'
        f"</h2><pre>{escape(o.feedback)}</pre></section>"
        for o in outcomes
    )
    notes_html = (
        "<h2>About your notebook</h2><ul>"
        + "".join(f"<li>{escape(n)}</li>" for n in notes)
        + "</ul>"
        if notes
        else ""
    )
    summary = f"Autograded score: {earned:g} / {possible:g}"
    if manual:
        summary += f" (plus up to {manual:g} points graded by hand)"
    late_html = ""
    if late is not None:
        penalty, why = late
        late_html = f"<p>Late policy: {escape(why)}."
        if penalty:
            late_html += f" Score after the penalty: {earned - penalty:g} / {possible:g}."
        late_html += "</p>\n"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{escape(assignment)}: feedback for {escape(student)}</title>
<style>{_CSS}</style></head>
<body>
<h1>{escape(assignment)}: feedback for {escape(student)}</h1>
<p>{escape(summary)}. Hidden test cases are not shown; a failure on one says only whether
the type, the shape or the values of your output were wrong.</p>
{late_html}<table><tr><th>part</th><th>points</th><th>result</th></tr>
{rows}
</table>
{notes_html}
{sections}
</body></html>
"""


def _score(o: Outcome) -> str:
    if o.score is None:
        return f"— / {o.max:g}"
    return f"{o.score:g} / {o.max:g}"


def _verdict(o: Outcome) -> str:
    if o.status == ERROR:
        return "not graded" if o.score is None else "error"
    if o.status == FLAGGED:
        return "flagged for review"
    if o.score is None:
        return "graded by hand"
    return "passed" if o.score == o.max else "failed"


def _css(o: Outcome) -> str:
    verdict = _verdict(o)
    return {"passed": "ok", "failed": "fail", "error": "error", "not graded": "error"}.get(
        verdict, "flagged"
    )
