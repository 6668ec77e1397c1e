"""Every released assignment can be graded: a spec, test cells that test the learner's code.

The tests themselves are the notebook's (run by autograder.verify), so what is checked here
is what a spec adds and what would silently break grading: the hidden references exist, no
test cell passes without calling learner code (free points), and the hidden-test lines are
found. (That the learner's view of course_lib still runs the set-up cells, and that the
reference solution gets full marks, is checked by every batch and tests/test_autograder_class.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.spec import RELEASE_DIR, SOURCE_DIR, load_spec, prepare, read_bundle
from autograder.view import hidden_objects

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = [  # released assignments (a source without a release is still being written)
    p.name for p in sorted((ROOT / SOURCE_DIR).iterdir()) if (ROOT / RELEASE_DIR / p.name).is_dir()
]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_assignment_is_gradeable(name):
    spec = load_spec(name)
    assert spec.name == name and spec.hidden_references
    assert len(hidden_objects(spec.hidden_references)) >= len(spec.hidden_references)
    prepared = prepare(read_bundle(name, ROOT))
    for test in prepared.tests:
        assert test.names, f"{test.grade_id} calls no learner code: it would give free points"
        assert test.points > 0
    hidden = [t for t in prepared.tests if t.hidden_lines]
    for test in hidden:
        lines = test.source.splitlines()
        assert "BEGIN HIDDEN TESTS" in lines[min(test.hidden_lines) - 1]
        assert "END HIDDEN TESTS" in lines[max(test.hidden_lines) - 1]


def test_unknown_assignment_is_a_clear_error():
    with pytest.raises(ValueError, match="no grading spec"):
        load_spec("ps99")
    with pytest.raises(ValueError, match="not an assignment name"):
        load_spec("../solutions")
