"""nbgrader's gradebook as the record: put a graded out dir into nbgrader's own database.

`python -m autograder gradebook <out> --course <course root> [--db <path>]` records, through
nbgrader's API (`nbgrader.api.Gradebook`), what `python -m autograder grade` found, so that
an instructor grades the written answers in formgrader and `nbgrader export` (or
generate_feedback) gives the final grades:

- the assignment, its notebook and its grade, solution, task and source cells: nbgrader's own
  `generate_assignment` (NbGraderAPI, as formgrader runs it) from the course's source folder,
  its student version written to a temporary folder (the course's release is not touched);
- each student (`update_or_create_student`) and one submission each, with nbgrader's
  `timestamp` and the notebook's `late_submission_penalty` when the grading had `--due`;
- per grade cell, `Grade.auto_score` = the score in grades.csv; a written answer keeps
  `auto_score` None and `needs_manual_grade` True until someone grades it; a flagged or
  error part keeps its score and also needs a manual look; a notebook with a flagged part
  is `flagged`. A manual score already given is never overwritten;
- the autograded notebook `<course>/autograded/<student>/<assignment>/<notebook>.ipynb`,
  which formgrader shows: the submitted notebook through nbgrader autograde's own
  sanitizing preprocessors (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells
  restoring the test cells from the database, CheckCellMetadata); instead of nbgrader's
  Execute (the learner's code ran in the autograder's sandbox), each test cell gets an
  output saying its result in the LEARNER's words (`Outcome.feedback`, no hidden inputs,
  since generate_feedback shows these outputs to learners): a stream when it passed, an
  error when it did not, so nbgrader's own `determine_grade` reads the same score.

The submitted files are only read (collected again from `--submissions`, by default the
folder grading.log names, and checked against the SHA-256 stored with each result). Running
it twice gives the same database and files. When a student's autograded notebook changes
(a new submission was graded), grades that already have a manual score are marked for
review again, as nbgrader's SaveAutoGrades does.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    OverwriteCells,
    OverwriteKernelspec,
)
from sqlalchemy.exc import SAWarning
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from autograder import regrade
from autograder.collect import Submission, collect
from autograder.context import Options
from autograder.evaluate import OK, Outcome
from autograder.export import identities
from autograder.grade import StudentResult
from autograder.spec import load_spec

CONFIG = "nbgrader_config.py"
SANITIZE = (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata)
_LOG_SOURCE = re.compile(r"^assignment (?P<a>\S+): \d+ submissions from (?P<path>.+)$")


@dataclass
class Recorded:
    """What one run wrote."""

    assignment: str
    db_url: str
    students: list[str] = field(default_factory=list)
    notebooks: list[Path] = field(default_factory=list)  # autograded notebooks written
    to_grade: int = 0  # grades still needing a manual grade
    missing: list[str] = field(default_factory=list)  # students without a readable notebook


def course_config(course: Path, db: Path | None = None) -> Config:
    """The course's nbgrader configuration (its nbgrader_config.py), rooted at `course`."""
    course = course.resolve()
    config = Config()
    if (course / CONFIG).is_file():
        config.merge(PyFileConfigLoader(CONFIG, path=str(course)).load_config())
    config.CourseDirectory.root = str(course)
    if db is not None:
        config.CourseDirectory.db_url = f"sqlite:///{db.resolve()}"
    return config


