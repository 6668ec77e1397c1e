"""The class report (autograder.report) from a hand-written grades.csv: counts per part, the
most failed part with its most common failure (numbers and case labels removed), a plot, and
learner text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from autograder.__main__ import main
from autograder.report import normalise, read_grades, summarise

HOSTILE = "AssertionError: <img src=x onerror=alert(1)>"
GRADES = f"""student,part,score,max,status,reason
ann,ex1_dot,1.0,1.0,ok,
ann,ex2_cosine,0.0,2.0,ok,"AssertionError: cosine_similarity failed on case 3 of 8 (random #2, seed 7)."
ann,ex3_top_k,1.0,1.0,ok,
ann,ex5_answer,,2.0,ok,manual grading required
ben,ex1_dot,1.0,1.0,ok,
ben,ex2_cosine,0.0,2.0,ok,"AssertionError: cosine_similarity failed on case 5 of 8 (random #4, seed 9). (hidden test) [misconception: no zero check]"
ben,ex3_top_k,0.0,1.0,error,your code took longer than 6 s (time limit) in this cell
ben,ex5_answer,,2.0,ok,manual grading required
ben,late penalty,-0.5,0.0,ok,12 hours late
cat,ex1_dot,0.0,1.0,ok,"{HOSTILE.replace('"', '""')}"
cat,ex2_cosine,0.0,2.0,ok,"AssertionError: cosine_similarity failed on case 1 of 8 (zero vector). (hidden test) [misconception: no zero check]"
cat,ex3_top_k,1.0,1.0,ok,
cat,ex5_answer,,2.0,ok,manual grading required
dan,ex1_dot,1.0,1.0,ok,
dan,ex2_cosine,0.0,2.0,ok,NameError: name 'dot' is not defined
dan,ex3_top_k,0.0,1.0,flagged,uses the reference solution
dan,ex5_answer,,2.0,ok,manual grading required
"""


@pytest.fixture
def out(tmp_path) -> Path:
    (tmp_path / "grades.csv").write_text(GRADES)
    return tmp_path


def test_normalise_removes_numbers_and_case_labels():
    a = normalise("AssertionError: f failed on case 3 of 8 (random #2, seed 7). (hidden test)")
    b = normalise("AssertionError: f failed on case 5 of 8 (random #4, seed 9). (hidden test)")
    assert a == b == "assertionerror: f failed on case N of N. (hidden test)"
    c = normalise("AssertionError: f failed on case 1 of 12 (zero vector). (hidden test)")
    assert c == a
    assert normalise("took longer than 6 s") == normalise("took longer than 2.5 s")
    assert normalise("NameError: name 'dot'") != normalise("NameError: name 'cos'")


def test_counts_per_part(out):
    parts = {s.part: s for s in summarise(read_grades(out / "grades.csv"))}
    assert list(parts) == ["ex1_dot", "ex2_cosine", "ex3_top_k", "ex5_answer"]  # no late row
    ex1, ex2, ex3, ex5 = parts.values()
    assert (ex1.full, ex1.none, ex1.failed, ex1.mean) == (3, 1, 1, 0.75)
    assert (ex2.full, ex2.none, ex2.failed, ex2.mean) == (0, 4, 4, 0.0)
    assert (ex3.full, ex3.errors, ex3.flagged, ex3.failed) == (2, 1, 1, 1)
    assert ex3.mean == pytest.approx(2 / 3)  # the flagged row is not averaged
    assert (ex5.manual, ex5.failed) == (4, 0)
    # ben's and cat's hidden-case failures are one once case ids are gone; ann's was visible
    reason, count = ex2.failures.most_common(1)[0]
    assert (reason, count) == (
        "assertionerror: cosine_similarity failed on case N of N. (hidden test) "
        "[misconception: no zero check]",
        2,
    )
    assert ex2.misconceptions == {"no zero check": 2} and not ex1.misconceptions
    assert len(ex2.failures) == 3  # plus ann's visible case and dan's NameError


def test_report_html_and_plot(out):
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    worst = html.split("<h2>Most failed parts</h2>")[1]
    rows = worst.split("<tr>")[2:]
    assert rows[0].startswith("<td>ex2_cosine</td><td>4 of 4</td>")
    assert (
        "failed on case N of N. (hidden test) [misconception: no zero check]</td><td>2</td>"
        in rows[0]
    )
    known = html.split("<h2>Known mistakes</h2>")[1]
    assert "<tr><td>ex2_cosine</td><td>no zero check</td><td>2</td></tr>" in known
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(N)&gt;" in html
    svg = (out / "scores.svg").read_text()
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert all(p in svg for p in ("ex1_dot", "ex2_cosine", "ex5_answer"))
    assert "late penalty" not in svg.split("totals")[0]  # not drawn as a part
    first = (out / "report.html").read_bytes(), (out / "scores.svg").read_bytes()
    assert main(["report", str(out)]) == 0
    assert ((out / "report.html").read_bytes(), (out / "scores.svg").read_bytes()) == first


def test_report_without_grades_is_an_error(tmp_path):
    assert main(["report", str(tmp_path)]) == 2
