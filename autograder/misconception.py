"""Misconception hints: when a learner's output on the case that failed equals the output of a
known-wrong variant named by the assignment's spec, say which mistake it looks like.

`check_function` (course_lib.grading.checks) attaches what it saw to the AssertionError it
raises on a mismatch (`FailedCase`: the function's name, the case, the learner's output and the
tolerances). The variant, trusted course_lib code, runs here in the grader's process on a copy
of that case, called as the test called the reference; its output is compared with the
learner's with the test's own tolerances. The learner's output is data sent back by the
sandbox; nothing the learner wrote runs here.
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass

from course_lib.grading.checks import FailedCase
from course_lib.grading.compare import compare

MARK = "[misconception: "  # how grades.csv's reason names it (autograder.report counts these)


@dataclass(frozen=True)
class Misconception:
    """A known-wrong variant of one graded function."""

    function: str  # the learner's function, as the test's check_function names it
    label: str  # the mistake, completing "it looks like ...": "LayerNorm instead of RMSNorm"
    variant: str  # dotted path of a course_lib callable, called as the test calls the reference


def diagnose(error: BaseException | None, known: tuple[Misconception, ...]) -> str:
    """The label of the variants whose output equals the learner's on the failed case; "" when
    none does, or when variants of different labels do (the case cannot tell them apart)."""
    failed = getattr(error, "failed_case", None)
    if not isinstance(failed, FailedCase):
        return ""
    labels = set()
    for m in known:
        if m.function != failed.name:
            continue
        try:
            expected = _load(m.variant)(
                *copy.deepcopy(failed.case.args), **copy.deepcopy(dict(failed.case.kwargs))
            )
            if compare(failed.got, expected, atol=failed.atol, rtol=failed.rtol) is None:
                labels.add(m.label)
        except Exception:  # a variant that cannot run on this case says nothing
            continue
    return labels.pop() if len(labels) == 1 else ""


def sentence(label: str) -> str:
    """The one sentence the learner's feedback gets."""
    return f"Hint: your output on this case is exactly what a known mistake gives: {label}."


def _load(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)
