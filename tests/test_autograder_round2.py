"""Second-round red team, the parts that need no sandbox: feedback on hidden tests, LMS zip
attribution, the names that cross into the test namespace, bounded parsing of student data."""

from __future__ import annotations

import csv
import json
import os
import signal
import traceback
import zipfile
from pathlib import Path

import numpy as np
import pytest

from autograder import spec as spec_module
from autograder import synthetic
from autograder.collect import collect
from autograder.context import Options
from autograder.evaluate import outcome
from autograder.grade import grade_submission
from autograder.remote import learner_exception
from autograder.runner import Batch, run_batch
from autograder.sandbox import Limits
from autograder.spec import TestCell, prepare, read_bundle
from course_lib.grading import check_value

ROOT = Path(__file__).resolve().parents[1]


def _hidden_run(message: str, type_name: str, frames: str):
    """A hidden test line that calls the learner directly; the learner raises what it likes."""
    source = (
        "### BEGIN HIDDEN TESTS\ncheck_value(add(123456, 654321), 777777)\n### END HIDDEN TESTS\n"
    )
    test = TestCell("t", 2, source, spec_module._hidden_lines(source), frozenset({"add"}))

    def add(a, b):
        raise learner_exception(type_name, f"{type_name}: {message}\n{frames}", False)

    try:
        exec(compile(source, "<test t>", "exec"), {"check_value": check_value, "add": add})
    except Exception as exc:
        from autograder.verify import TestRun

        return outcome(
            test, TestRun("t", exc, traceback.extract_tb(exc.__traceback__)), Limits(), []
        )
    raise AssertionError("the test cell passed")


def test_hidden_feedback_has_no_learner_text():
    """The learner names its exception class after the inputs, puts them in the message and,
    through its own line cache, in the traceback lines: none of it reaches the feedback."""
    got = _hidden_run("saw 123456 654321", "Inputs_123456_654321", "  cell ex1, line 3: 123456")
    assert got.score == 0 and "hidden test" in got.feedback
    for secret in ("123456", "654321", "Inputs_"):
        assert secret not in got.feedback, got.feedback
    builtin = _hidden_run("saw 123456", "ValueError", "")
    assert "ValueError" in builtin.feedback and "123456" not in builtin.feedback


def test_lms_owner_folder_decides_who_submitted(tmp_path):
    """A `<Other>/<assignment>/` path inside Alice's Moodle folder stays Alice's (flagged);
    Bob's own upload is Bob's, untouched."""
    alice = json.dumps(synthetic.correct(ROOT, "ps01")).encode()
    bob = json.dumps(synthetic.load(ROOT, "ps01", "exercises")).encode()
    archive = tmp_path / "moodle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Alice A_11_assignsubmission_file_/Bob B/ps01/ps01.ipynb", alice)
        zf.writestr("Bob B_22_assignsubmission_file_/ps01.ipynb", bob)
        zf.writestr("Carol C_33_assignsubmission_file_/ps01.ipynb", alice)
        zf.writestr("Carol C_33_assignsubmission_file_/Dave/ps01/ps01.ipynb", bob)
    got = {s.student: s for s in collect(archive, "ps01", "ps01.ipynb", 2**30)}
    assert sorted(got) == ["Alice_A", "Bob_B", "Carol_C"]
    assert got["Bob_B"].data == bob and not got["Bob_B"].review and not got["Bob_B"].problem
    assert got["Alice_A"].data == alice and "names Bob_B" in got["Alice_A"].review[0]
    assert got["Carol_C"].data == alice and "names Dave" in got["Carol_C"].review[0]


def test_only_graded_names_cross_into_the_tests():
    """Builtins and the test cells' own names are never taken from the learner."""
    import builtins

    for path in sorted((ROOT / "autograder" / "specs").glob("ps*.py")):
        prepared = prepare(read_bundle(path.stem, ROOT))
        crossing = set().union(*(t.names for t in prepared.tests))
        assert crossing and not crossing & set(dir(builtins)), path.stem


