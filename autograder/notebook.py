"""Reading a submitted notebook without trusting it, and checking it against the assignment.

The submission is parsed as plain JSON (never executed, never opened with a kernel), checked
for the structure we use, and compared with the assignment's source and release notebooks by
nbgrader `grade_id`: cells whose nbgrader checksum (nbgrader.utils.compute_checksum, same
bytes hashed) differs from the release are modified; missing test cells are deleted tests.
Every parse is bounded before it starts: the file's size, its number of JSON elements, and
the code per cell and per notebook (the IPython transform and the AST scan run here). The
learner's script is built from the learner's own cells only; locked set-up cells come
from the SOURCE notebook, test cells are never taken from the submission.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

SETUP, TEST, SOLUTION, MANUAL, TEXT = "setup", "test", "solution", "manual", "text"
MAX_JSON_TOKENS = 2_000_000  # JSON containers and separators: bounds json.loads's memory
MAX_CELL_CODE = 256 * 1024  # characters of code in one cell (parsed in the grader)
MAX_CODE = 1024 * 1024  # characters of code in the whole notebook


_IPYTHON_SYNTAX = re.compile(r"^\s*[%!]|\?\s*$", re.MULTILINE)


class NotebookError(ValueError):
    """The file cannot be graded as a notebook of this assignment; the message says why."""


@dataclass(frozen=True)
class Cell:
    """One cell as read from a notebook file; `nbgrader` is its nbgrader metadata or {}."""

    index: int
    cell_type: str
    source: str
    nbgrader: dict

    @property
    def grade_id(self) -> str | None:
        gid = self.nbgrader.get("grade_id")
        return gid if isinstance(gid, str) else None


@dataclass(frozen=True)
class SourceCell:
    """A cell of the assignment with its role, as the SOURCE notebook defines it."""

    grade_id: str
    role: str  # SETUP, TEST, SOLUTION, MANUAL or TEXT
    cell_type: str
    source: str  # the source notebook's text (with hidden tests, solutions)
    release_source: str  # what learners got
    release_checksum: str
    points: float


@dataclass
class Integrity:
    """How a submission differs from the release, by grade_id."""

    missing: list[str] = field(default_factory=list)  # test, solution or answer cells deleted
    modified_tests: list[str] = field(default_factory=list)
    modified_locked_code: list[str] = field(default_factory=list)
    modified_text: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    foreign_graded: list[str] = field(default_factory=list)  # graded cells of no known id


def parse_notebook(data: bytes, max_bytes: int) -> list[Cell]:
    """The cells of a notebook file, or NotebookError with a reason a person can act on."""
    if len(data) > max_bytes:
        raise NotebookError(f"the file is larger than {max_bytes / 2**20:g} MB")
    if not data.strip():
        raise NotebookError("the file is empty")
    tokens = sum(data.count(c) for c in (b"{", b"[", b",", b":"))
    if tokens > MAX_JSON_TOKENS:
        raise NotebookError(
            f"the file has more than {MAX_JSON_TOKENS} JSON elements (a notebook has far fewer)"
        )
    try:
        nb = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise NotebookError("the file is not UTF-8 text (not a notebook)") from None
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"the file is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise NotebookError(f"the file is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError("the file is JSON but not a Jupyter notebook (no list of cells)")
    if nb.get("nbformat") != 4:
        raise NotebookError(f"notebook format {nb.get('nbformat')!r} is not supported (only 4)")
    cells = [_parse_cell(i, c) for i, c in enumerate(nb["cells"])]
    code = [c for c in cells if c.cell_type == "code"]
    for c in code:
        if len(c.source) > MAX_CELL_CODE:
            raise NotebookError(
                f"cell {c.index + 1} has {len(c.source) // 1024} KB of code, more than the "
                f"{MAX_CELL_CODE // 1024} KB one cell may have"
            )
    if sum(len(c.source) for c in code) > MAX_CODE:
        raise NotebookError(f"the notebook has more than {MAX_CODE // 1024} KB of code")
    return cells


def _parse_cell(index: int, cell) -> Cell:
    where = f"cell {index + 1}"
    if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
        raise NotebookError(f"{where} is malformed (no valid cell_type)")
    source = cell.get("source", "")
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        source = "".join(source)
    if not isinstance(source, str):
        raise NotebookError(f"{where} is malformed (source is not text)")
    metadata = cell.get("metadata", {})
    if not isinstance(metadata, dict):
        raise NotebookError(f"{where} is malformed (metadata is not an object)")
    nbgrader = metadata.get("nbgrader", {})
    return Cell(index, cell["cell_type"], source, nbgrader if isinstance(nbgrader, dict) else {})


def checksum(cell: Cell) -> str | None:
    """nbgrader's `compute_checksum` of the cell; None when its metadata makes that fail."""
    meta = cell.nbgrader
    grade, solution = meta.get("grade", False), meta.get("solution", False)
    locked = False if solution else True if grade else meta.get("locked", False)
    m = hashlib.md5()
    try:
        for text in (cell.source, cell.cell_type, str(grade), str(solution), str(locked)):
            m.update(text.encode("utf-8"))
        m.update(meta["grade_id"].encode("utf-8"))
        if grade:
            m.update(str(float(meta["points"])).encode("utf-8"))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return m.hexdigest()


