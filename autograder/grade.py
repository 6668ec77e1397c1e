"""Grade one submission: read it, run the learner's code sandboxed, judge, flag.

This is the unit of work of both executors (the local pool and Dask): it takes the
submission and the assignment's trusted files as plain data and returns plain data.
A problem with the submission gives rows with status "error" and a reason; a bug in the
grader itself is caught too (status "error", reason "internal grader error"), so one bad
notebook never stops the batch.
"""

from __future__ import annotations

import re
import time
import traceback
from dataclasses import dataclass, field

from autograder.collect import Submission
from autograder.context import Context, Options, get_context
from autograder.evaluate import ERROR, FLAGGED, OK, Outcome, death, outcome
from autograder.notebook import (
    MANUAL,
    SETUP,
    SOLUTION,
    TEST,
    Cell,
    Integrity,
    NotebookError,
    check_integrity,
    is_foreign,
    learner_script,
    parse_notebook,
)
from autograder.scan import MENTION, REFERENCE, Finding, scan
from autograder.spec import Bundle, Prepared
from autograder.verify import Learner, run_tests

_OTHER_NAME = "the submission's path names another student; the instructor will check it"
_FILE_HINT = re.compile(r"solutions?/|gradebook|submitted/|autograded/|\.ipynb$", re.IGNORECASE)


@dataclass
class StudentResult:
    """Everything the batch writes about one student."""

    student: str
    origin: str
    sha256: str
    outcomes: list[Outcome]
    notes: list[str] = field(default_factory=list)  # notebook-level, shown to the learner
    log: list[str] = field(default_factory=list)  # instructor-only details
    seconds: dict[str, float] = field(default_factory=dict)
    sandbox: str = ""
    internal_error: str = ""


@dataclass(frozen=True)
class Flag:
    """Something to review; `no_credit` zeroes the parts it covers (None: all autograded).

    `reason` is for the instructor (it may quote what the learner's code did); `public` is the
    learner's version, written by the grader only: an event's details can carry hidden inputs.
    """

    parts: frozenset[str] | None
    no_credit: bool
    reason: str
    public: str = ""

    @property
    def shown(self) -> str:
        return self.public or self.reason


def grade_submission(sub: Submission, bundle: Bundle, options: Options) -> StudentResult:
    """The verdict on every graded part of one submission (never raises)."""
    start = time.perf_counter()
    ctx = get_context(bundle, options)
    try:
        result = _grade(sub, ctx)
    except Exception as exc:
        result = _unreadable(sub, ctx, f"internal grader error: {type(exc).__name__}: {exc}")
        result.internal_error = traceback.format_exc()
    result.sandbox = ctx.isolation.mode
    result.seconds["total"] = time.perf_counter() - start
    return result


def _grade(sub: Submission, ctx: Context) -> StudentResult:
    prep = ctx.prepared
    if sub.data is None:
        return _unreadable(sub, ctx, sub.problem or "no notebook")
    start = time.perf_counter()
    try:
        cells = parse_notebook(sub.data, ctx.options.max_notebook_bytes)
    except NotebookError as exc:
        return _unreadable(sub, ctx, str(exc))
    if is_foreign(cells, prep.cells):
        return _unreadable(
            sub,
            ctx,
            f"this is not a {prep.spec.name} notebook: none of its exercise cells is in it",
        )
    integrity = check_integrity(cells, prep.cells)
    script = learner_script(cells, prep.cells)
    findings = scan(script, ctx.hidden, {c.grade_id for c in prep.cells if c.role == SETUP})
    result = StudentResult(sub.student, sub.origin, sub.sha256, [])
    result.seconds["read"] = time.perf_counter() - start

    start = time.perf_counter()
    limits = ctx.options.limits

    def died(info, running, testing):
        return death(info, running, testing, limits)

    learner = Learner(ctx.start, script, limits, died)
    runs = run_tests(prep, learner)
    result.seconds["run"] = time.perf_counter() - start
    for info in learner.runs:
        _log_run(info, result)

    start = time.perf_counter()
    notes = learner.stops + _solution_notes(learner.cell_errors, integrity, prep.cells)
    tests = {t.grade_id: t for t in prep.tests}
    outcomes = {r.grade_id: outcome(tests[r.grade_id], r, limits, notes) for r in runs}
    events = [e for info in learner.runs for e in info.events]
    flags = _flags(integrity, findings, events, ctx, result.log)
    flags += [Flag(None, False, note, _OTHER_NAME) for note in sub.review]
    for o in outcomes.values():
        _apply(o, flags)
    manual = {c.grade_id: _manual(c, cells) for c in prep.manual}
    order = [c.grade_id for c in prep.cells if c.role in (TEST, MANUAL)]
    result.outcomes = [outcomes.get(gid) or manual[gid] for gid in order]
    result.seconds["judge"] = time.perf_counter() - start

    result.notes = list(dict.fromkeys(f.shown for f in flags if f.parts is None)) + learner.stops
    result.notes += [
        f"cell {cid}: {err.splitlines()[0]}" for cid, err in learner.cell_errors.items()
    ]
    result.log += [f"cell {cid} raised {err}" for cid, err in learner.cell_errors.items()]
    result.log += [f"finding: cell {f.cell}: {f.kind}: {f.detail}" for f in findings]
    result.log += [f"changed text cell: {gid}" for gid in integrity.modified_text]
    result.log += [f"{o.part}: {o.detail[:2000]}" for o in result.outcomes if o.detail]
    return result


