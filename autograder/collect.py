"""Find the submissions: nbgrader's `submitted/<student>/<assignment>/`, a flat folder of
`<student>.ipynb`, or an LMS zip (Canvas `name_123_456_file.ipynb`, Moodle
`Name_123_assignsubmission_file_/file.ipynb`, or either layout zipped).

Files are only read, never opened for writing; zips are read in memory with size caps (a zip
bomb or a `../` entry name cannot write anything). A student whose notebook is missing,
ambiguous or unreadable still gets a `Submission`, with `problem` saying why.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

_MOODLE = re.compile(r"^(?P<student>.+?)_\d+_assignsubmission_file_?$")
_CANVAS = re.compile(r"^(?P<student>[^_]+?)(?:_late)?_\d+_\d+_.+\.ipynb$")
_SKIP = ("__MACOSX", ".ipynb_checkpoints")
MAX_ZIP_ENTRIES = 20_000


@dataclass(frozen=True)
class Submission:
    """One student's notebook as bytes (or the reason there is none)."""

    student: str
    origin: str  # where it came from, for the log
    data: bytes | None
    problem: str = ""
    review: tuple[str, ...] = ()  # for the instructor: e.g. a path that names someone else

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
                yield student_id(student_dir.name), origin, None, f"no notebook in {origin}"
            for p in notebooks:
                yield student_id(student_dir.name), str(p), *_read(p, max_bytes)
        return
    for p in sorted(root.rglob("*.ipynb")):
        rel = PurePosixPath(*p.relative_to(root).parts)
        if _skipped(rel.parts):
            continue
        student, review = _owner(rel, assignment, pattern)
        yield student, str(p), *_read(p, max_bytes), review


def _from_zip(path: Path, assignment: str, max_bytes: int, pattern: str | None):
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            raise ValueError(f"{path} has more than {MAX_ZIP_ENTRIES} entries")
        for info in infos:
            parts = info.filename.replace("\\", "/").split("/")
            name = PurePosixPath(*[p for p in parts if p not in ("", ".", "..")] or ["_"])
            if info.is_dir() or name.suffix != ".ipynb" or _skipped(name.parts):
                continue
            origin = f"{path.name}:{info.filename}"
            student, review = _owner(name, assignment, pattern)
            if info.flag_bits & 0x1:
                yield student, origin, None, "the zip entry is encrypted", review
            elif info.file_size > max_bytes:
                too_big = f"the file is larger than {max_bytes / 2**20:g} MB"
                yield student, origin, None, too_big, review
            else:
                try:
                    with zf.open(info) as f:
                        data = f.read(max_bytes + 1)
                except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                    yield student, origin, None, f"the zip entry cannot be read ({exc})", review
                    continue
                if len(data) > max_bytes:
                    too_big = f"the file is larger than {max_bytes / 2**20:g} MB"
                    yield student, origin, None, too_big, review
                else:
                    yield student, origin, data, "", review


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
    for student, origin, data, problem, *review in found:
        by_student.setdefault(student, []).append((origin, data, problem, *review))
    result = []
    for student, entries in sorted(by_student.items()):
        notes = tuple(e[3] for e in entries if len(e) > 3 and e[3])
        if len(entries) > 1:  # the student's own notebook, under its released name
            named = [e for e in entries if e[0].replace("\\", "/").endswith("/" + notebook)]
            own = [e for e in named if len(e) < 4 or not e[3]]
            entries = own if len(own) == 1 else named if len(named) == 1 else entries
        if len(entries) > 1:
            origins = ", ".join(e[0] for e in entries)
            problem = f"several notebooks, none named {notebook}"
            result.append(Submission(student, origins, None, problem, notes))
        else:
            origin, data, problem = entries[0][:3]
            result.append(Submission(student, origin, data, problem, notes))
    return result
