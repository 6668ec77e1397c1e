"""Late policy with nbgrader's semantics (nbgrader/preprocessors/latesubmissions.py).

The due date is the one stored in nbgrader's gradebook (`Assignment.duedate`, as
`nbgrader db assignment add ps01 --duedate=...` or formgrader's "Manage assignments" store
it), in the database the course's nbgrader_config.py names (`CourseDirectory.db_url`, by
default `<course>/gradebook.db`): nbgrader 0.9 has no per-assignment due date in its
configuration, so the gradebook is where a course keeps it. `--due` overrides it; the run
says which was used (grading.log, stdout). A student's extension stored there
(`SubmittedAssignment.extension`, set with `Gradebook.update_or_create_submission(assignment,
student, extension=timedelta(...))`) moves that student's due date, with `--due` too, as
nbgrader's `SubmittedAssignment.duedate` does.

The submission time is nbgrader's `timestamp.txt` next to the notebook (parsed by nbgrader's
own `parse_utc`: "2025-03-01 15:30:00.000000 Europe/Paris", as nbgrader writes it, or an ISO
time; beware that parse_utc reads a bare number after a space, "… +0100", as SECONDS east of
UTC, and we keep its reading), else, stated as a
fallback in the log and the feedback, the file's time (mtime, or the zip entry's date, taken
as UTC). Seconds late = max(0, time - due), as `SubmittedAssignment.total_seconds_late`.

Penalties (`--late-penalty`), applied once to the whole submission like nbgrader's per-notebook
penalty on a one-notebook assignment:
  none            no penalty (nbgrader's default LateSubmissionPlugin)
  zero            the whole score (LateSubmissionPlugin.penalty_method = 'zero')
  per-hour:R[:C]  R points per hour late, hours rounded as `round(hours, 0)` (the plugin
                  of nbgrader's docs, plugins/late-plugin.rst), at most C points
then clamped to [0, score] as AssignLatePenalties._check_late_penalty does. The score is the
autograded score: written answers graded later by hand are not in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from nbgrader.utils import parse_utc

from autograder.collect import TIMESTAMP, Submission


@dataclass(frozen=True)
class LatePolicy:
    due: datetime  # naive UTC, as nbgrader stores it
    method: str = "none"  # "none", "zero" or "per-hour"
    per_hour: float = 0.0
    cap: float | None = None
    source: str = "--due"  # where the due date came from
    extensions: dict[str, timedelta] = field(default_factory=dict)  # student -> extension

    def describe(self) -> str:
        if self.method == "per-hour":
            cap = f", at most {self.cap:g} points" if self.cap is not None else ""
            return f"{self.per_hour:g} points per hour late (hours rounded){cap}"
        return {"zero": "a late submission scores 0", "none": "no penalty"}[self.method]


@dataclass(frozen=True)
class Lateness:
    submitted: datetime | None  # naive UTC
    source: str  # "timestamp.txt", "file time (fallback)" or why there is none
    seconds_late: float
    penalty: float  # points taken off (>= 0)
    extension: timedelta = timedelta(0)

    def describe(self) -> str:
        if self.submitted is None:
            return f"submission time unknown ({self.source}): not treated as late"
        when = f"submitted {self.submitted:%Y-%m-%d %H:%M:%S} UTC ({self.source})"
        if self.extension:
            when += f", extension {self.extension.total_seconds() / 3600:g} h"
        if self.seconds_late <= 0:
            return f"{when}: on time"
        return f"{when}: {self.seconds_late / 3600:.2f} h late, penalty {self.penalty:g} points"


def policy(
    due: str | datetime,
    penalty: str = "none",
    source: str = "--due",
    extensions: dict[str, timedelta] | None = None,
) -> LatePolicy:
    """A policy from a due date (--due's text, or nbgrader's stored one) and --late-penalty."""
    method, *args = penalty.split(":")
    when, extensions = parse_utc(due), dict(extensions or {})
    if method in ("none", "zero") and not args:
        return LatePolicy(when, method, source=source, extensions=extensions)
    if method == "per-hour" and 1 <= len(args) <= 2:
        cap = float(args[1]) if len(args) == 2 else None
        return LatePolicy(when, method, float(args[0]), cap, source, extensions)
    raise ValueError(f"--late-penalty {penalty!r}: use none, zero or per-hour:R[:CAP]")


def stored_due(
    course: Path, assignment: str, db: Path | None = None
) -> tuple[datetime | None, str, dict[str, timedelta]]:
    """(due date, where it was read, extensions by student) from nbgrader's gradebook of
    `course`; (None, why, extensions) if it stores no due date.

    The database is the course's nbgrader_config.py `CourseDirectory.db_url` (or `db`). A
    SQLite gradebook that does not exist is not created: no gradebook, no stored due date.
    """
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.coursedir import CourseDirectory
    from sqlalchemy.exc import SQLAlchemyError

    from autograder.gradebook import course_config

    coursedir = CourseDirectory(config=course_config(course, db))
    url = coursedir.db_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None, f"no nbgrader gradebook at {url}", {}
    try:
        with Gradebook(url, coursedir.course_id) as gb:
            found = gb.find_assignment(assignment)
            due = found.duedate
            extensions = {s.student_id: s.extension for s in found.submissions if s.extension}
    except MissingEntry:
        return None, f"{assignment} is not in the nbgrader gradebook {url}", {}
    except SQLAlchemyError as exc:
        return None, f"the nbgrader gradebook {url} cannot be read ({type(exc).__name__})", {}
    if due is None:
        return None, f"{assignment} has no due date in the nbgrader gradebook {url}", extensions
    return due, f"nbgrader gradebook {url} (assignment {assignment})", extensions


def resolve(
    due: str | None, penalty: str, course: Path, assignment: str, db: Path | None = None
) -> tuple[LatePolicy | None, str]:
    """The run's policy and a line saying where its due date came from: --due, else the one
    stored in the course's nbgrader gradebook, else none (a penalty without one is an error).
    Extensions stored in the gradebook apply to either due date."""
    when, source, extensions = stored_due(course, assignment, db)
    given = f"; extensions from the gradebook for {len(extensions)} students" if extensions else ""
    if due:
        rule = policy(due, penalty, extensions=extensions)
        return rule, f"due date from --due (overrides any stored one){given}"
    if when is None:
        if penalty != "none":
            raise ValueError(f"--late-penalty {penalty} needs a due date: --due, or {source}")
        return None, f"no late policy: no --due and {source}"
    return policy(when, penalty, source, extensions), f"due date from {source}{given}"


def submission_time(sub: Submission) -> tuple[datetime | None, str]:
    """(UTC time, where it came from): timestamp.txt, else the file's time."""
    if sub.timestamp:
        try:
            return parse_utc(sub.timestamp), TIMESTAMP
        except (ValueError, OverflowError):
            pass
    if sub.file_time is not None:
        why = "unreadable timestamp.txt" if sub.timestamp else "no timestamp.txt"
        return sub.file_time, f"file time, a fallback: {why}"
    return None, "no timestamp.txt and no file time"


def lateness(rule: LatePolicy, sub: Submission, score: float) -> Lateness:
    """How late `sub` is and its penalty on an autograded `score`."""
    when, source = submission_time(sub)
    if when is None:
        return Lateness(None, source, 0.0, 0.0)
    extension = rule.extensions.get(sub.student, timedelta(0))
    seconds = max(0.0, (when - rule.due - extension).total_seconds())
    penalty = 0.0
    if seconds > 0 and rule.method == "zero":
        penalty = score
    elif seconds > 0 and rule.method == "per-hour":
        penalty = rule.per_hour * round(seconds / 3600, 0)
        if rule.cap is not None:
            penalty = min(penalty, rule.cap)
    return Lateness(when, source, seconds, min(max(penalty, 0.0), max(score, 0.0)), extension)
