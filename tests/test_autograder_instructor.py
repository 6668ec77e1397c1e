"""The instructor's workflow after grading: LMS export, late penalties, re-grades.

One class of three ps01 submissions, as an LMS download would give them (two Moodle folders,
one with nbgrader's timestamp.txt, and one Canvas file name marked late), is graded once for
the module; the tests read that out dir or copy it. Expected totals are recomputed from
grades.csv's rows, and the penalties from nbgrader's own formula (its docs' 1-point-per-hour
plugin and AssignLatePenalties' clamp).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from autograder import synthetic
from autograder.__main__ import main
from autograder.collect import Submission
from autograder.late import lateness, policy

ROOT = Path(__file__).resolve().parents[1]
DUE = "2025-03-01T12:00:00+00:00"
PENALTY = "per-hour:1:4"  # 1 point per hour late, at most 4
ADA = "Ada Lovelace_101_assignsubmission_file_"
GRACE = "Grace Hopper_103_assignsubmission_file_"
ALAN = "turingalan_LATE_202_999_ps01.ipynb"


def _write(folder: Path, rel: str, nb: dict) -> Path:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))
    return path


def _make_class(folder: Path) -> None:
    import random

    correct = synthetic.correct(ROOT, "ps01")
    _write(folder, f"{ADA}/ps01.ipynb", correct)
    # nbgrader's own format (exchange timestamp_format): 2 h 30 min late, Paris is UTC+1
    (folder / ADA / "timestamp.txt").write_text("2025-03-01 15:30:00.000000 Europe/Paris\n")
    _write(folder, f"{GRACE}/ps01.ipynb", synthetic.wrong(ROOT, "ps01", random.Random(3)))
    (folder / GRACE / "timestamp.txt").write_text("2025-03-01 11:59:00.000000 UTC\n")
    alan = _write(folder, ALAN, correct)  # no timestamp.txt: the file time, 5 h late
    late = datetime(2025, 3, 1, 17, 0, tzinfo=UTC).timestamp()
    os.utime(alan, (late, late))


def _grade(subs: Path, out: Path, *extra: str) -> int:
    return main(["grade", "ps01", str(subs), "--out", str(out), "--jobs", "2", "--no-progress", *extra])  # fmt: skip


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("class")
    subs, out = base / "subs", base / "out"
    _make_class(subs)
    assert _grade(subs, out, "--due", DUE, "--late-penalty", PENALTY) == 0
    return subs, out


def _sums(out: Path) -> dict[str, tuple[float, float]]:
    sums: dict[str, tuple[float, float]] = {}
    for row in _csv(out / "grades.csv"):
        got, best = sums.get(row["student"], (0.0, 0.0))
        sums[row["student"]] = (got + float(row["score"] or 0), best + float(row["max"]))
    return sums


def test_students_csv_keeps_the_lms_identities(graded):
    _, out = graded
    rows = {r["student"]: r for r in _csv(out / "students.csv")}
    assert sorted(rows) == ["Ada_Lovelace", "Grace_Hopper", "turingalan"]
    assert (rows["Ada_Lovelace"]["lms"], rows["Ada_Lovelace"]["lms_user_id"]) == ("moodle", "101")
    assert rows["Ada_Lovelace"]["lms_name"] == "Ada Lovelace"
    assert (rows["turingalan"]["lms"], rows["turingalan"]["lms_user_id"]) == ("canvas", "202")
    assert rows["turingalan"]["lms_late"] == "yes" and rows["Grace_Hopper"]["lms_late"] == ""


def test_canvas_export_columns_and_totals(graded):
    _, out = graded
    assert main(["export", str(out), "--format", "canvas", "--assignment-id", "77"]) == 0
    with open(out / "canvas.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "ps01 (77)"]
    by_name = {r[0]: r for r in rows[1:]}
    sums = _sums(out)
    assert by_name["turingalan"][1:5] == ["202", "", "", ""]  # Canvas user ID from the file name
    assert by_name["Ada Lovelace"][1:5] == ["", "", "Ada_Lovelace", ""]  # not Canvas: login id
    assert float(by_name["turingalan"][5]) == sums["turingalan"][0]
    assert float(by_name["Grace Hopper"][5]) == pytest.approx(sums["Grace_Hopper"][0], abs=0.005)
    assert sums["Grace_Hopper"][0] < sums["turingalan"][0]  # the wrong notebook lost points


def test_moodle_export_rescaled(graded):
    _, out = graded
    assert main(["export", str(out), "--format", "moodle", "--points-possible", "10"]) == 0
    rows = {r["Username"]: r for r in _csv(out / "moodle.csv")}
    assert list(next(iter(rows.values()))) == [
        "Identifier", "Username", "Full name", "Grade", "Maximum Grade",
    ]  # fmt: skip
    assert rows["Ada_Lovelace"]["Identifier"] == "Participant 101"
    assert rows["turingalan"]["Identifier"] == ""  # a Canvas file: no Moodle participant
    got, best = _sums(out)["Grace_Hopper"]
    assert float(rows["Grace_Hopper"]["Grade"]) == pytest.approx(got * 10 / best, abs=0.005)
    assert rows["Grace_Hopper"]["Maximum Grade"] == "10"


def _nbgrader_penalty(score: float, seconds_late: float, cap: float) -> float:
    """nbgrader's docs plugin (1 mark per hour, round(hours, 0)) under a cap, then
    AssignLatePenalties' own clamp to [0, score]."""
    from types import SimpleNamespace

    from nbgrader.preprocessors.latesubmissions import AssignLatePenalties

    raw = min(round(seconds_late / 3600, 0), cap)
    return AssignLatePenalties()._check_late_penalty(SimpleNamespace(score=score), raw)


