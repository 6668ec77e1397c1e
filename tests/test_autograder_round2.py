"""Second-round red team, the parts that need no sandbox: feedback on hidden tests, LMS zip
attribution, the names that cross into the test namespace, bounded parsing of student data."""

from __future__ import annotations

import json
import traceback
import zipfile
from pathlib import Path

from autograder import spec as spec_module
from autograder import synthetic
from autograder.collect import collect
from autograder.evaluate import outcome
from autograder.remote import learner_exception
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
