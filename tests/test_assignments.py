"""nbgrader round trip of every assignment in tests/assignments.py, in a throwaway course.

For each assignment a temporary course is built from a copy of `solutions/<ps>/` and the
repository's nbgrader_config.py (its course root is its own folder), and nbgrader's Python
API runs on it; the repository's own exercises/ and gradebook are never written. It proves:

a. no drift: the committed `exercises/<ps>/` is what `generate_assignment` produces now;
b. the source notebook, submitted as is, gets full marks on every autograded cell;
c. the untouched release gets zero on every autograded cell, and `validate --invert`
   finds no test cell that passes on the stubs (no free points);
d. every plausible wrong answer gets partial credit: 0 < autograded total < maximum.

All students (source, release, wrong answers) are graded by one autograde run. The API
rather than the CLI: nbgrader's imports cost seconds of CPU per process. One test per
assignment, so pytest-xdist never builds the same course twice.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest
from assignments import ASSIGNMENTS, Assignment
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.validator import Validator
from traitlets.config.loader import PyFileConfigLoader

# harmless noise from nbgrader on a student's first grading
pytestmark = pytest.mark.filterwarnings(r"ignore:Object of type <Submitted\w+> not in session")

ROOT = Path(__file__).resolve().parents[1]
SOURCE, RELEASE = "source", "release"  # student ids of the two reference submissions


def _notebooks(folder: Path) -> dict[str, nbformat.NotebookNode]:
    return {p.name: nbformat.read(p, as_version=4) for p in sorted(folder.glob("*.ipynb"))}


def _cell_view(cell: nbformat.NotebookNode) -> tuple:
    """What a learner sees and nbgrader uses; cell ids and other volatile fields are left out."""
    return cell.cell_type, cell.source, dict(cell.metadata.get("nbgrader", {}))


def _autograded_cells(notebooks: dict[str, nbformat.NotebookNode]) -> dict[tuple[str, str], float]:
    """(notebook, grade_id) -> points of every autograded test cell of the source."""
    return {
        (name.removesuffix(".ipynb"), cell.metadata.nbgrader["grade_id"]): float(
            cell.metadata.nbgrader["points"]
        )
        for name, nb in notebooks.items()
        for cell in nb.cells
        if cell.metadata.get("nbgrader", {}).get("grade")
        and not cell.metadata.nbgrader.get("solution")
    }


def _check_drift(committed: Path, fresh: Path, ps: str) -> None:
    files = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file())
    for path in files:
        if path.suffix != ".ipynb":
            assert (committed / path).read_bytes() == (fresh / path).read_bytes(), path
            continue
        ours, theirs = (nbformat.read(d / path, as_version=4) for d in (committed, fresh))
        assert [_cell_view(c) for c in ours.cells] == [_cell_view(c) for c in theirs.cells], (
            f"exercises/{ps}/{path} is stale: run `python -m nbgrader generate_assignment"
            f" {ps} --force` from the repository root"
        )
        assert ours.metadata.get("kernelspec") == theirs.metadata.get("kernelspec")
        assert all(not c.get("outputs") and not c.get("execution_count") for c in ours.cells)


@pytest.fixture
def course(tmp_path: Path, monkeypatch) -> Path:
    """An empty course folder with the repository's nbgrader config."""
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    # nbgrader runs `alembic` from PATH to set up a new gradebook
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return course


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=lambda a: a.name)
def test_round_trip(assignment: Assignment, course: Path, subtests) -> None:
    ps = assignment.name
    started = time.perf_counter()
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    assert config.CourseDirectory.root == str(course)  # never the repository's gradebook
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)

    shutil.copytree(ROOT / "solutions" / ps, course / "solutions" / ps)
    result = api.generate_assignment(ps, force=True)
    assert result["success"], result.get("error")
    with subtests.test("a. committed release equals a fresh generate_assignment"):
        _check_drift(ROOT / "exercises" / ps, course / "exercises" / ps, ps)

    source = _notebooks(course / "solutions" / ps)
    submissions = {SOURCE: source, RELEASE: _notebooks(ROOT / "exercises" / ps)}
    for wrong in assignment.wrong_answers:
        submissions[wrong.name] = _notebooks(course / "solutions" / ps)
        wrong.edit(submissions[wrong.name])
    for student, notebooks in submissions.items():
        (course / "submitted" / student / ps).mkdir(parents=True)
        for name, nb in notebooks.items():
            nbformat.write(nb, course / "submitted" / student / ps / name)

    result = api.autograde(ps, "*")
    for student, notebooks in submissions.items():  # a crashed kernel leaves no autograded copy
        for name in notebooks:
            assert (course / "autograded" / student / ps / name).is_file(), result.get("log")
    assert result["success"], result.get("error")

    cells = _autograded_cells(source)
    maximum = sum(cells.values())
    with Gradebook(api.coursedir.db_url, course_id=api.coursedir.course_id) as gb:
        scores = {
            student: {
                (nb.name, grade.name): grade.auto_score
                for nb in gb.find_submission(ps, student).notebooks
                for grade in nb.grades
            }
            for student in submissions
        }

    with subtests.test("b. the source gets full marks"):
        assert {key: scores[SOURCE].get(key) for key in cells} == cells

    with subtests.test("c. the release gets zero"):
        assert {key: scores[RELEASE].get(key) for key in cells} == dict.fromkeys(cells, 0.0)

    for wrong in assignment.wrong_answers:
        with subtests.test(f"d. partial credit for {wrong.name}"):
            total = sum(scores[wrong.name].get(key) or 0.0 for key in cells)
            assert 0 < total < maximum, f"{wrong.name}: {total} of {maximum}"

    with subtests.test("c. validate --invert: no test cell passes on the stubs"):
        # on a copy of the release, so that running it cannot write into exercises/
        shutil.copytree(ROOT / "exercises" / ps, course / "validate" / ps)
        validator = Validator(config=config, invert=True)
        for path in sorted((course / "validate" / ps).glob("*.ipynb")):
            assert validator.validate(str(path)) == {}, path.name

    print(
        f"\n{ps}: {len(submissions)} submissions, round trip {time.perf_counter() - started:.1f} s"
    )