def _log_run(info, result: StudentResult) -> None:
    result.seconds["cpu"] = result.seconds.get("cpu", 0.0) + info.cpu
    result.log.append(
        f"sandbox: wall {info.wall:.2f} s, cpu {info.cpu:.2f} s, max rss {info.max_rss_mb:.0f} MB, "
        f"exit {info.exit_code} signal {info.signal}, {info.messages} messages, "
        f"printed {info.output_total} bytes"
    )
    if info.output_total:
        head = info.output[:1000].decode(errors="replace")
        result.log.append(f"printed output (first {len(head)} characters): {head}")


def _unreadable(sub: Submission, ctx: Context, reason: str) -> StudentResult:
    return failed(sub, ctx.prepared, reason)


def failed(sub: Submission, prep: Prepared, reason: str) -> StudentResult:
    """Rows for a submission that cannot be graded at all: every part "error", 0 points."""
    parts = [c for c in prep.cells if c.role in (TEST, MANUAL)]
    text = f"Your notebook could not be graded: {reason}."
    outcomes = [Outcome(c.grade_id, 0.0, c.points, ERROR, reason, text) for c in parts]
    result = StudentResult(sub.student, sub.origin, sub.sha256, outcomes, notes=[text])
    result.log.append(f"not graded: {reason}")
    return result


def _solution_notes(cell_errors: dict, integrity: Integrity, cells) -> list[str]:
    """Why a function may be missing: errors in solution cells, deleted solution cells."""
    solutions = {c.grade_id for c in cells if c.role == SOLUTION}
    notes = [
        f"cell {cid} raised {err.splitlines()[0][:200]}"
        for cid, err in cell_errors.items()
        if cid.split("#")[0] in solutions
    ]
    return notes + [
        f"solution cell {gid} was deleted" for gid in integrity.missing if gid in solutions
    ]


def _flags(integrity: Integrity, findings: list[Finding], events, ctx: Context, log) -> list[Flag]:
    prep = ctx.prepared
    flags = [
        Flag(frozenset([g]), True, f"the test cell {g} was deleted (0 points)")
        for g in integrity.missing
        if any(t.grade_id == g for t in prep.tests)
    ]
    flags += [
        Flag(frozenset([g]), False, f"the test cell {g} was modified (graded with the original)")
        for g in integrity.modified_tests
    ]
    flags += [
        Flag(None, False, f"the locked cell {g} was modified (the original was run)")
        for g in integrity.modified_locked_code
    ]
    flags += [
        Flag(None, False, f"the cell {g} appears twice or more") for g in integrity.duplicated
    ]
    flags += [
        Flag(None, False, f"a cell claims to be graded as {g!r}, which {prep.spec.name} has not")
        for g in integrity.foreign_graded
    ]
    for f in findings:  # static: worth a look, never points (strings and dead code count too)
        parts = frozenset(t.grade_id for t in prep.tests if t.names & f.defines)
        parts = (parts or None) if f.kind == REFERENCE else None
        if f.kind == MENTION:
            log.append(f"cell {f.cell} {f.detail} (in text only)")
        else:
            flags.append(Flag(parts, False, f"cell {f.cell} {f.detail}"))
    for e in events:  # what happened at run time
        kind, detail, part = e["kind"], e["detail"], e.get("part")
        where = f"cell {e['cell']}" if isinstance(e.get("cell"), str) else "the code under test"
        if kind == "reference" and isinstance(part, str):
            reason = f"called {detail} (the reference) while being tested: no credit"
            public = "your code called course_lib's reference while being tested: no credit"
            flags.append(Flag(frozenset([part]), True, reason, public))
        elif kind == "reference":
            public = "your code called course_lib's reference (outside the tests)"
            flags.append(Flag(None, False, f"{where} called {detail} (the reference)", public))
        elif kind in ("write", "path") and _grading_file(detail, ctx):
            verb = "write" if e.get("writes") is True else "read"
            reason = (
                f"{where} tried to {verb} {detail} (grading files or other students'): no credit"
            )
            public = f"your code tried to {verb} grading files or other students' files: no credit"
            flags.append(Flag(None, True, reason, public))
        elif kind == "write" or _FILE_HINT.search(detail):
            verb = "write" if kind == "write" else "open"
            public = f"your code tried to {verb} a file outside its working folder"
            flags.append(Flag(None, False, f"{where} tried to {verb} {detail} (blocked)", public))
        else:
            log.append(f"{where} touched {detail} ({kind}, outside the sandbox's files)")
    return list(dict.fromkeys(flags))


def _grading_file(path: str, ctx: Context) -> bool:
    """Under the course root, the submissions, --out or the grader's workspace (exact places)."""
    roots = [r.rstrip("/") for r in ctx.workspace_roots]
    return any(path == r or path.startswith(r + "/") for r in roots)


def _apply(outcome: Outcome, flags: list[Flag]) -> None:
    relevant = [f for f in flags if f.parts is None or outcome.part in f.parts]
    if not relevant:
        return
    if any(f.no_credit for f in relevant):
        outcome.score = 0.0
    reasons = list(dict.fromkeys(f.reason for f in relevant))
    shown = list(dict.fromkeys(f.shown for f in relevant))
    outcome.reason = "; ".join(reasons + ([outcome.reason] if outcome.reason else []))
    outcome.feedback = "Flagged for review: " + "; ".join(shown) + ".\n" + outcome.feedback
    outcome.status = FLAGGED


def _manual(source_cell, cells: list[Cell]) -> Outcome:
    gid, points = source_cell.grade_id, source_cell.points
    answers = [c for c in cells if c.grade_id == gid]
    if not answers:
        text = "the answer cell was deleted"
        return Outcome(gid, 0.0, points, FLAGGED, text, f"Your answer cell {gid} was deleted.")
    answer = answers[0].source.strip()
    blank = not answer or answer == source_cell.release_source.strip()
    reason = "manual grading required" + (" (the answer is blank)" if blank else "")
    return Outcome(gid, None, points, OK, reason, "Graded by hand.", detail="")
