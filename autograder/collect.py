"""Find the submissions: nbgrader's `submitted/<student>/<assignment>/`, a flat folder of
`<student>.ipynb`, or an LMS zip (Canvas `name_123_456_file.ipynb`, Moodle
`Name_123_assignsubmission_file_/file.ipynb`, or either layout zipped).

Files are only read, never opened for writing; zips are read in memory with size caps (a zip
bomb or a `../` entry name cannot write anything). A student whose notebook is missing,
ambiguous or unreadable still gets a `Submission`, with `problem` saying why.

What the LMS says about who submitted is kept for grade export (autograder.export): Canvas's
bulk download names a file `<sortable name>[_late]_<Canvas user ID>_<attachment ID>_<file>`,
Moodle's names a folder `<Full name>_<participant ID>_assignsubmission_file_` (the number
is the "Participant N" identifier of Moodle's offline grading worksheet). For the late policy
(autograder.late) each submission also carries nbgrader's `timestamp.txt` found next to the
notebook (in the same folder, or zip folder) and the file's own time (mtime, or the zip
entry's date) as the fallback.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

_MOODLE = re.compile(r"^(?P<student>.+?)_(?P<id>\d+)_assignsubmission_file_?$")
_CANVAS = re.compile(r"^(?P<student>[^_]+?)(?P<late>(?i:_late))?_(?P<id>\d+)_\d+_.+\.ipynb$")
TIMESTAMP = "timestamp.txt"  # nbgrader's submission time, next to the notebook
_SKIP = ("__MACOSX", ".ipynb_checkpoints")
MAX_ZIP_ENTRIES = 20_000


@dataclass(frozen=True)
class Lms:
    """The identity an LMS download gives a submission."""

    system: str  # "canvas" or "moodle"
    user_id: str  # Canvas user ID, or Moodle participant ID
    name: str  # the name as the LMS wrote it (Canvas: sortable name without spaces)
    late: bool = False  # Canvas marks late submissions in the file name


@dataclass(frozen=True)
class Submission:
    """One student's notebook as bytes (or the reason there is none)."""

    student: str
    origin: str  # where it came from, for the log
    data: bytes | None
    problem: str = ""
    review: tuple[str, ...] = ()  # for the instructor: e.g. a path that names someone else
    lms: Lms | None = None  # who the LMS says submitted it (None: not an LMS layout)
    timestamp: str = ""  # text of nbgrader's timestamp.txt next to the notebook, if any
    file_time: datetime | None = None  # mtime / zip entry date (UTC, naive): the fallback

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest() if self.data is not None else ""


def collect(
    path: Path, assignment: str, notebook: str, max_bytes: int, pattern: str | None = None
) -> list[Submission]:
    """Every student's submission under `path` (folder or .zip), sorted by student."""
    if path.is_file() and path.suffix.lower() == ".zip":
        found = _from_zip(path, assignment, max_bytes, pattern)
    elif path.is_dir():
        found = _from_folder(path, assignment, max_bytes, pattern)
    else:
        raise ValueError(f"{path} is neither a folder nor a .zip file")
    return _one_per_student(found, notebook)


def student_id(raw: str) -> str:
    """A safe student id (file names of the feedback): letters, digits, `._@-` only."""
    cleaned = re.sub(r"[^A-Za-z0-9._@-]+", "_", raw.strip()).strip("._") or "unnamed"
    return cleaned[:100]


def _from_folder(root: Path, assignment: str, max_bytes: int, pattern: str | None):
    base = root / "submitted" if (root / "submitted").is_dir() else root
    nbgrader = [d for d in sorted(base.iterdir()) if d.is_dir() and (d / assignment).is_dir()]
    if nbgrader:
        for student_dir in nbgrader:
            folder = student_dir / assignment
            notebooks = sorted(
                p for p in folder.rglob("*.ipynb") if not _skipped(p.relative_to(folder).parts)
            )
            if not notebooks:
                origin = str(folder)
                missing = f"no notebook in {origin}"
                yield student_id(student_dir.name), origin, None, missing, "", (None, "", None)
            for p in notebooks:
                yield student_id(student_dir.name), str(p), *_read(p, max_bytes), "", _times(p)
        return
    for p in sorted(root.rglob("*.ipynb")):
        rel = PurePosixPath(*p.relative_to(root).parts)
        if _skipped(rel.parts):
            continue
        student, review = _owner(rel, assignment, pattern)
        meta = (_lms(rel), *_times(p)[1:])
        yield student, str(p), *_read(p, max_bytes), review, meta


def _times(p: Path) -> tuple[None, str, datetime | None]:
    """(no LMS, timestamp.txt text next to `p`, mtime of `p` in UTC)."""
    stamp = p.parent / TIMESTAMP
    try:
        text = stamp.read_text(errors="replace").strip()[:200] if stamp.is_file() else ""
        mtime = datetime.fromtimestamp(p.stat().st_mtime, UTC).replace(tzinfo=None)
    except OSError:
        return None, "", None
    return None, text, mtime