def record(
    out: Path,
    course: Path,
    db: Path | None = None,
    submissions: Path | None = None,
    student_pattern: str | None = None,
) -> Recorded:
    """Record the results stored in `out` into the course's gradebook (see the module doc)."""
    alembic_on_path()
    out = out.resolve()
    results = [entry[1] for s in regrade.stored(out) if (entry := regrade.load(out, s))]
    if not results:
        raise ValueError(f"{out} has no stored results ({regrade.STORE}/): grade first")
    logged_assignment, logged_subs = _from_log(out)
    who = identities(out)  # students.csv: the assignment, submission times, late penalties
    assignment = next((row["assignment"] for row in who.values()), "") or logged_assignment
    submissions = submissions or logged_subs
    if not assignment or submissions is None:
        raise ValueError(f"{out}: cannot tell the assignment or the submissions; pass them")
    notebook = load_spec(assignment).notebook
    notebook_id = Path(notebook).stem
    config = course_config(course, db)
    coursedir = CourseDirectory(config=config)
    _generate(config, coursedir, assignment)

    subs = {
        s.student: s
        for s in collect(
            submissions, assignment, notebook, Options().max_notebook_bytes, student_pattern
        )
    }
    done = Recorded(assignment, coursedir.db_url)
    for result in sorted(results, key=lambda r: r.student):
        sub = subs.get(result.student)
        if sub is not None and sub.data is not None and sub.sha256 != result.sha256:
            raise ValueError(
                f"{result.student}: the submission differs from the one graded in {out}; "
                "grade again first"
            )
        row = who.get(result.student, {})
        timestamp = row.get("submitted", "")
        penalty = float(row["late_penalty"]) if row.get("late_penalty") else None
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Object of type", SAWarning)  # nbgrader's, harmless
            gb.update_or_create_student(result.student)
            if timestamp:
                gb.update_or_create_submission(assignment, result.student, timestamp=timestamp)
            else:
                gb.update_or_create_submission(assignment, result.student)
        path = Path(
            coursedir.format_path(coursedir.autograded_directory, result.student, assignment)
        ) / (notebook_id + ".ipynb")
        changed = _write_autograded(config, coursedir, result, sub, assignment, notebook_id, path)
        if changed is None:
            done.missing.append(result.student)
        else:
            done.notebooks.append(path)
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            nb = gb.find_submission_notebook(notebook_id, assignment, result.student)
            _save_grades(
                gb, result.outcomes, notebook_id, assignment, result.student, bool(changed)
            )
            if any(o.status == "flagged" for o in result.outcomes):
                nb.flagged = True
            nb.late_submission_penalty = penalty
            gb.db.commit()
            done.to_grade += sum(1 for g in nb.grades if g.needs_manual_grade)
        done.students.append(result.student)
    return done


def _generate(config: Config, coursedir: CourseDirectory, assignment: str) -> None:
    """nbgrader's generate_assignment into the database; its release goes to a temp folder."""
    with tempfile.TemporaryDirectory(prefix="autograder-release-") as release:
        config = Config(config)
        config.CourseDirectory.release_directory = release  # absolute: replaces root/release
        api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
        result = api.generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{result['log']}")


def _write_autograded(
    config: Config,
    coursedir: CourseDirectory,
    result: StudentResult,
    sub: Submission | None,
    assignment: str,
    notebook_id: str,
    path: Path,
) -> bool | None:
    """Write the autograded notebook; True if it changed, False if not, None if there is none."""
    if sub is None or sub.data is None:
        return None
    try:
        nb = nbformat.reads(sub.data.decode("utf-8"), as_version=4)
    except (ValueError, UnicodeDecodeError, nbformat.reader.NotJSONError):
        return None
    ids = {"student": result.student, "assignment": assignment, "notebook": notebook_id}
    resources = {"nbgrader": {**ids, "db_url": coursedir.db_url}}
    for step in SANITIZE:
        nb, resources = step(config=config).preprocess(nb, resources)
    by_part = {o.part: o for o in result.outcomes}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        part = by_part.get(meta.get("grade_id"))
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution") and part:
            cell.outputs = [_output(part)]
    text = nbformat.writes(nb)
    old = path.read_text() if path.is_file() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    if old != text:
        path.write_text(text)
    return old is not None and old != text


def _output(o: Outcome) -> nbformat.NotebookNode:
    """The test cell's output: what nbgrader's determine_grade reads as o.score."""
    if o.status == OK and o.score is not None and o.score >= o.max:
        return nbformat.v4.new_output("stream", name="stdout", text=f"{o.feedback}\n")
    lines = (o.feedback or o.reason or o.status).splitlines() or [o.status]
    ename = {OK: "test failed", "flagged": "flagged for review"}.get(o.status, "not graded")
    return nbformat.v4.new_output("error", ename=ename, evalue=lines[0], traceback=lines)


def _save_grades(
    gb: Gradebook,
    outcomes: list[Outcome],
    notebook: str,
    assignment: str,
    student: str,
    changed: bool,
) -> None:
    for o in outcomes:
        grade = gb.find_grade(o.part, notebook, assignment, student)
        grade.auto_score = o.score
        if grade.manual_score is not None:  # a human graded it: keep, review if the work changed
            grade.needs_manual_grade = changed or bool(grade.needs_manual_grade)
        else:
            grade.needs_manual_grade = o.score is None or o.status != OK


def alembic_on_path() -> None:
    """nbgrader runs `alembic` to stamp a new database: find it beside this Python."""
    here = Path(sys.executable).parent
    if shutil.which("alembic") is None and (here / "alembic").exists():
        os.environ["PATH"] = f"{here}{os.pathsep}{os.environ.get('PATH', '')}"


def _from_log(out: Path) -> tuple[str, Path | None]:
    """(assignment, submissions path) from grading.log's first line, as the runner writes it."""
    try:
        first = (out / "grading.log").read_text().splitlines()[0]
    except (OSError, IndexError):
        return "", None
    match = _LOG_SOURCE.match(first)
    return (match["a"], Path(match["path"])) if match else ("", None)
