"""The checks that nbgrader test cells call: learner's function against the reference.

Style of CS336's assignment tests: inputs from seeded random cases plus edge cases, the
expected value computed by the course_lib reference at test time, compared with explicit
`atol`/`rtol`; a failure names the case, its inputs and the first element that differs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from course_lib.grading.compare import compare, describe


@dataclass(frozen=True)
class Case:
    """One call: `fn(*args, **kwargs)`, with a label shown when it fails."""

    args: tuple
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""

    def describe(self, names: Iterable[str] = ()) -> str:
        """The inputs, one per line, as `name = short repr`."""
        names = list(names)
        parts = [
            f"{names[i] if i < len(names) else f'arg{i}'} = {describe(a)}"
            for i, a in enumerate(self.args)
        ]
        parts += [f"{k} = {describe(v)}" for k, v in self.kwargs.items()]
        return "\n".join(f"    {p}" for p in parts)


@dataclass(frozen=True)
class FailedCase:
    """What `check_function` saw on the case that failed: for the grader's misconception hints."""

    name: str
    case: Case
    got: Any
    atol: float
    rtol: float


def as_case(case: Case | tuple) -> Case:
    """A `Case` from a `Case` or a tuple of positional arguments."""
    return case if isinstance(case, Case) else Case(tuple(case))


def random_cases(
    seed: int,
    n: int,
    make_case: Callable[[np.random.Generator], Case | tuple],
    *,
    edge_cases: Iterable[Case | tuple] = (),
) -> list[Case]:
    """`edge_cases` followed by `n` cases drawn by `make_case(rng)` from one seeded generator.

    The same seed gives the same cases on every machine (NumPy's PCG64 stream is stable).
    """
    rng = np.random.default_rng(seed)
    cases = [as_case(c) for c in edge_cases]
    for i in range(n):
        case = as_case(make_case(rng))
        label = case.label or "random case"
        cases.append(Case(case.args, case.kwargs, f"{label} #{i + 1}, seed {seed}"))
    return cases


def check_function(
    student_fn: Callable,
    reference_fn: Callable,
    cases: Iterable[Case | tuple],
    *,
    atol: float,
    rtol: float,
    name: str | None = None,
    arg_names: Iterable[str] = (),
) -> int:
    """Assert `student_fn(*case) == reference_fn(*case)` within tolerance on every case.

    Each function gets its own deep copy of the inputs, so neither can change what the other
    sees. Raises AssertionError naming the case, its inputs, and the first type, shape or value
    difference; a learner function that raises is reported with the exception and the case.
    Returns the number of cases checked.
    """
    name = name or getattr(student_fn, "__name__", "your function")
    arg_names = list(arg_names) or _parameter_names(reference_fn)
    cases = [as_case(c) for c in cases]
    for i, case in enumerate(cases, start=1):
        expected = reference_fn(*copy.deepcopy(case.args), **copy.deepcopy(dict(case.kwargs)))
        header = f"{name} failed on case {i} of {len(cases)}" + (
            f" ({case.label})" if case.label else ""
        )
        inputs = f"\n  inputs:\n{case.describe(arg_names)}"
        try:
            got = student_fn(*copy.deepcopy(case.args), **copy.deepcopy(dict(case.kwargs)))
        except Exception as exc:
            hint = (
                "\n  (replace `raise NotImplementedError()` with your code)"
                if isinstance(exc, NotImplementedError)
                else ""
            )
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise AssertionError(f"{header}: it raised {error}{inputs}{hint}") from exc
        mismatch = compare(got, expected, atol=atol, rtol=rtol)
        if mismatch is not None:
            error = AssertionError(f"{header}.{inputs}\n  {mismatch}")
            error.failed_case = FailedCase(name, case, got, atol, rtol)
            raise error
    return len(cases)


def check_value(got: Any, expected: Any, *, atol: float, rtol: float, name: str = "output") -> None:
    """Assert one value equals `expected` within tolerance, e.g. a worked example's result."""
    mismatch = compare(got, expected, atol=atol, rtol=rtol, where=name)
    if mismatch is not None:
        raise AssertionError(str(mismatch))


def _parameter_names(fn: Callable) -> list[str]:
    code = getattr(fn, "__code__", None)
    return list(code.co_varnames[: code.co_argcount]) if code is not None else []
