"""The instructor's whole workflow on one small class, end to end (issue 25).

Three ps01 learners in an LMS download (two Moodle folders with nbgrader's timestamp.txt, one
Canvas file name), in a copy of the course whose nbgrader gradebook stores ps01's due date:

grade (the late penalty from the stored due date) -> record in nbgrader's gradebook -> one
written answer graded through nbgrader's API (as formgrader's grade PUT does) -> nbgrader's
export (its CsvExportPlugin, what `nbgrader export` runs) gives the combined totals -> Canvas
and Moodle CSVs with those totals -> a re-run grades nothing, then only the learner who
resubmitted, with the same outputs as a full run -> the similarity report puts the copied
pair first -> the class report. Expected values are recomputed from grades.csv and from
nbgrader's own code, never typed in.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from nbgrader.api import Gradebook
from nbgrader.plugins.export import CsvExportPlugin
from nbgrader.preprocessors.latesubmissions import AssignLatePenalties

from autograder import synthetic
from autograder.__main__ import main
from autograder.gradebook import alembic_on_path, course_config
from autograder.spec import RELEASE_DIR

ROOT = Path(__file__).resolve().parents[1]
DUE = "2025-03-01 12:00:00 UTC"
PENALTY = "per-hour:1:4"
ADA = "Ada Lovelace_101_assignsubmission_file_"
BEN = "Ben Bitdiddle_102_assignsubmission_file_"
CAT = "catmoreau_303_999_ps01.ipynb"  # Canvas: <login>_<user id>_<attachment id>_<file>
WRITTEN = "ex5_answer"
CAT_DOT = """def dot(a, b):
    rows = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    out = np.einsum("nd,nd->n", *rows)
    return out if np.ndim(a) == 2 else out[0]