def test_student_data_is_bounded_before_it_is_parsed():
    """A frame or a notebook of `{},{},…` (24-fold in json.loads) and a 45 MB code cell are
    refused by counting, before any parser or the IPython transform sees them."""
    from autograder.frames import MAX_TOKENS, FrameError, parse_frame
    from autograder.notebook import MAX_CELL_CODE, NotebookError, parse_notebook

    bomb = b"[" + b"{}," * MAX_TOKENS + b"{}]"
    with pytest.raises(FrameError, match="JSON elements"):
        parse_frame(bomb)
    with pytest.raises(NotebookError, match="JSON elements"):
        parse_notebook(b'{"nbformat": 4, "cells": [], "x": ' + bomb + b"}", 2**30)
    nb = synthetic.correct(ROOT, "ps01")
    synthetic.set_cell(nb, "ex1_dot", "x = 1\n" * (MAX_CELL_CODE // 6 + 1))
    with pytest.raises(NotebookError, match="KB of code"):
        parse_notebook(json.dumps(nb).encode(), 2**30)
    assert parse_frame(b'{"k": "reply", "ok": [1, 2]}') == {"k": "reply", "ok": [1, 2]}


def crash_on_mallory(sub, bundle, options):
    """The unit of work, except that the worker dies (SIGKILL, as the OOM killer does) on mallory."""
    if sub.student == "mallory":
        os.kill(os.getpid(), signal.SIGKILL)
    return grade_submission(sub, bundle, options)


@pytest.mark.parametrize("executor, jobs", [("local", 2), ("dask", 2), ("dask", 1)])
def test_a_dead_worker_costs_only_its_student(tmp_path, executor, jobs):
    """With one Dask worker, zoe waits on the worker mallory kills: her task fails with it,
    and is tried again (it used to give her error rows)."""
    import dask
    import dask.distributed  # noqa: F401  (loads its config before `config.set` below, whose
    # undo would otherwise delete the whole "distributed" section for the tests after this)

    folder = tmp_path / "flat"
    folder.mkdir()
    for name in ("alice", "mallory", "zoe"):
        (folder / f"{name}.ipynb").write_text(json.dumps(synthetic.correct(ROOT, "ps01")))
    limits = Limits(wall_seconds=120, part_seconds=30)
    batch = Batch(
        "ps01", folder, tmp_path / "out", ROOT, Options(limits), jobs=jobs, executor=executor,
        progress=False, grade=crash_on_mallory,
    )  # fmt: skip
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        assert run_batch(batch) == 0
    rows: dict = {}
    with open(tmp_path / "out" / "grades.csv") as f:
        for row in csv.DictReader(f):
            rows.setdefault(row["student"], []).append(row)
    assert sorted(rows) == ["alice", "mallory", "zoe"]
    assert all(r["status"] == "error" and r["score"] in ("0", "") for r in rows["mallory"])
    assert all("worker" in r["reason"] for r in rows["mallory"]), rows["mallory"]
    if executor == "local":
        assert "SIGKILL" in rows["mallory"][0]["reason"]
    for student in ("alice", "zoe"):
        assert all(r["score"] == r["max"] for r in rows[student] if r["score"]), rows[student]
    assert "mallory" in (tmp_path / "out" / "grading.log").read_text()


def test_arguments_larger_than_a_pipe_buffer_reach_the_learner():
    """A call whose arguments exceed the 64 KB pipe buffer: the grader waits until the pipe
    is writable again (it used to read the write end, OSError EBADF, and lost the session)."""
    from autograder.context import get_context
    from autograder.notebook import learner_script, parse_notebook
    from autograder.verify import Learner

    bundle = read_bundle("ps01", ROOT)
    ctx = get_context(bundle, Options(Limits(wall_seconds=60, part_seconds=30)))
    prep = ctx.prepared
    cells = parse_notebook(json.dumps(synthetic.correct(ROOT, "ps01")).encode(), 2**30)
    learner = Learner(
        ctx.start, learner_script(cells, prep.cells), ctx.options.limits, lambda *why: repr(why)
    )
    try:
        learner.ensure()
        learner.part_left = 30.0
        a = np.arange(200_000, dtype=np.float64)  # 1.6 MB, twice base64-encoded in JSON
        assert learner.proxies()["dot"](a, a) == float(a @ a)
    finally:
        learner.close()


def test_a_course_under_tmp_is_still_seen_by_each_submission(monkeypatch):
    """Each submission gets a fresh /tmp; a repository cloned under /tmp (the view of
    course_lib is mounted at its path) must stay visible (it vanished: 'No module named
    course_lib.embeddings' when the CI ran from /tmp/ci)."""
    from autograder import context
    from autograder.notebook import learner_script, parse_notebook
    from autograder.verify import Learner

    dest = Path("/tmp/relocated-course") / "course_lib"
    monkeypatch.setattr(context, "course_lib_dir", lambda: dest)
    ctx = context.Context(read_bundle("ps01", ROOT), Options(Limits(wall_seconds=60)))
    nb = synthetic.correct(ROOT, "ps01")
    check = f"import os\nrelocated = sorted(os.listdir({str(dest)!r}))\n"
    synthetic.set_cell(nb, "ex1_dot", synthetic.cell_source(nb, "ex1_dot") + "\n" + check)
    cells = parse_notebook(json.dumps(nb).encode(), 2**30)
    script = learner_script(cells, ctx.prepared.cells)
    learner = Learner(ctx.start, script, ctx.options.limits, lambda *why: repr(why))
    try:
        learner.ensure()
        assert {"embeddings", "grading", "models"} <= set(learner.proxies()["relocated"])
    finally:
        learner.close()
        ctx.close()
