"""Re-grading: keep each student's result in `<out>/.results/<student>.json`, keyed by what
decides it, so a re-run grades only new or changed submissions and `--student NAME` grades one.

The key is the SHA-256 of the submitted notebook (collect.Submission.sha256), its collection
problem and review notes, the assignment bundle's digest (source, release and data files),
the limits and sandbox mode, and the grader's own code (autograder and course_lib, whose
references the tests compare with): if any changes, the student is graded again. Every output
(grades.csv, feedback/, students.csv) is then written from the stored results exactly as from
fresh ones, so it is byte-identical to a full run; grading.log says which were reused.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

from autograder.collect import Submission
from autograder.context import Options
from autograder.evaluate import Outcome
from autograder.grade import StudentResult
from autograder.spec import Bundle

STORE = ".results"


def key(sub: Submission, bundle: Bundle, options: Options) -> str:
    what = [sub.sha256, sub.problem, list(sub.review), bundle.digest, repr(options.limits)]
    what += [options.sandbox, grader_digest()]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()


@functools.cache
def grader_digest(roots: tuple[Path, ...] = ()) -> str:
    """SHA-256 of the grader's Python sources: a fixed grader bug re-grades everyone."""
    import autograder
    from autograder.view import course_lib_dir

    roots = roots or (Path(autograder.__file__).parent, course_lib_dir())
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def load(out: Path, student: str) -> tuple[str, StudentResult] | None:
    """(key, result) stored for `student`, or None."""
    path = out / STORE / f"{student}.json"
    try:
        data = json.loads(path.read_text())
        result = data["result"]
        result["outcomes"] = [Outcome(**o) for o in result["outcomes"]]
        return data["key"], StudentResult(**result)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(out: Path, key_: str, result: StudentResult) -> None:
    if result.internal_error:  # a grader bug: grade again next time
        return
    (out / STORE).mkdir(exist_ok=True)
    data = {"key": key_, "result": dataclasses.asdict(result)}
    (out / STORE / f"{result.student}.json").write_text(json.dumps(data, indent=1))


def stored(out: Path) -> list[str]:
    """Students with a stored result."""
    return sorted(p.stem for p in (out / STORE).glob("*.json"))


def forget(out: Path, student: str) -> None:
    (out / STORE / f"{student}.json").unlink(missing_ok=True)
    (out / "feedback" / f"{student}.html").unlink(missing_ok=True)