def test_late_penalty_rows_and_feedback(graded):
    _, out = graded
    rows = _csv(out / "grades.csv")
    late = {r["student"]: r for r in rows if r["part"] == "late penalty"}
    assert sorted(late) == ["Ada_Lovelace", "turingalan"]  # Grace was on time
    parts = {r["student"]: 0.0 for r in rows}
    for r in rows:
        if r["part"] != "late penalty":
            parts[r["student"]] += float(r["score"] or 0)
    # Ada: timestamp.txt 15:30 Paris = 14:30 UTC, 2.5 h late; Alan: file time 17:00 UTC, 5 h
    assert float(late["Ada_Lovelace"]["score"]) == -_nbgrader_penalty(
        parts["Ada_Lovelace"], 9000, 4
    )
    assert float(late["turingalan"]["score"]) == -_nbgrader_penalty(parts["turingalan"], 18000, 4)
    assert late["turingalan"]["score"] == "-4" and late["turingalan"]["max"] == "0"
    assert (
        "fallback" in late["turingalan"]["reason"]
        and "timestamp.txt" in late["Ada_Lovelace"]["reason"]
    )
    page = (out / "feedback" / "turingalan.html").read_text()
    assert "Late policy" in page and "fallback" in page and "penalty 4 points" in page
    assert "Late policy" in (out / "feedback" / "Grace_Hopper.html").read_text()  # "on time"
    assert "file time, a fallback" in (out / "grading.log").read_text()


def test_zero_and_none_policies_follow_nbgrader():
    sub = Submission("s", "x", b"{}", timestamp="2025-03-01 13:00:00 UTC")
    assert lateness(policy(DUE, "zero"), sub, 7.0).penalty == 7.0  # penalty = score
    assert lateness(policy(DUE, "none"), sub, 7.0).penalty == 0.0
    assert lateness(policy(DUE, "per-hour:10"), sub, 7.0).penalty == 7.0  # clamped to the score
    early = Submission("s", "x", b"{}", timestamp="2025-03-01 11:00:00 UTC")
    assert lateness(policy(DUE, "zero"), early, 7.0).seconds_late == 0.0
    with pytest.raises(ValueError):
        policy(DUE, "per-day:1")