"""


def _write(path: Path, nb: dict, when: datetime | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))
    if when is not None:  # the Canvas file's time: its only submission time
        os.utime(path, (when.timestamp(), when.timestamp()))


def _class(lms: Path) -> None:
    ada = synthetic.correct(ROOT, "ps01")
    _write(lms / ADA / "ps01.ipynb", ada)
    (lms / ADA / "timestamp.txt").write_text("2025-03-01 11:00:00.000000 UTC\n")
    ben = json.loads(json.dumps(ada))  # Ada's notebook, each solution cell under a comment
    for gid in synthetic.solution_ids(ROOT, "ps01"):
        synthetic.set_cell(ben, gid, "# my own work\n" + synthetic.cell_source(ada, gid))
    _write(lms / BEN / "ps01.ipynb", ben)
    (lms / BEN / "timestamp.txt").write_text("2025-03-01 14:30:00.000000 UTC\n")  # 2.5 h late
    cat = synthetic.load(ROOT, "ps01", RELEASE_DIR)  # the stubs as released, and an answer
    synthetic.set_cell(cat, WRITTEN, "Cosine ignores the length of the vectors.\n")
    _write(lms / CAT, cat, datetime(2025, 3, 1, 10, 0, tzinfo=UTC))


def _gradebook(course: Path) -> Gradebook:
    cd = course_config(course).CourseDirectory
    return Gradebook(f"sqlite:///{course / 'gradebook.db'}", cd.course_id)


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _outputs(out: Path) -> dict[str, bytes]:
    files = [out / "grades.csv", out / "students.csv", *sorted((out / "feedback").iterdir())]
    return {str(p.relative_to(out)): p.read_bytes() for p in files}


def _grade(lms: Path, out: Path, course: Path) -> int:
    argv = ["grade", "ps01", str(lms), "--out", str(out), "--course-root", str(course)]
    return main([*argv, "--late-penalty", PENALTY, "--jobs", "2", "--no-progress"])


def test_the_whole_workflow(tmp_path, capsys):
    lms, out = tmp_path / "lms", tmp_path / "out"
    course = synthetic.course_folder(ROOT, tmp_path / "course")
    _class(lms)
    alembic_on_path()
    with _gradebook(course) as gb:  # what `nbgrader db assignment add ps01 --duedate=...` does
        gb.update_or_create_assignment("ps01", duedate=DUE)

    # 1. grade: the late penalty comes from the stored due date
    assert _grade(lms, out, course) == 0
    assert "due date from nbgrader gradebook" in capsys.readouterr().out
    rows = _csv(out / "grades.csv")
    assert {r["student"] for r in rows} == {"Ada_Lovelace", "Ben_Bitdiddle", "catmoreau"}
    parts = {s: sum(float(r["score"] or 0) for r in rows if r["student"] == s and r["part"] != "late penalty") for s in ("Ada_Lovelace", "Ben_Bitdiddle", "catmoreau")}  # fmt: skip
    late = {r["student"]: float(r["score"]) for r in rows if r["part"] == "late penalty"}
    # nbgrader's docs plugin: round(2.5 h) points, under the cap; AssignLatePenalties' clamp
    expected = AssignLatePenalties()._check_late_penalty(
        SimpleNamespace(score=parts["Ben_Bitdiddle"]), min(round(2.5, 0), 4)
    )
    assert late == {"Ben_Bitdiddle": -expected} and expected > 0
    assert parts["catmoreau"] < parts["Ada_Lovelace"] == parts["Ben_Bitdiddle"]

    # 2. nbgrader's gradebook, one written answer graded as formgrader does, nbgrader export
    assert main(["gradebook", str(out), "--course", str(course)]) == 0
    with _gradebook(course) as gb:
        grade = gb.find_grade(WRITTEN, "ps01", "ps01", "Ada_Lovelace")
        assert grade.needs_manual_grade and grade.auto_score is None
        grade.manual_score, grade.needs_manual_grade = 1.5, False
        gb.db.commit()
        CsvExportPlugin(to=str(tmp_path / "nbgrader.csv")).export(gb)
    exported = {r["student_id"]: r for r in _csv(tmp_path / "nbgrader.csv")}
    manual = {"Ada_Lovelace": 1.5, "Ben_Bitdiddle": 0.0, "catmoreau": 0.0}
    combined = {}
    for student, row in exported.items():
        total = parts[student] + manual[student] + late.get(student, 0.0)
        assert float(row["score"]) == pytest.approx(total), row
        assert row["duedate"] == "2025-03-01 12:00:00"  # the stored one
        assert float(row["late_submission_penalty"]) == -late.get(student, 0.0)
        combined[student] = float(row["score"])

    # 3. Canvas and Moodle CSVs carry nbgrader's combined totals and the LMS identities
    assert main(["export", str(out), "--format", "canvas", "--course", str(course)]) == 0
    canvas = {r["Student"]: r for r in _csv(out / "canvas.csv")}
    assert canvas["catmoreau"]["ID"] == "303" and canvas["Ada Lovelace"]["ID"] == ""
    assert canvas["Ada Lovelace"]["SIS Login ID"] == "Ada_Lovelace"
    assert main(["export", str(out), "--format", "moodle", "--course", str(course)]) == 0
    moodle = {r["Username"]: r for r in _csv(out / "moodle.csv")}
    assert moodle["Ben_Bitdiddle"]["Identifier"] == "Participant 102"
    for student, total in combined.items():
        assert float(moodle[student]["Grade"]) == pytest.approx(total, abs=0.005)
        name = moodle[student]["Full name"]
        assert float(canvas[name]["ps01"]) == pytest.approx(total, abs=0.005)

    # 4. re-runs: nothing changed grades nothing; a resubmission grades only that learner
    first = _outputs(out)
    assert _grade(lms, out, course) == 0
    assert "re-grading 0, unchanged and reused 3" in (out / "grading.log").read_text()
    assert _outputs(out) == first
    cat = json.loads((lms / CAT).read_text())
    synthetic.set_cell(cat, "ex1_dot", CAT_DOT)
    _write(lms / CAT, cat, datetime(2025, 3, 1, 11, 30, tzinfo=UTC))  # before the due date
    assert _grade(lms, out, course) == 0
    assert "re-grading 1, unchanged and reused 2" in (out / "grading.log").read_text()
    again = _outputs(out)
    for name in ("Ada_Lovelace", "Ben_Bitdiddle"):
        assert again[f"feedback/{name}.html"] == first[f"feedback/{name}.html"]
    full = tmp_path / "full"  # a full run on the class as it is now gives the same files
    assert _grade(lms, full, course) == 0
    assert _outputs(full) == again
    new_rows = _csv(out / "grades.csv")
    assert [r for r in new_rows if r["student"] != "catmoreau"] == [
        r for r in rows if r["student"] != "catmoreau"
    ]
    cat_dot = [r for r in new_rows if r["student"] == "catmoreau" and "ex1_dot" in r["part"]]
    assert len(cat_dot) == 2 and all(r["score"] == r["max"] for r in cat_dot)  # now it passes
    submitted = _files(lms)
    assert main(["gradebook", str(out), "--course", str(course)]) == 0
    with _gradebook(course) as gb:  # the human's grade survives the re-run
        assert gb.find_grade(WRITTEN, "ps01", "ps01", "Ada_Lovelace").manual_score == 1.5
        assert gb.find_submission("ps01", "catmoreau").score > combined["catmoreau"]

    # 5. similarity: the copied pair first; the learner who wrote their own shares nothing
    sim = tmp_path / "similarity"
    assert main(["similarity", "ps01", str(lms), "--out", str(sim)]) == 0
    pairs = _csv(sim / "similarity.csv")
    assert {pairs[0]["student_a"], pairs[0]["student_b"]} == {"Ada_Lovelace", "Ben_Bitdiddle"}
    assert min(float(pairs[0]["similarity_a"]), float(pairs[0]["similarity_b"])) > 0.9
    assert all(float(p["similarity_a"]) == float(p["similarity_b"]) == 0 for p in pairs[1:])

    # 6. the class report, from the final grades.csv
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "3 learners" in html and (out / "scores.svg").is_file()
    assert f"<td>{WRITTEN}</td>" in html
    assert _files(lms) == submitted  # nothing a learner submitted was modified