def assignment_cells(source: list[Cell], release: list[Cell]) -> list[SourceCell]:
    """The graded and locked cells of an assignment, in order, with their roles."""
    released = {c.grade_id: c for c in release if c.grade_id}
    cells = []
    for cell in source:
        gid = cell.grade_id
        if gid is None:
            continue
        if gid not in released:
            raise ValueError(f"cell {gid!r} of the source is not in the release: regenerate it")
        meta = cell.nbgrader
        grade, solution = bool(meta.get("grade")), bool(meta.get("solution"))
        if meta.get("task") or grade and solution and cell.cell_type == "markdown":
            role = MANUAL
        elif grade and (solution or cell.cell_type != "code"):
            raise ValueError(f"cell {gid!r}: only test cells and written answers can be graded")
        elif grade:
            role = TEST
        elif solution:
            role = SOLUTION
        else:
            role = SETUP if cell.cell_type == "code" else TEXT
        release_cell = released[gid]
        cells.append(
            SourceCell(
                gid,
                role,
                cell.cell_type,
                cell.source,
                release_cell.source,
                checksum(release_cell) or "",
                float(meta.get("points", 0) or 0),
            )
        )
    return cells


def is_foreign(cells: list[Cell], assignment: list[SourceCell]) -> bool:
    """True when none of the assignment's solution, test or answer cells is in the notebook."""
    ids = {c.grade_id for c in cells}
    return not any(a.grade_id in ids for a in assignment if a.role in (TEST, SOLUTION, MANUAL))


def check_integrity(cells: list[Cell], assignment: list[SourceCell]) -> Integrity:
    """Compare the submission's cells with the release, by grade_id and nbgrader checksum."""
    report = Integrity()
    by_id: dict[str, list[Cell]] = {}
    for cell in cells:
        if cell.grade_id is not None:
            by_id.setdefault(cell.grade_id, []).append(cell)
    known = {a.grade_id for a in assignment}
    for gid, copies in by_id.items():
        if gid not in known and any(c.nbgrader.get("grade") for c in copies):
            report.foreign_graded.append(gid)
    for a in assignment:
        copies = by_id.get(a.grade_id, [])
        if not copies:
            if a.role in (TEST, SOLUTION, MANUAL):
                report.missing.append(a.grade_id)
            continue
        if len(copies) > 1 and a.role in (TEST, SETUP, MANUAL):
            report.duplicated.append(a.grade_id)
        if a.role in (SOLUTION, MANUAL):
            continue
        if any(checksum(c) != a.release_checksum for c in copies):
            {TEST: report.modified_tests, SETUP: report.modified_locked_code}.get(
                a.role, report.modified_text
            ).append(a.grade_id)
    return report


def learner_script(cells: list[Cell], assignment: list[SourceCell]) -> list[dict]:
    """The code to run, as `{"id", "source"}` cells in the source notebook's order.

    Set-up cells come from the source notebook; the learner's solution cells and any code
    cells the learner added (placed after the known cell they follow) come from the
    submission; test cells and markdown are never run. IPython syntax (magics, `!` shell
    lines) is turned into calls the sandbox's stand-in `get_ipython()` ignores.
    """
    roles = {a.grade_id: a for a in assignment}
    after: dict[str | None, list[Cell]] = {}
    solutions: dict[str, list[Cell]] = {}
    anchor = None
    for cell in cells:
        known = roles.get(cell.grade_id) if cell.grade_id else None
        if known is not None:
            anchor = known.grade_id
            if known.role == SOLUTION and cell.cell_type == "code":
                solutions.setdefault(known.grade_id, []).append(cell)
        elif cell.cell_type == "code":
            after.setdefault(anchor, []).append(cell)
    script = [_code(f"added-{c.index + 1}", c.source) for c in after.get(None, [])]
    for a in assignment:
        if a.role == SETUP:
            script.append({**_code(a.grade_id, a.source), "trusted": True})
        for n, cell in enumerate(solutions.get(a.grade_id, [])):
            script.append(_code(a.grade_id if n == 0 else f"{a.grade_id}#{n + 1}", cell.source))
        script += [_code(f"added-{c.index + 1}", c.source) for c in after.get(a.grade_id, [])]
    return script


def _code(cell_id: str, source: str) -> dict:
    return {"id": cell_id, "source": python_source(source)}


def python_source(source: str) -> str:
    """IPython cell text as plain Python (`%magic` and `!cmd` become get_ipython() calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    if not _IPYTHON_SYNTAX.search(source):  # plain Python: nothing to transform
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # the sandbox reports the SyntaxError with the learner's line
        return source