def _outputs(out: Path) -> dict[str, bytes]:
    files = [out / "grades.csv", out / "students.csv", *sorted((out / "feedback").iterdir())]
    return {str(p.relative_to(out)): p.read_bytes() for p in files}


def test_regrade_only_changed_then_one_student_matches_a_full_run(graded, tmp_path):
    subs, out = graded
    args = ("--due", DUE, "--late-penalty", PENALTY)
    again = tmp_path / "again"
    shutil.copytree(out, again)
    assert _grade(subs, again, *args) == 0  # nothing changed: nothing graded
    assert "re-grading 0, unchanged and reused 3" in (again / "grading.log").read_text()
    assert _outputs(again) == _outputs(out)

    changed = tmp_path / "subs"
    shutil.copytree(subs, changed)  # copy2: Alan's file time is kept
    _write(changed, f"{GRACE}/ps01.ipynb", synthetic.correct(ROOT, "ps01"))  # Grace resubmits
    assert _grade(changed, again, *args) == 0
    assert "re-grading 1, unchanged and reused 2" in (again / "grading.log").read_text()
    full = tmp_path / "full"
    assert _grade(changed, full, *args) == 0
    assert _outputs(again) == _outputs(full)
    assert _sums(full)["Grace_Hopper"] != _sums(out)["Grace_Hopper"]

    assert _grade(changed, again, "--student", "Ada_Lovelace", *args) == 0
    log = (again / "grading.log").read_text()
    assert "re-grading 1, unchanged and reused 2: ['Grace_Hopper', 'turingalan']" in log
    assert _outputs(again) == _outputs(full)
    assert _grade(changed, again, "--student", "nobody", *args) == 2


def test_regrade_key_follows_the_grader_code(tmp_path):
    """A changed grader (a fixed bug in autograder or a course_lib reference) re-grades."""
    from autograder.regrade import grader_digest

    code = tmp_path / "grader"
    code.mkdir()
    (code / "a.py").write_text("x = 1\n")
    before = grader_digest((code,))
    (code / "a.py").write_text("x = 2\n")
    grader_digest.cache_clear()
    assert grader_digest((code,)) != before
    assert len(grader_digest()) == 64


def _nbgrader_db_add(course: Path, duedate: str) -> None:
    """`nbgrader db assignment add ps01 --duedate=...`, nbgrader's own command, in the course."""
    import subprocess
    import sys

    bin_dir = str(Path(sys.executable).parent)  # nbgrader runs alembic to create the database
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [sys.executable, "-m", "nbgrader", "db", "assignment", "add", "ps01", f"--duedate={duedate}"]  # fmt: skip
    subprocess.run(cmd, cwd=course, env=env, check=True, capture_output=True)


