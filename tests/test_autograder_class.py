"""Synthetic classes graded end to end: 30 students for the first assignment, and for every
other released assignment a class with each kind of student (correct, wrong, every attack).

Correct notebooks get every autograded point; "wrong" ones and the plausible mistakes of
tests/assignments.py (the edits nbgrader's own round trip checks) lose some points but not
all; hostile ones never get the points they go after. The students' files are unchanged
(SHA-256). The same students graded again on a Dask LocalCluster give byte-identical
grades.csv rows and feedback pages (determinism, and the two executors agree).
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from autograder import synthetic
from autograder.context import Options
from autograder.runner import Batch, run_batch
from autograder.sandbox import Limits
from autograder.spec import RELEASE_DIR, SOURCE_DIR, load_spec, prepare, read_bundle

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = [p.name for p in sorted((ROOT / SOURCE_DIR).iterdir()) if (ROOT / RELEASE_DIR / p.name).is_dir()]  # fmt: skip
LIMITS = Limits(wall_seconds=120, part_seconds=30)


def _mistakes(name: str) -> dict[str, dict]:
    """The wrong answers tests/assignments.py defines for `name`, as submissions."""
    try:
        import nbformat
        from assignments import ASSIGNMENTS as KNOWN
    except ImportError:
        return {}
    out = {}
    for assignment in KNOWN:
        if assignment.name != name:
            continue
        for answer in assignment.wrong_answers:
            source = nbformat.reads((ROOT / SOURCE_DIR / name / f"{name}.ipynb").read_text(), 4)
            answer.edit({f"{name}.ipynb": source})
            out[f"mistake-{answer.name}"] = synthetic.from_source(ROOT, name, dict(source))
    return out


def _write(tmp: Path, name: str) -> tuple[Path, dict[str, str]]:
    if name == ASSIGNMENTS[0]:  # a class of 30 once (and on Dask below), every kind elsewhere
        students = synthetic.make_class(ROOT, name, 30, seed=7)
    else:
        students = synthetic.every_kind(ROOT, name, seed=7)
    kinds = {s: kind for s, (kind, _) in students.items()}
    for student, nb in _mistakes(name).items():
        students[student] = ("mistake", json.loads(json.dumps(nb)))
        kinds[student] = "mistake"
    return synthetic.write_class(students, tmp, name, load_spec(name).notebook), kinds


def _rows(out: Path) -> dict[str, list[dict]]:
    by_student: dict[str, list[dict]] = {}
    with open(out / "grades.csv") as f:
        for row in csv.DictReader(f):
            by_student.setdefault(row["student"], []).append(row)
    return by_student


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _total(rows: list[dict]) -> tuple[float, float]:
    auto = [r for r in rows if r["score"] != ""]
    return sum(float(r["score"]) for r in auto), sum(float(r["max"]) for r in auto)


def _check(kind: str, rows: list[dict]) -> None:
    got, best = _total(rows)
    if kind == "correct":
        assert got == best and all(r["status"] == "ok" for r in rows), rows
    elif kind == "wrong":  # a stub left in can cost everything built on it
        assert got < best, rows
    elif kind == "mistake":  # plausible mistakes cost some points, not all
        assert 0 < got < best, (kind, got, best, rows)
    elif kind in ("hostile:rebind_checks", "hostile:read_solution"):
        assert got == 0, rows
    elif kind == "hostile:call_reference":
        assert got < best and any("no credit" in r["reason"] for r in rows), rows
    elif kind == "hostile:exit_kernel":  # the last exercise is lost, the others are kept
        assert 0 < got < best and all(r["status"] == "flagged" for r in rows if r["score"]), rows
    else:
        raise AssertionError(f"unknown kind {kind}")


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_class(tmp_path, name):
    submitted, kinds = _write(tmp_path / "class", name)
    before = _hashes(submitted)
    out = tmp_path / "out"
    batch = Batch(name, submitted, out, ROOT, Options(LIMITS), jobs=2, progress=False)
    assert run_batch(batch) == 0
    rows = _rows(out)
    assert sorted(rows) == sorted(kinds)
    graded = [t.grade_id for t in prepare(read_bundle(name, ROOT)).tests]
    for student, kind in kinds.items():
        parts = [r["part"] for r in rows[student]]
        assert [p for p in parts if p in graded] == graded and len(set(parts)) == len(parts)
        _check(kind, rows[student])
    assert _hashes(submitted) == before
    assert {p.stem for p in (out / "feedback").glob("*.html")} == set(kinds)

    if name != ASSIGNMENTS[0]:
        return
    few = sorted(kinds)[:6]  # the same students on a Dask LocalCluster: identical results
    subset = tmp_path / "subset" / "submitted"
    for student in few:
        target = subset / student / name
        target.mkdir(parents=True)
        for f in (submitted / student / name).iterdir():
            (target / f.name).write_bytes(f.read_bytes())
    dask_out = tmp_path / "dask"
    dask = Batch(
        name, subset, dask_out, ROOT, Options(LIMITS), jobs=2, executor="dask", progress=False
    )
    assert run_batch(dask) == 0
    assert _rows(dask_out) == {s: rows[s] for s in few}
    for student in few:
        page = f"feedback/{student}.html"
        assert (dask_out / page).read_bytes() == (out / page).read_bytes()


def test_dask_scheduler_address(tmp_path):
    """`--scheduler tcp://…`: the work goes to a cluster someone else started."""
    from dask.distributed import LocalCluster

    folder = tmp_path / "flat"
    folder.mkdir()
    (folder / "alice.ipynb").write_text(json.dumps(synthetic.correct(ROOT, "ps01")))
    (folder / "bob.ipynb").write_text("{not json")
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        batch = Batch(
            "ps01", folder, tmp_path / "out", ROOT, Options(LIMITS), executor="dask",
            scheduler=cluster.scheduler_address, progress=False,
        )  # fmt: skip
        assert run_batch(batch) == 0
    rows = _rows(tmp_path / "out")
    assert {r["status"] for r in rows["bob"]} == {"error"}
    assert all("not valid JSON" in r["reason"] for r in rows["bob"])
    assert all(r["score"] == r["max"] for r in rows["alice"] if r["score"])
