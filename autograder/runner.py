"""Grade a whole class in parallel and write grades.csv, feedback/ and grading.log to --out.

Two executors run the same unit of work (`grade_submission`): local worker processes
(default, one per core) or Dask distributed (`LocalCluster`, or `--scheduler tcp://…`);
see autograder.workers. Each worker grades one submission at a time, and a worker that dies
costs only the submission it was grading: grades.csv always has every student.
The main process only collects results: it never runs learner code, never writes outside
`out`, and reads the submissions without modifying them.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from autograder import regrade
from autograder.collect import Submission, collect
from autograder.context import Options
from autograder.export import STUDENTS
from autograder.feedback import render
from autograder.grade import StudentResult, grade_submission
from autograder.late import Lateness, LatePolicy, lateness
from autograder.sandbox import probe
from autograder.spec import Bundle, prepare, read_bundle
from autograder.workers import Grade, LocalWorkers, run_dask

COLUMNS = ("student", "part", "score", "max", "status", "reason")
STUDENT_COLUMNS = (
    "student", "assignment", "sha256", "lms", "lms_user_id", "lms_name", "lms_late",
    "submitted", "time_source", "seconds_late", "late_penalty",
)  # fmt: skip
LATE_PART = "late penalty"  # the grades.csv row of a late student (score: minus the penalty)


@dataclass(frozen=True)
class Batch:
    """One grading run, as the command line describes it."""

    assignment: str
    submissions: Path
    out: Path
    course_root: Path
    options: Options = Options()
    jobs: int = 0  # 0: one per core
    executor: str = "local"  # "local" or "dask"
    scheduler: str | None = None  # tcp://host:port of a running Dask scheduler
    student_pattern: str | None = None
    progress: bool = True
    grade: Grade = grade_submission  # the unit of work (tests swap in one that crashes)
    late: LatePolicy | None = None  # --due and --late-penalty
    student: str | None = None  # --student: grade only this one, keep the others' results


def run_batch(batch: Batch) -> int:
    """Grade every submission; returns the exit code (1 if the grader itself failed)."""
    start = time.perf_counter()
    out = batch.out.resolve()
    _check_out(out, batch)
    bundle = read_bundle(batch.assignment, batch.course_root)
    options = _with_sensitive(batch, out)
    subs = collect(
        batch.submissions, batch.assignment, bundle.notebook, options.max_notebook_bytes,
        batch.student_pattern,
    )  # fmt: skip
    prepare(bundle)  # a spec that does not fit the notebook fails here, before any work
    reused, todo = _plan(out, subs, bundle, options, batch.student)
    isolation = probe(options.sandbox)
    jobs = batch.jobs or os.cpu_count() or 1
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    with open(out / "grading.log", "w") as log, _executor(batch, bundle, jobs) as run:
        _log(
            log, f"assignment {batch.assignment}: {len(subs)} submissions from {batch.submissions}"
        )
        _log(log, isolation.describe())
        _log(log, f"limits: {options.limits}")
        where = batch.scheduler or f"local, {jobs} workers"
        _log(log, f"executor: {batch.executor} ({where})")
        if batch.late:
            due, rule = batch.late.due, batch.late.describe()
            _log(log, f"due {due:%Y-%m-%d %H:%M:%S} UTC (from {batch.late.source}); late: {rule}")
            for student, extension in sorted(batch.late.extensions.items()):
                _log(log, f"  extension for {student}: {extension} (nbgrader gradebook)")
        by_student = {s.student: s for s in subs}
        lates: dict[str, Lateness] = {}
        if isolation.mode != "bwrap":
            print(isolation.describe(), file=sys.stderr)
        reference = Submission("reference-solution", "the source notebook", bundle.source)
        _check_canary(next(iter(run([reference], options))))
        results = list(reused.values())
        _log(log, f"re-grading {len(todo)}, unchanged and reused {len(reused)}: {sorted(reused)}")
        for result in results:  # in student order: the log is the same run after run
            _write_student(
                out, batch.assignment, result, log, _late(batch, by_student, result, lates)
            )
        for result in _progress(run(todo, options), len(todo), batch):
            results.append(result)
            regrade.save(out, regrade.key(by_student[result.student], bundle, options), result)
            _write_student(
                out, batch.assignment, result, log, _late(batch, by_student, result, lates)
            )
        results.sort(key=lambda r: r.student)
        _write_csv(out / "grades.csv", results, lates)
        _write_students(out / STUDENTS, batch.assignment, results, by_student, lates)
        elapsed = time.perf_counter() - start
        summary = _summary(results, elapsed)
        _log(log, summary)
    print(f"{summary}\n  grades:   {out / 'grades.csv'}\n  feedback: {out / 'feedback'}")
    print(f"  log:      {out / 'grading.log'}")
    return 1 if any(r.internal_error for r in results) else 0


def _plan(
    out: Path, subs: list[Submission], bundle: Bundle, options: Options, only: str | None
) -> tuple[dict[str, StudentResult], list[Submission]]:
    """(stored results to reuse, submissions to grade): new or changed ones, or only `only`."""
    names = {s.student for s in subs}
    if only is not None and only not in names:
        raise ValueError(f"--student {only}: no submission of that student ({len(names)} found)")
    reused, todo = {}, []
    for sub in subs:
        entry = regrade.load(out, sub.student)
        fresh = entry is not None and entry[0] == regrade.key(sub, bundle, options)
        if only is not None and sub.student != only:
            if entry is not None:  # keep what was there, changed or not
                reused[sub.student] = entry[1]
        elif fresh and only is None:
            reused[sub.student] = entry[1]
        else:
            todo.append(sub)
    kept = {s.student for s in todo} | set(reused)
    for student in regrade.stored(out):
        if student not in kept:
            regrade.forget(out, student)  # gone from the submissions: as in a full run
    return reused, todo


def _late(
    batch: Batch, subs: dict[str, Submission], r: StudentResult, lates: dict
) -> Lateness | None:
    if batch.late is None:
        return None
    score = sum(o.score or 0.0 for o in r.outcomes)
    lates[r.student] = lateness(batch.late, subs[r.student], score)
    return lates[r.student]


def _check_canary(result: StudentResult) -> None:
    """The source notebook was graded first: anything but full marks means a broken grader."""
    lost = [
        f"{o.part}: {o.reason}" for o in result.outcomes if o.score is not None and o.score < o.max
    ]
    if lost or result.internal_error:
        raise ValueError(
            "the reference solution does not get full marks, so grading would be wrong:\n  "
            + "\n  ".join(lost or [result.internal_error])
        )


@contextlib.contextmanager
def _executor(batch: Batch, bundle: Bundle, jobs: int):
    """run(submissions, options) -> results as they finish, on the chosen executor."""
    if batch.executor != "dask":
        with LocalWorkers(batch.grade, bundle, jobs) as workers:
            yield workers.run
        return
    from dask.distributed import Client, LocalCluster

    cluster, scratch = None, None
    if batch.scheduler:
        client = Client(batch.scheduler)
    else:
        scratch = tempfile.mkdtemp(prefix="autograder-dask-")  # not dask's shared default
        cluster = LocalCluster(
            n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None,
            local_directory=scratch,
        )  # fmt: skip
        client = Client(cluster)
    try:
        yield lambda subs, opts: run_dask(client, batch.grade, subs, bundle, opts)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
            shutil.rmtree(scratch, ignore_errors=True)


def _progress(results, total: int, batch: Batch):
    from tqdm import tqdm

    bar = tqdm(total=total, unit="nb", desc=batch.assignment, disable=not batch.progress or None)
    try:
        for result in results:
            bar.update(1)
            yield result
    finally:
        bar.close()


def _write_student(
    out: Path, assignment: str, r: StudentResult, log, late: Lateness | None = None
) -> None:
    shown = (late.penalty, late.describe()) if late else None
    html = render(assignment, r.student, r.outcomes, r.notes, shown)
    (out / "feedback" / f"{r.student}.html").write_text(html)
    counts = Counter(o.status for o in r.outcomes)
    score = sum(o.score or 0.0 for o in r.outcomes)
    times = ", ".join(f"{k} {v:.2f} s" for k, v in r.seconds.items())
    _log(
        log, f"{r.student}: {score:g} points, {dict(sorted(counts.items()))}, {times} [{r.origin}]"
    )
    if late:
        _log(log, f"  {late.describe()}")
    for line in r.log:
        _log(log, f"  {line}")
    for o in r.outcomes:
        if o.status != "ok":
            _log(log, f"  {o.part}: {o.status}: {o.reason}")
    if r.internal_error:
        _log(log, "  INTERNAL ERROR:\n" + r.internal_error)
    if r.sandbox and r.sandbox != "bwrap":
        _log(log, f"  WARNING: graded without bubblewrap ({r.sandbox})")


def _write_csv(path: Path, results: list[StudentResult], lates: dict[str, Lateness]) -> None:
    """grades.csv; a late student gets one more row, part "late penalty", score -penalty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in results:
        for o in r.outcomes:
            score = "" if o.score is None else f"{o.score:g}"
            writer.writerow([r.student, o.part, score, f"{o.max:g}", o.status, o.reason])
        late = lates.get(r.student)
        if late and late.seconds_late > 0:
            penalty = f"{-late.penalty:g}" if late.penalty else "0"
            writer.writerow([r.student, LATE_PART, penalty, "0", "ok", late.describe()])
    path.write_text(buffer.getvalue())


