"""Without bubblewrap (`--sandbox none`): rlimits and outside verification still hold.

The log must say loudly what is missing. Patching checks still gains nothing (the verdict is
computed outside), loops and fork bombs are still stopped, and reading the solution notebook
— possible here, since there is no filesystem isolation — is caught by the audit hook and
gives no credit.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from redteam.attacks import ATTACKS, Env

from autograder.context import Options
from autograder.runner import Batch, run_batch
from autograder.sandbox import Limits, SandboxUnavailable, probe

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["patch_numpy", "infinite_loop_cell", "fork_bomb", "read_solution_notebook", "empty_file"]


def test_rlimits_only(tmp_path):
    try:
        probe("none")
    except SandboxUnavailable as exc:  # e.g. root with a Python only root can read
        assert "bubblewrap" in str(exc) and "fork bomb" in str(exc)
        pytest.skip(f"the rlimits-only mode refuses to run here: {exc}")
    course = tmp_path / "course"
    for folder in ("solutions", "exercises"):
        shutil.copytree(ROOT / folder / "ps01", course / folder / "ps01")
    for p in [course, *course.rglob("*")]:  # readable by the learner's uid, like a real checkout
        p.chmod(0o755 if p.is_dir() else 0o644)
    tmp_path.chmod(0o755)
    submitted, out = course / "submitted", tmp_path / "out"
    env = Env(course, submitted, out, submitted / "nobody.ipynb", "fallback")
    for name in NAMES:
        folder = submitted / name / "ps01"
        folder.mkdir(parents=True)
        (folder / "ps01.ipynb").write_bytes(ATTACKS[name].build(env))
    limits = Limits(wall_seconds=10, cpu_seconds=6, memory_mb=1024, part_seconds=2, processes=32)
    batch = Batch("ps01", submitted, out, course, Options(limits, "none"), jobs=2, progress=False)
    assert run_batch(batch) == 0
    rows: dict = {}
    with open(out / "grades.csv") as f:
        for row in csv.DictReader(f):
            rows.setdefault(row["student"], {})[row["part"]] = row
    failures = []
    for name in NAMES:
        try:
            ATTACKS[name].expect(rows[name], env)
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
    assert not failures, "\n".join(failures)
    flagged = [r for r in rows["read_solution_notebook"].values() if r["score"]]
    assert all("no credit" in r["reason"] and "solutions" in r["reason"] for r in flagged)
    log = (out / "grading.log").read_text()
    assert "WARNING: bubblewrap not used" in log and "missing protection: filesystem" in log
