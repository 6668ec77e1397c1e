"""Red team: every attack in tests/redteam/attacks.py, graded in one batch with bubblewrap.

One submission per attack (plus an honest "victim" other attacks try to read or overwrite),
graded by `python -m autograder`'s batch runner with small limits so loops and bombs end
fast. For each attack the rows must match its `expect`; then, for the whole batch: every
student has a row per part with a valid status, no student file or grader file changed
(SHA-256 before and after), nothing was written outside --out, and no feedback page reveals
a hidden test case or the solutions. One test function, so pytest-xdist runs the batch once.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import pytest
from redteam.attacks import ATTACKS, PREPARED, Env
from redteam.round2 import HIDDEN_SECRET

from autograder import synthetic
from autograder.context import Options
from autograder.runner import Batch, run_batch
from autograder.sandbox import Limits, probe

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(
    wall_seconds=40, cpu_seconds=15, memory_mb=1024, part_seconds=6, processes=32,
    result_bytes=8 * 2**20, reply_bytes=2 * 2**20,
)  # fmt: skip


def _course(tmp: Path) -> Path:
    """A copy of the course (solutions, exercises, a gradebook) the attacks aim at."""
    course = tmp / "course"
    for folder in ("solutions", "exercises"):
        shutil.copytree(ROOT / folder / "ps01", course / folder / "ps01")
    (course / "gradebook.db").write_bytes(b"SQLite format 3\x00 (stand-in)")
    return course


def _hashes(paths: list[Path]) -> dict[str, str]:
    out = {}
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for p in files:
            if "__pycache__" not in p.parts:
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _grade(tmp: Path, names: list[str], sandbox: str) -> tuple[Env, dict, Path]:
    """Write the submissions, grade them, return (env, rows by student and part, out)."""
    course = _course(tmp)
    submitted = course / "submitted"
    out = tmp / "out"
    victim = submitted / "zz_victim" / "ps01" / "ps01.ipynb"
    env = Env(course, submitted, out, victim, f"autograder-redteam-{tmp.name}")
    victim.parent.mkdir(parents=True)
    victim.write_text(
        __import__("json").dumps(synthetic.correct(ROOT, "ps01"))
    )  # an honest student
    for name in names:
        folder = submitted / name / "ps01"
        folder.mkdir(parents=True)
        data = ATTACKS[name].build(env)
        if data is None:
            (folder / "README.txt").write_text("forgot the notebook")
        else:
            (folder / "ps01.ipynb").write_bytes(data)
    options = Options(LIMITS, sandbox, max_notebook_bytes=2 * 2**20)
    code = run_batch(Batch("ps01", submitted, out, course, options, jobs=2, progress=False))
    assert code == 0, (out / "grading.log").read_text()[-3000:]
    rows: dict = {}
    with open(out / "grades.csv") as f:
        for row in csv.DictReader(f):
            rows.setdefault(row["student"], {})[row["part"]] = row
    return env, rows, out


def _check_attacks(env: Env, rows: dict, names: list[str]) -> list[str]:
    failures = []
    for name in names:
        try:
            ATTACKS[name].expect(rows[name], env)
        except (AssertionError, KeyError) as exc:
            failures.append(f"{name}: {exc}")
    return failures


def _check_batch(env: Env, rows: dict, out: Path, students: list[str]) -> None:
    parts = [t.grade_id for t in PREPARED.tests] + ["ex5_answer"]
    points = {t.grade_id: f"{t.points:g}" for t in PREPARED.tests} | {"ex5_answer": "2"}
    assert sorted(rows) == sorted(students)
    for student, by_part in rows.items():
        assert list(by_part) == parts, student
        for part, row in by_part.items():
            assert row["max"] == points[part], (student, row)
            assert row["status"] in ("ok", "flagged", "error"), (student, row)
            lost = row["score"] != row["max"]
            assert row["reason"] or not lost, f"{student} {part}: points lost without a reason"
    for student in students:  # feedback never shows hidden cases or the source notebook
        page = (out / "feedback" / f"{student}.html").read_text()
        secrets = (
            "seed 10",
            "HIDDEN TESTS",
            "BEGIN SOLUTION",
            "hidden case ",
            "Leak_",
            HIDDEN_SECRET,
        )
        for secret in secrets:
            assert secret not in page, f"{student}'s feedback reveals {secret!r}"


@pytest.mark.skipif(probe("auto").mode != "bwrap", reason="bubblewrap is not usable here")
def test_redteam_batch(tmp_path):
    names = sorted(ATTACKS)
    grader = _hashes([ROOT / "autograder"])
    env, rows, out = _grade(tmp_path, names, "bwrap")
    failures = _check_attacks(env, rows, names)
    assert not failures, "\n".join(failures)
    _check_batch(env, rows, out, [*names, "zz_victim"])
    assert all(r["score"] == r["max"] for p, r in rows["zz_victim"].items() if p != "ex5_answer")
    assert _hashes([ROOT / "autograder"]) == grader
    fresh = _course(tmp_path / "fresh")
    course = env.course_root
    assert _hashes([course / "solutions", course / "exercises", course / "gradebook.db"]) == {
        k.replace(str(fresh), str(course)): v
        for k, v in _hashes(
            [fresh / "solutions", fresh / "exercises", fresh / "gradebook.db"]
        ).items()
    }
    for target in (Path("/tmp") / env.token, course / env.token):
        assert not target.exists(), f"learner code created {target}"
    log = (out / "grading.log").read_text()
    assert "sandbox: bubblewrap" in log


def test_originals_unchanged(tmp_path):
    """Grading reads the submissions and writes only to --out (hashes and file lists)."""
    names = ["write_outside", "exit_kernel", "invalid_json", "missing_notebook"]
    course = _course(tmp_path)
    submitted = course / "submitted"
    env = Env(
        course, submitted, tmp_path / "out", submitted / "zz_victim" / "ps01" / "ps01.ipynb", "x"
    )
    before: dict[str, str] = {}
    for name in names:
        folder = submitted / name / "ps01"
        folder.mkdir(parents=True)
        data = ATTACKS[name].build(env)
        (folder / ("ps01.ipynb" if data is not None else "notes.txt")).write_bytes(data or b"-")
    before = _hashes([submitted])
    listing = sorted(str(p) for p in tmp_path.rglob("*"))
    options = Options(LIMITS, "auto", max_notebook_bytes=2 * 2**20)
    run_batch(Batch("ps01", submitted, tmp_path / "out", course, options, jobs=2, progress=False))
    assert _hashes([submitted]) == before
    after = sorted(str(p) for p in tmp_path.rglob("*") if not str(p).startswith(str(env.out)))
    assert after == listing
    shutil.rmtree(tmp_path / "out")
