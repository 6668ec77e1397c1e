"""Grading checks that the nbgrader test cells call.

`check_function(student_fn, reference_fn, cases, atol=..., rtol=...)` runs the learner's
function and the course_lib reference on seeded random and edge cases (`random_cases`,
`embedding_cases`) and fails with the case, its inputs and the first type, shape or value
difference. `check_value` compares one result, e.g. a worked example from the lecture.
"""

from course_lib.grading.checks import Case, check_function, check_value, random_cases
from course_lib.grading.compare import Mismatch, compare, describe

__all__ = [
    "Case",
    "Mismatch",
    "check_function",
    "check_value",
    "compare",
    "describe",
    "random_cases",
]
