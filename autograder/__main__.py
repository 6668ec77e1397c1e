"""Command line: `python -m autograder grade <assignment> <submissions> --out <dir>`."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from autograder.context import Options
from autograder.export import __doc__ as export_doc
from autograder.export import export as write_export
from autograder.gradebook import __doc__ as gradebook_doc
from autograder.late import resolve
from autograder.report import __doc__ as report_doc
from autograder.report import write_report
from autograder.runner import Batch, run_batch
from autograder.sandbox import Limits, SandboxUnavailable
from autograder.similarity import __doc__ as similarity_doc
from autograder.similarity import check_class

_GRADE_HELP = """\
Grade every submission of an assignment and write, in --out:

  grades.csv        one row per student and graded part:
                    student, part, score, max, status, reason
                    status ok       graded (reason says why points were lost)
                           flagged  needs a human look: tampering, use of the reference
                                    solution, deleted/modified test cells (reason says which;
                                    using the reference or reading grading files gives 0)
                           error    could not be graded (unreadable notebook, another
                                    assignment, a time or memory limit hit): 0 points
                    written answers have an empty score and "manual grading required".
  feedback/<student>.html   what failed and why (hidden test cases are not revealed)
  grading.log       sandbox in use, limits, per-student timings and details, and the due date
                    with where it came from: --due, else nbgrader's gradebook of --course-root
                    (a student's extension stored there moves their due date)

SUBMISSIONS may be nbgrader's course folder or its submitted/ folder
(submitted/<student>/<assignment>/*.ipynb), a flat folder of <student>.ipynb, or an LMS zip
(Canvas, Moodle or a zipped folder of either layout). Student files are only read.

Each submission's code runs in its own sandboxed process tree (bubblewrap if it works here:
no network, no repository, no other submissions, course_lib's reference answers replaced by
tripwires; its own PID namespace, /tmp, uid and pipes, so nothing reaches the next student). The assignment's own test cells, hidden tests included, run in the grader's
process with the real checks and references; they reach the learner's functions only
through the sandbox, which sends back data. Work runs in parallel on the local cores, or
on Dask with --executor dask [--scheduler tcp://host:8786].
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    grade = sub.add_parser(
        "grade",
        help="grade all submissions of an assignment",
        description=_GRADE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    grade.add_argument(
        "assignment", help="assignment name, e.g. ps01 (needs autograder/specs/ps01.py)"
    )
    grade.add_argument("submissions", type=Path, help="folder or .zip of submissions")
    grade.add_argument("--out", type=Path, required=True, help="output folder (created)")
    grade.add_argument(
        "--course-root",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="course folder holding solutions/ and exercises/ (default: this repository)",
    )
    grade.add_argument("--jobs", type=int, default=0, help="parallel submissions (default: cores)")
    grade.add_argument("--executor", choices=("local", "dask"), default="local")
    grade.add_argument("--scheduler", help="address of a Dask scheduler (implies --executor dask)")
    d = Limits()
    limits = grade.add_argument_group("limits per submission (defaults suit any honest solution)")
    limits.add_argument("--timeout", type=float, default=d.wall_seconds, help="wall seconds")
    limits.add_argument("--cpu-time", type=int, default=d.cpu_seconds, help="CPU seconds")
    limits.add_argument("--memory", type=int, default=d.memory_mb, help="MB of address space")
    limits.add_argument(
        "--part-timeout", type=float, default=d.part_seconds, help="seconds per cell / graded part"
    )
    limits.add_argument("--max-processes", type=int, default=d.processes, help="processes+threads")
    grade.add_argument(
        "--sandbox",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="auto: bubblewrap when it works, else rlimits only (logged loudly); "
        "bwrap: refuse to grade without it",
    )
    grade.add_argument(
        "--student-pattern",
        help="regex with a (?P<student>...) group applied to paths inside the submissions",
    )
    grade.add_argument("--no-progress", action="store_true", help="no progress bar")
    grade.add_argument(
        "--student",
        help="grade only this student (its id as in grades.csv); the others' earlier results "
        "in --out are kept. Without it a re-run grades only new or changed notebooks",
    )
    grade.add_argument(
        "--due",
        help="due date, ISO (2025-03-01T12:00+01:00; no zone: UTC), overriding the one stored "
        "in the course's nbgrader gradebook (`nbgrader db assignment add A --duedate=...`); "
        "time from nbgrader's timestamp.txt next to the notebook, else the file time (logged "
        "as a fallback)",
    )
    grade.add_argument(
        "--late-penalty",
        default="none",
        help="with a due date, nbgrader's semantics: none | zero | per-hour:R[:CAP] (R points "
        "per hour late, rounded hours, at most CAP); a row 'late penalty' in grades.csv",
    )
    grade.add_argument(
        "--db",
        type=Path,
        help="nbgrader gradebook holding the due date (default: the db_url of --course-root's "
        "nbgrader_config.py, <course-root>/gradebook.db); only read",
    )
    export = sub.add_parser(
        "export",
        help="write an LMS grade-import CSV from a graded out dir",
        description=export_doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("out", type=Path, help="the --out folder of `grade`")
    export.add_argument("--format", choices=("canvas", "moodle"), required=True)
    export.add_argument(
        "--points-possible", type=float, help="rescale totals to N points (default: raw points)"
    )
    export.add_argument("--assignment-id", default="", help="Canvas assignment id, for its column")
    export.add_argument(
        "--course",
        type=Path,
        help="nbgrader course: totals from its gradebook (written answers graded in "
        "formgrader included), as `nbgrader export` computes them",
    )
    export.add_argument("--db", type=Path, help="gradebook file (default: the course's db_url)")
    book = sub.add_parser(
        "gradebook",
        help="record a graded out dir in nbgrader's gradebook, for formgrader and nbgrader export",
        description=gradebook_doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    book.add_argument("out", type=Path, help="the --out folder of `grade`")
    book.add_argument(
        "--course", type=Path, required=True, help="nbgrader course root (its nbgrader_config.py)"
    )
    book.add_argument("--db", type=Path, help="gradebook file (default: <course>/gradebook.db)")
    book.add_argument(
        "--submissions", type=Path, help="what was graded (default: the path in grading.log)"
    )
    book.add_argument("--student-pattern", help="as given to `grade`, if it was")
    similar = sub.add_parser(
        "similarity",
        help="pairwise similarity of the learners' code, for review (scores unchanged)",
        description=similarity_doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    similar.add_argument("assignment", help="assignment name, e.g. ps01")
    similar.add_argument("submissions", type=Path, help="folder or .zip of submissions")
    similar.add_argument("--out", type=Path, required=True, help="output folder (created)")
    similar.add_argument("--course-root", type=Path, default=Path(__file__).resolve().parent.parent)
    similar.add_argument("--student-pattern", help="as for grade")
    similar.add_argument("--top", type=int, default=20, help="pairs shown side by side")
    report = sub.add_parser(
        "report",
        help="class report (report.html, scores.svg) from a graded out dir's grades.csv",
        description=report_doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("out", type=Path, help="the --out folder of `grade`")
    args = parser.parse_args(argv)
    command = {
        "gradebook": _gradebook,
        "report": _report,
        "similarity": _similarity,
        "export": _export,
        "grade": _grade,
    }[args.command]
    try:
        return command(args)
    except (OSError, ValueError, RuntimeError, SandboxUnavailable) as exc:
        # A bad folder, file, option or database: say what, never a traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _report(args: argparse.Namespace) -> int:
    try:
        print(f"wrote {write_report(args.out)}")
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{args.out} is not a graded out dir ({exc!r})") from exc
    return 0


def _similarity(args: argparse.Namespace) -> int:
    found = check_class(
        args.assignment, args.submissions, args.out, args.course_root,
        args.student_pattern, args.top,
    )  # fmt: skip
    if found.pairs:
        p = found.pairs[0]
        print(f"closest pair: {p.a} and {p.b} ({p.score:.0%})")
    print(f"wrote {args.out / 'similarity.html'} and {args.out / 'similarity.csv'}")
    return 0


def _export(args: argparse.Namespace) -> int:
    path = write_export(
        args.out, args.format, args.points_possible, args.assignment_id, args.course, args.db
    )
    print(f"wrote {path}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    limits_ = Limits(
        wall_seconds=args.timeout,
        cpu_seconds=args.cpu_time,
        memory_mb=args.memory,
        part_seconds=args.part_timeout,
        processes=args.max_processes,
    )
    batch = Batch(
        assignment=args.assignment,
        submissions=args.submissions,
        out=args.out,
        course_root=args.course_root,
        options=Options(limits=limits_, sandbox=args.sandbox),
        jobs=args.jobs,
        executor="dask" if args.scheduler else args.executor,
        scheduler=args.scheduler,
        student_pattern=args.student_pattern,
        progress=not args.no_progress,
        student=args.student,
    )
    late, source = resolve(args.due, args.late_penalty, args.course_root, args.assignment, args.db)
    print(source)
    return run_batch(dataclasses.replace(batch, late=late))


def _gradebook(args: argparse.Namespace) -> int:
    from autograder.gradebook import record

    done = record(args.out, args.course, args.db, args.submissions, args.student_pattern)
    print(f"recorded {len(done.students)} students of {done.assignment} in {done.db_url}")
    print(f"  autograded notebooks: {len(done.notebooks)} in {args.course / 'autograded'}")
    if done.missing:
        print(f"  no readable notebook (scores only): {', '.join(done.missing)}")
    print(f"  grades waiting for a manual grade in formgrader: {done.to_grade}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