def test_stored_due_date_is_read_from_nbgrader_gradebook(tmp_path):
    from autograder.late import resolve, stored_due

    course = synthetic.course_folder(ROOT, tmp_path / "course")
    assert stored_due(course, "ps01")[0] is None
    assert not (course / "gradebook.db").exists()  # looking does not create a gradebook
    with pytest.raises(ValueError, match="needs a due date"):
        resolve(None, PENALTY, course, "ps01")
    assert resolve(None, "none", course, "ps01")[0] is None
    # 13:00 in Paris (UTC+1 in March) is DUE, 12:00 UTC
    _nbgrader_db_add(course, "2025-03-01 13:00:00 Europe/Paris")
    due, source, extensions = stored_due(course, "ps01")
    assert extensions == {}
    assert due == datetime(2025, 3, 1, 12, 0) and "nbgrader gradebook" in source
    rule, said = resolve(None, PENALTY, course, "ps01")
    assert (rule.due, rule.method, rule.per_hour, rule.cap) == (due, "per-hour", 1.0, 4.0)
    assert rule.source == source and said == f"due date from {source}"
    rule, said = resolve("2025-03-02T00:00:00+00:00", PENALTY, course, "ps01")
    assert rule.due == datetime(2025, 3, 2) and rule.source == "--due" and "--due" in said
    assert stored_due(course, "ps02")[0] is None  # another assignment has none
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"SQLite format 3\x00 (not a database)")
    when, why, _ = stored_due(course, "ps01", broken)
    assert when is None and "cannot be read" in why
    with pytest.raises(ValueError, match="cannot be read"):
        resolve(None, PENALTY, course, "ps01", broken)


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's own autoflush
def test_a_students_extension_in_the_gradebook_moves_only_their_due_date(tmp_path):
    """nbgrader keeps an extension per student (SubmittedAssignment.extension); its own
    total_seconds_late is the expected lateness, with --due as with the stored due date."""
    from nbgrader.api import Gradebook

    from autograder.gradebook import alembic_on_path, course_config
    from autograder.late import resolve

    course = synthetic.course_folder(ROOT, tmp_path / "course")
    alembic_on_path()
    handed_in = "2025-03-01 14:30:00 UTC"  # 2.5 h after the due date
    url = f"sqlite:///{course / 'gradebook.db'}"
    expected = {}
    with Gradebook(url, course_config(course).CourseDirectory.course_id) as gb:
        gb.update_or_create_assignment("ps01", duedate="2025-03-01 12:00:00 UTC")
        for student, hours in (("alice", 3), ("bob", 0)):
            gb.update_or_create_student(student)
            extension = timedelta(hours=hours) if hours else None
            row = gb.update_or_create_submission(
                "ps01", student, timestamp=handed_in, extension=extension
            )
            expected[student] = row.total_seconds_late
    assert expected == {"alice": 0.0, "bob": 2.5 * 3600}
    for due in (None, DUE):
        rule, said = resolve(due, PENALTY, course, "ps01")
        assert rule.extensions == {"alice": timedelta(hours=3)}
        assert "extensions from the gradebook for 1 students" in said
        for student, seconds in expected.items():
            late = lateness(rule, Submission(student, "t", b"", timestamp=handed_in), 10.0)
            assert late.seconds_late == seconds
            assert late.penalty == (0.0 if student == "alice" else 2.0)  # round(2.5) = 2 hours
        assert (
            "extension 3 h"
            in lateness(rule, Submission("alice", "t", b"", timestamp=handed_in), 10.0).describe()
        )


def test_grading_with_the_stored_due_date_equals_grading_with_due(graded, tmp_path, capsys):
    subs, out = graded
    from nbgrader.api import Gradebook

    from autograder.gradebook import alembic_on_path, course_config

    course = synthetic.course_folder(ROOT, tmp_path / "course")
    alembic_on_path()  # nbgrader stamps a new database with alembic
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_config(course).CourseDirectory.course_id) as gb:  # fmt: skip
        gb.update_or_create_assignment("ps01", duedate="2025-03-01 12:00:00 UTC")  # as the CLI
    again = tmp_path / "out"
    shutil.copytree(out, again)
    argv = ["--late-penalty", PENALTY, "--course-root", str(course)]
    assert _grade(subs, again, *argv) == 0
    log = (again / "grading.log").read_text()
    assert "re-grading 0, unchanged and reused 3" in log  # the due date is not in the key
    assert f"(from nbgrader gradebook sqlite:///{course.resolve()}/gradebook.db" in log
    assert "due date from nbgrader gradebook" in capsys.readouterr().out
    assert _outputs(again) == _outputs(out)  # same penalties as with --due DUE
    late = [r for r in _csv(again / "grades.csv") if r["part"] == "late penalty"]
    assert len(late) == 2
    assert _grade(subs, again, "--due", "2025-03-01T20:00:00+00:00", *argv) == 0  # overrides
    assert "(from --due)" in (again / "grading.log").read_text()
    assert not [r for r in _csv(again / "grades.csv") if r["part"] == "late penalty"]
