"""LMS grade export: one total per student, from an out dir's grades.csv and students.csv.

`python -m autograder export <out> --format canvas|moodle` writes `<out>/canvas.csv` or
`<out>/moodle.csv`. The total of a student is the sum of the `score` column of grades.csv:
every autograded part, plus the (negative) "late penalty" row when there is one; written
answers still waiting for a human count 0. With `--course <nbgrader course>` (after
`python -m autograder gradebook` and grading the written answers in formgrader) the totals
are nbgrader's instead, as `nbgrader export` computes them: each grade's score (the human's
manual score where one was given, else the autograder's), minus the late penalty, at least 0.
`--points-possible N` rescales each total to N points (total * N / the assignment's maximum,
written answers included) and tells the LMS so; without it the totals are raw points.

Canvas (Gradebook > Import, the format of Canvas's own gradebook export):
  Student, ID, SIS User ID, SIS Login ID, Section, "<assignment> (<assignment id>)"
  - ID is the Canvas user ID from the bulk-download file name
    (`<name>[_late]_<user ID>_<attachment ID>_<file>`); Canvas matches students on it.
  - Student is the name in that file name when known, else the autograder's student id.
  - SIS User ID and Section are left empty: no download carries them.
  - SIS Login ID is empty for Canvas downloads; for any other layout (nbgrader's
    `submitted/<student>/`, a flat `<student>.ipynb` folder, a Moodle zip) the autograder's
    student id goes there and the ID column is empty, so Canvas can only match a student
    whose login is that id.
  - The assignment column is "<assignment> (<id>)" with `--assignment-id`, else just
    "<assignment>", which Canvas imports as a new assignment.
  - With --points-possible a second row "Points Possible" gives the maximum, as Canvas's
    export does.

Moodle (two import routes read the same file):
  Identifier, Username, Full name, Grade, Maximum Grade
  - Identifier is "Participant <N>" with N the participant ID of the Moodle download's
    folder (`<Full name>_<N>_assignsubmission_file_`): the column Moodle's assignment
    "Upload grading worksheet" matches on (with "Grade"). Empty when the submission did not
    come from a Moodle download.
  - Username is the autograder's student id: for Grade administration > Import > CSV file,
    map it to "username" (or to the field that holds those ids) and "Grade" to the assignment.
  - Full name is the name in the Moodle folder, else the student id; Maximum Grade is the
    maximum (N with --points-possible).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

STUDENTS = "students.csv"  # written by the runner: identities, times, hashes


def totals(out: Path) -> dict[str, tuple[float, float]]:
    """student -> (sum of scores, maximum of the assignment) from grades.csv."""
    result: dict[str, tuple[float, float]] = {}
    with open(out / "grades.csv", newline="") as f:
        for row in csv.DictReader(f):
            got, best = result.get(row["student"], (0.0, 0.0))
            result[row["student"]] = (
                got + float(row["score"] or 0),
                best + float(row["max"] or 0),
            )
    return result


def gradebook_totals(
    course: Path, assignment: str, students: list[str], db: Path | None = None
) -> dict[str, tuple[float, float]]:
    """student -> (score, maximum) from nbgrader's gradebook, as nbgrader's CsvExportPlugin
    computes them (max(0, submission score - late penalty), the assignment's max_score)."""
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.coursedir import CourseDirectory

    from autograder.gradebook import course_config

    coursedir = CourseDirectory(config=course_config(course, db))
    url = coursedir.db_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise ValueError(f"no nbgrader gradebook at {url}: run `python -m autograder gradebook`")
    result = {}
    with Gradebook(url, coursedir.course_id) as gb:
        for student in students:
            try:
                sub = gb.find_submission(assignment, student)
            except MissingEntry as exc:
                raise ValueError(f"{student} is not in {url}: record the out dir first") from exc
            penalty = sub.late_submission_penalty or 0.0
            result[student] = (max(0.0, sub.score - penalty), sub.assignment.max_score)
    return result


def identities(out: Path) -> dict[str, dict[str, str]]:
    """student -> the row of students.csv (empty when the out dir has none)."""
    path = out / STUDENTS
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def export(
    out: Path,
    fmt: str,
    points_possible: float | None = None,
    assignment_id: str = "",
    course: Path | None = None,
    db: Path | None = None,
) -> Path:
    """Write <out>/<fmt>.csv and return its path; totals from `course`'s gradebook if given."""
    scores = totals(out)
    who = identities(out)
    assignment = next((r["assignment"] for r in who.values()), out.name)
    if course is not None:
        scores = gradebook_totals(course, assignment, sorted(scores), db)
    rows: list[list[str]] = []
    for student, (got, best) in sorted(scores.items()):
        total, maximum = got, best
        if points_possible is not None and best > 0:
            total, maximum = got * points_possible / best, points_possible
        ident = who.get(student, {})
        system, user_id = ident.get("lms", ""), ident.get("lms_user_id", "")
        name = ident.get("lms_name") or student
        if fmt == "canvas":
            canvas = system == "canvas"
            rows.append(
                [name, user_id if canvas else "", "", "" if canvas else student, "", _n(total)]
            )
        elif fmt == "moodle":
            participant = f"Participant {user_id}" if system == "moodle" else ""
            rows.append([participant, student, name, _n(total), _n(maximum)])
        else:
            raise ValueError(f"unknown format {fmt!r} (canvas or moodle)")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if fmt == "canvas":
        column = f"{assignment} ({assignment_id})" if assignment_id else assignment
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column])
        if points_possible is not None:
            writer.writerow(["Points Possible", "", "", "", "", _n(points_possible)])
    else:
        writer.writerow(["Identifier", "Username", "Full name", "Grade", "Maximum Grade"])
    writer.writerows(rows)
    path = out / f"{fmt}.csv"
    path.write_text(buffer.getvalue())
    return path


def _n(x: float) -> str:
    """A score as the LMS reads it: at most 2 decimals, no trailing zeros."""
    return f"{round(x, 2):g}"