def _from_zip(path: Path, assignment: str, max_bytes: int, pattern: str | None):
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            raise ValueError(f"{path} has more than {MAX_ZIP_ENTRIES} entries")
        stamps = {}  # folder -> timestamp.txt text
        for info in infos:
            parts = info.filename.replace("\\", "/").split("/")
            if parts[-1] == TIMESTAMP and 0 < info.file_size <= 200:
                with contextlib.suppress(
                    zipfile.BadZipFile, OSError, EOFError, NotImplementedError
                ):
                    stamps[tuple(parts[:-1])] = zf.read(info).decode(errors="replace").strip()
        for info in infos:
            parts = info.filename.replace("\\", "/").split("/")
            name = PurePosixPath(*[p for p in parts if p not in ("", ".", "..")] or ["_"])
            if info.is_dir() or name.suffix != ".ipynb" or _skipped(name.parts):
                continue
            origin = f"{path.name}:{info.filename}"
            student, review = _owner(name, assignment, pattern)
            meta = (_lms(name), stamps.get(tuple(parts[:-1]), ""), datetime(*info.date_time))
            if info.flag_bits & 0x1:
                yield student, origin, None, "the zip entry is encrypted", review, meta
            elif info.file_size > max_bytes:
                too_big = f"the file is larger than {max_bytes / 2**20:g} MB"
                yield student, origin, None, too_big, review, meta
            else:
                try:
                    with zf.open(info) as f:
                        data = f.read(max_bytes + 1)
                except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                    why = f"the zip entry cannot be read ({exc})"
                    yield student, origin, None, why, review, meta
                    continue
                if len(data) > max_bytes:
                    too_big = f"the file is larger than {max_bytes / 2**20:g} MB"
                    yield student, origin, None, too_big, review, meta
                else:
                    yield student, origin, data, "", review, meta


def _lms(rel: PurePosixPath) -> Lms | None:
    """The LMS identity in a path: a Moodle owner folder, else a Canvas file name."""
    for part in rel.parts[:-1]:
        if match := _MOODLE.match(part):
            return Lms("moodle", match.group("id"), match.group("student"))
    if match := _CANVAS.match(rel.parts[-1]):
        return Lms("canvas", match.group("id"), match.group("student"), bool(match.group("late")))
    return None


def _owner(rel: PurePosixPath, assignment: str, pattern: str | None) -> tuple[str, str]:
    """(student id, note for the instructor) of a notebook at relative path `rel`.

    An LMS owner folder (Moodle's `<Name>_<id>_assignsubmission_file_`) decides: the LMS
    says who uploaded it. A path inside it that names another student (`<Other>/<assignment>/`)
    is still the owner's, with a note; it is never attributed to the other student.
    """
    if pattern and (m := re.search(pattern, str(rel))) and m.groupdict().get("student"):
        return student_id(m.group("student")), ""  # the instructor's own rule
    parts, owner = rel.parts, None
    for part in parts[:-1]:
        match = _MOODLE.match(part)
        if match:
            owner = student_id(match.group("student"))
            break
    named = _student_of(rel, assignment, pattern)
    if owner is None:
        return student_id(named), ""
    inner = _nbgrader_student(parts, assignment)
    if inner is not None and student_id(inner) != owner:
        return owner, (
            f"{rel} was uploaded by {owner} but its path names {student_id(inner)}: "
            f"graded as {owner}'s, check who wrote it"
        )
    return owner, ""


def _nbgrader_student(parts: tuple[str, ...], assignment: str) -> str | None:
    """X of a `…/X/<assignment>/<file>` path, else None."""
    if assignment in parts[:-1]:
        i = parts.index(assignment)
        if i > 0:
            return parts[i - 1]
    return None


def _student_of(rel: PurePosixPath, assignment: str, pattern: str | None) -> str:
    """The student a notebook at relative path `rel` belongs to (no LMS owner folder)."""
    text = str(rel)
    if pattern:
        match = re.search(pattern, text)
        if match and match.groupdict().get("student"):
            return match.group("student")
    parts = rel.parts
    inner = _nbgrader_student(parts, assignment)
    if inner is not None:  # <student>/<assignment>/<file> (nbgrader, zipped or not)
        return inner
    match = _CANVAS.match(parts[-1])
    if match:
        return match.group("student")
    return parts[0] if len(parts) > 1 else rel.stem


def _read(path: Path, max_bytes: int) -> tuple[bytes | None, str]:
    try:
        if path.stat().st_size > max_bytes:
            return None, f"the file is larger than {max_bytes / 2**20:g} MB"
        with open(path, "rb") as f:
            return f.read(max_bytes + 1), ""
    except OSError as exc:
        return None, f"the file cannot be read ({exc.strerror})"


def _skipped(parts: tuple[str, ...]) -> bool:
    return any(p in _SKIP or p.startswith(".") for p in parts)


def _one_per_student(found, notebook: str) -> list[Submission]:
    by_student: dict[str, list[tuple]] = {}
    for student, origin, data, problem, review, meta in found:
        by_student.setdefault(student, []).append((origin, data, problem, review, meta))
    result = []
    for student, entries in sorted(by_student.items()):
        notes = tuple(e[3] for e in entries if e[3])
        if len(entries) > 1:  # the student's own notebook, under its released name
            named = [e for e in entries if e[0].replace("\\", "/").endswith("/" + notebook)]
            own = [e for e in named if not e[3]]
            entries = own if len(own) == 1 else named if len(named) == 1 else entries
        if len(entries) > 1:
            origins = ", ".join(e[0] for e in entries)
            problem = f"several notebooks, none named {notebook}"
            lms = {e[4][0] for e in entries}
            ident = lms.pop() if len(lms) == 1 else None
            result.append(Submission(student, origins, None, problem, notes, ident))
        else:
            origin, data, problem, _, (lms, stamp, mtime) = entries[0]
            result.append(Submission(student, origin, data, problem, notes, lms, stamp, mtime))
    return result
