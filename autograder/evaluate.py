"""From a test cell's run to a verdict: score, status, reason and the learner's feedback.

A test cell scores its points when it runs to the end, else 0 (nbgrader's all-or-nothing).
Its failure is shown in full when it happened in a visible test line (the same readable
message the learner sees in the notebook); when any line between nbgrader's hidden-test
markers is involved, the learner only learns that a hidden test failed and how (type, shape
or values, or the built-in kind of exception), in grader-written words: never its inputs or
expected values, and never text the learner's code produced (an exception's message, type
name or traceback lines, which can carry the inputs it recorded). Reasons in the
CSV and the log are for the instructor and may say more.
"""

from __future__ import annotations

import builtins
import re
import signal
from dataclasses import dataclass

from autograder.misconception import MARK, sentence
from autograder.process import RunResult
from autograder.remote import LearnerError, LearnerGone, LearnerTimeout
from autograder.sandbox import Limits
from autograder.spec import TestCell
from autograder.verify import TestRun

OK, FLAGGED, ERROR = "ok", "flagged", "error"
_KIND = re.compile(r"\b(TYPE|SHAPE|VALUE) mismatch")


@dataclass
class Outcome:
    """The verdict on one graded part of one submission."""

    part: str
    score: float | None  # None: graded by hand
    max: float
    status: str
    reason: str  # for the instructor (CSV)
    feedback: str  # for the learner
    detail: str = ""  # longer text for the log


def death(info: RunResult, running: str | None, testing: bool, limits: Limits) -> str:
    """Why a sandbox stopped before it was done, and where."""
    if info.overflow:
        why = f"it sent back more than {limits.result_bytes // 2**20} MB of data"
    elif info.malformed:
        why = f"it broke the grader's protocol ({info.malformed})"
    elif info.timed_out:
        why = f"the time limit of {limits.wall_seconds:g} s for the whole notebook was reached"
    elif info.unresponsive:
        why = f"your code ignored the time limit of {limits.part_seconds:g} s and was stopped"
    elif info.signal == signal.SIGXCPU or (
        info.signal == signal.SIGKILL and info.cpu >= limits.cpu_seconds - 1
    ):
        why = f"the CPU-time limit of {limits.cpu_seconds} s was reached"
    elif info.signal:
        why = f"the process was killed by {signal.Signals(info.signal).name}"
        if info.signal in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS):
            why += f" (a crash; out of memory? the limit is {limits.memory_mb} MB)"
    else:
        why = f"the process exited (exit code {info.exit_code}), e.g. by os._exit()"
    if running is not None:
        why += f", while running cell {running}"
    elif testing:
        why += ", while your code was being tested"
    return why


def outcome(test: TestCell, run: TestRun, limits: Limits, notes: list[str]) -> Outcome:
    """The Outcome of one test cell. `notes` explain a missing name (e.g. a cell's error)."""
    gid, points, exc = test.grade_id, float(test.points), run.error
    if exc is None:
        return Outcome(gid, points, points, OK, "", "All tests in this cell pass.")
    lines = [f for f in run.tb if f.filename == f"<test {gid}>"]
    hidden = any(f.lineno in test.hidden_lines for f in lines)
    where = " (hidden test)" if hidden else ""
    shown = _test_line(test, lines[-1]) if lines and not hidden else ""
    if isinstance(exc, LearnerTimeout):
        text = f"your code took longer than {limits.part_seconds:g} s (time limit) in this cell"
        return Outcome(gid, 0.0, points, ERROR, text + where, _sentence(text, hidden) + shown)
    if isinstance(exc, LearnerGone):
        text = f"not graded: {exc}"
        return Outcome(gid, 0.0, points, ERROR, text, text + ".")
    if any(isinstance(e, MemoryError) for e in _chain(exc)):
        text = f"your code ran out of memory (limit {limits.memory_mb} MB)"
        return Outcome(gid, 0.0, points, ERROR, text + where, _sentence(text, hidden) + shown)
    name = type(exc).__name__
    message = str(exc).strip()
    first = message.splitlines()[0] if message else name
    reason = (f"{name}: {first}" if message else name)[:300] + where
    if isinstance(exc, NameError) and notes:
        reason += " (" + "; ".join(notes) + ")"
    feedback = _feedback(exc, name, message, hidden) + shown
    if isinstance(exc, NameError) and notes:
        feedback += "\n  " + "\n  ".join(notes)
    if run.misconception:
        reason += f" {MARK}{run.misconception}]"
        feedback += f"\n{sentence(run.misconception)}"
    return Outcome(gid, 0.0, points, OK, reason, feedback, detail=f"{name}: {message}"[:4000])


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _feedback(exc: BaseException, name: str, message: str, hidden: bool) -> str:
    frames = exc.frames if isinstance(exc, LearnerError) else ""
    if hidden:
        kind = _KIND.search(message)
        if kind:
            what = kind.group(1).lower()
            return f"A hidden test failed: {what} mismatch (your output's {what} differs from the expected one)."
        if isinstance(exc, LearnerError):  # its type name, message and lines are the learner's
            return f"Your code raised {_builtin_name(exc)} in a hidden test."
        if isinstance(exc, NameError):
            return f"{name}: {message}"
        return f"A hidden test failed ({name})."
    text = f"{name}: {message}" if message else name
    if isinstance(exc, LearnerError):
        text = f"Your code raised {text}" + (f"\n{frames}" if frames else "")
        if isinstance(exc, NotImplementedError):
            text += "\n  (replace `raise NotImplementedError()` with your code)"
    return text[:6000]


def _builtin_name(exc: BaseException) -> str:
    """The exception's type when it is a built-in one (a fixed vocabulary), else "an exception".

    A learner can name a class after the inputs it saw, so only Python's own names are shown.
    """
    name = type(exc).__name__
    known = getattr(builtins, name, None)
    return name if isinstance(known, type) and issubclass(known, BaseException) else "an exception"


def _sentence(text: str, hidden: bool) -> str:
    return text[0].upper() + text[1:] + (" (in a hidden test)." if hidden else ".")


def _test_line(test: TestCell, frame) -> str:
    """The test's statement that failed (at most 6 lines)."""
    lines = test.source.splitlines()
    first, last = frame.lineno, min(frame.end_lineno or frame.lineno, frame.lineno + 5)
    code = "\n    ".join(line.rstrip() for line in lines[first - 1 : last])
    return f"\n  in the test:\n    {code}" if code.strip() else ""