def _write_students(
    path: Path,
    assignment: str,
    results: list[StudentResult],
    subs: dict[str, Submission],
    lates: dict[str, Lateness],
) -> None:
    """students.csv: who each student is for the LMS (autograder.export), and what was graded."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(STUDENT_COLUMNS)
    for r in results:
        lms = subs[r.student].lms
        ident = [lms.system, lms.user_id, lms.name, "yes" if lms.late else ""] if lms else [""] * 4
        late = lates.get(r.student)
        when = f"{late.submitted:%Y-%m-%dT%H:%M:%S}Z" if late and late.submitted else ""
        times = (
            [when, late.source, f"{late.seconds_late:g}", f"{late.penalty:g}"] if late else [""] * 4
        )
        writer.writerow([r.student, assignment, r.sha256, *ident, *times])
    path.write_text(buffer.getvalue())


def _summary(results: list[StudentResult], elapsed: float) -> str:
    counts = Counter(o.status for r in results for o in r.outcomes)
    rate = 60 * len(results) / elapsed if elapsed > 0 else 0.0
    parts = ", ".join(f"{k} {counts[k]}" for k in ("ok", "flagged", "error"))
    return (
        f"graded {len(results)} submissions in {elapsed:.1f} s ({rate:.1f} submissions/minute); "
        f"parts: {parts}"
    )


def _with_sensitive(batch: Batch, out: Path) -> Options:
    paths = {str(p.resolve()) for p in (batch.submissions, out, batch.course_root)}
    return Options(
        batch.options.limits,
        batch.options.sandbox,
        batch.options.max_notebook_bytes,
        tuple(sorted(paths | set(batch.options.sensitive))),
    )


def _check_out(out: Path, batch: Batch) -> None:
    subs = batch.submissions.resolve()
    if out == subs or subs in out.parents:
        raise ValueError("--out must not be inside the submissions")
    if out == batch.course_root.resolve():
        raise ValueError("--out must not be the course root")


def _log(log, line: str) -> None:
    log.write(line + "\n")
    log.flush()
