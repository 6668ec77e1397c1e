"""nbgrader's gradebook as the record: grade -> gradebook -> a written answer graded -> export.

A class of two ps01 students (one correct, one with stubs left) in nbgrader's layout is graded
once by `python -m autograder grade`, then recorded with `python -m autograder gradebook` into
a copy of the course (its nbgrader_config.py, source and release of ps01). The expected values
come from the autograder's grades.csv and are read back through nbgrader's own code: its
Gradebook, its `determine_grade` on the autograded notebooks, and its CSV export plugin (what
`nbgrader export` runs).
"""

from __future__ import annotations

import csv
import random
import sqlite3
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.plugins.export import CsvExportPlugin
from nbgrader.utils import determine_grade

from autograder import synthetic
from autograder.__main__ import main
from autograder.gradebook import course_config

ROOT = Path(__file__).resolve().parents[1]
WRITTEN = "ex5_answer"  # ps01's written answer (2 points, graded by hand)


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _record(graded) -> None:
    _, out, course = graded
    assert main(["gradebook", str(out), "--course", str(course)]) == 0


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _dump(db: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(db) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}"))) for t in tables}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("gradebook")
    students = {
        "ada": ("correct", synthetic.correct(ROOT, "ps01")),
        "bob": ("wrong", synthetic.wrong(ROOT, "ps01", random.Random(3))),
    }
    subs = synthetic.write_class(students, base / "subs", "ps01", "ps01.ipynb")
    out, course = base / "out", synthetic.course_folder(ROOT, base / "course")
    assert (
        main(["grade", "ps01", str(subs), "--out", str(out), "--jobs", "2", "--no-progress"]) == 0
    )
    before = _files(subs)
    _record((subs, out, course))
    assert _files(subs) == before  # nothing submitted is modified
    return subs, out, course


def _gradebook(course: Path) -> Gradebook:
    cd = course_config(course).CourseDirectory
    return Gradebook(f"sqlite:///{course / 'gradebook.db'}", cd.course_id)


def test_scores_in_nbgrader_gradebook_equal_grades_csv(graded):
    _, out, course = graded
    rows = _csv(out / "grades.csv")
    assert {r["student"] for r in rows} == {"ada", "bob"}
    with _gradebook(course) as gb:
        assert sorted(s.id for s in gb.students) == ["ada", "bob"]
        cells = {c.name for c in gb.find_notebook("ps01", "ps01").grade_cells}
        assert cells == {r["part"] for r in rows}  # generate_assignment's cells = graded parts
        for r in rows:
            grade = gb.find_grade(r["part"], "ps01", "ps01", r["student"])
            expected = float(r["score"]) if r["score"] else None
            assert grade.auto_score == expected, r
            assert grade.max_score == float(r["max"])
            assert grade.needs_manual_grade == (r["part"] == WRITTEN)
        bob = gb.find_submission("ps01", "bob")
        assert 0 < bob.score < bob.max_score  # stubs left: some parts lost


def test_autograded_notebooks_for_formgrader(graded):
    subs, out, course = graded
    for student in ("ada", "bob"):
        nb = nbformat.read(course / "autograded" / student / "ps01" / "ps01.ipynb", as_version=4)
        submitted = nbformat.read(subs / student / "ps01" / "ps01.ipynb", as_version=4)
        by_id = {c.metadata.nbgrader["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}
        answer = next(
            c for c in submitted.cells if c.metadata.get("nbgrader", {}).get("grade_id") == WRITTEN
        )
        assert by_id[WRITTEN].source == answer.source  # formgrader shows the learner's answer
        with _gradebook(course) as gb:
            for gid, cell in by_id.items():
                meta = cell.metadata.nbgrader
                if meta.get("grade") and not meta.get("solution"):  # nbgrader reads the outputs
                    auto, _ = determine_grade(cell)
                    assert auto == gb.find_grade(gid, "ps01", "ps01", student).auto_score


def test_running_twice_gives_the_same_database_and_files(graded):
    _, _, course = graded
    db, before = _dump(course / "gradebook.db"), _files(course / "autograded")
    _record(graded)
    assert _dump(course / "gradebook.db") == db
    assert _files(course / "autograded") == before


def test_written_answer_graded_then_nbgrader_export_totals(graded, tmp_path):
    _, out, course = graded
    with _gradebook(course) as gb:  # as formgrader's PUT /formgrader/api/grade/<id> does
        grade = gb.find_grade(WRITTEN, "ps01", "ps01", "ada")
        grade.manual_score = 1.5
        grade.needs_manual_grade = False
        gb.db.commit()
    _record(graded)  # a later run keeps the human's grade
    with _gradebook(course) as gb:
        grade = gb.find_grade(WRITTEN, "ps01", "ps01", "ada")
        assert (grade.manual_score, grade.needs_manual_grade) == (1.5, False)
        export = tmp_path / "grades.csv"
        CsvExportPlugin(to=str(export)).export(gb)  # `nbgrader export --to grades.csv`
    auto: dict[str, float] = {}
    for r in _csv(out / "grades.csv"):
        auto[r["student"]] = auto.get(r["student"], 0.0) + float(r["score"] or 0)
    manual = {"ada": 1.5, "bob": 0.0}  # bob's answer is not graded yet
    rows = {r["student_id"]: r for r in _csv(export)}
    assert set(rows) == {"ada", "bob"}
    for student, row in rows.items():
        assert float(row["score"]) == pytest.approx(auto[student] + manual[student])
        assert float(row["max_score"]) == 14.0  # 12 autograded points + the 2-point answer


def test_a_resubmission_sends_the_graded_answer_back_for_review(graded):
    subs, out, course = graded
    with _gradebook(course) as gb:
        grade = gb.find_grade(WRITTEN, "ps01", "ps01", "bob")
        grade.manual_score, grade.needs_manual_grade = 1.0, False
        gb.db.commit()
    path = subs / "bob" / "ps01" / "ps01.ipynb"  # bob hands in a new answer
    nb = nbformat.read(path, as_version=4)
    synthetic.set_cell(nb, WRITTEN, "A new answer.\n")
    nbformat.write(nb, path)
    argv = ["grade", "ps01", str(subs), "--out", str(out), "--student", "bob", "--no-progress"]
    assert main(argv) == 0
    _record(graded)
    with _gradebook(course) as gb:  # as nbgrader's SaveAutoGrades: kept, but to review
        grade = gb.find_grade(WRITTEN, "ps01", "ps01", "bob")
        assert (grade.manual_score, grade.needs_manual_grade) == (1.0, True)
        ada = gb.find_grade(WRITTEN, "ps01", "ps01", "ada")
        assert ada.needs_manual_grade == (ada.manual_score is None)  # unchanged: as it was
