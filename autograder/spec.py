"""An assignment prepared for grading, and its spec (trusted side only).

The tests are the assignment's own: the test cells of the nbgrader SOURCE notebook, hidden
tests included, run in the grader's process (autograder.verify). A spec,
`autograder/specs/<assignment>.py`, adds what the notebook cannot say: which course_lib
modules or functions are the reference answers, kept out of the learner's sandbox
(`hidden_references`), and known-wrong variants the feedback can name (`misconceptions`,
autograder.misconception). Specs are never copied into the sandbox.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import importlib
import re
from dataclasses import dataclass
from pathlib import Path

from autograder.misconception import Misconception
from autograder.notebook import (
    MANUAL,
    SETUP,
    SOLUTION,
    TEST,
    SourceCell,
    assignment_cells,
    parse_notebook,
)

SOURCE_DIR, RELEASE_DIR = "solutions", "exercises"  # nbgrader source / release folders
_HIDDEN_BEGIN, _HIDDEN_END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"  # nbgrader's markers


@dataclass(frozen=True)
class AssignmentSpec:
    """What the grader must know beyond the notebook."""

    name: str
    notebook: str  # file name inside solutions/<name>/ and exercises/<name>/
    hidden_references: tuple[str, ...] = ()  # course_lib modules/attributes kept from learners
    misconceptions: tuple[Misconception, ...] = ()  # known-wrong variants, named in feedback


@dataclass(frozen=True)
class Bundle:
    """The trusted files of an assignment, as bytes, so a remote worker needs no repository."""

    name: str
    notebook: str
    source: bytes
    release: bytes
    data_files: tuple[tuple[str, bytes], ...] = ()

    @property
    def digest(self) -> str:
        h = hashlib.sha256(self.name.encode() + self.source + self.release)
        for name, data in self.data_files:
            h.update(name.encode() + data)
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class TestCell:
    """One autograded test cell of the source: its code, points, and hidden-test lines."""

    __test__ = False  # not a pytest test class

    grade_id: str
    points: float
    source: str
    hidden_lines: frozenset[int]  # 1-based lines between nbgrader's hidden-test markers
    names: frozenset[str]  # learner names it uses (functions, classes, values)


@dataclass
class Prepared:
    """An assignment ready to grade against."""

    spec: AssignmentSpec
    bundle: Bundle
    cells: list[SourceCell]
    tests: list[TestCell]

    @property
    def setup(self) -> list[SourceCell]:
        return [c for c in self.cells if c.role == SETUP]

    @property
    def manual(self) -> list[SourceCell]:
        return [c for c in self.cells if c.role == MANUAL]


def load_spec(name: str) -> AssignmentSpec:
    """`autograder.specs.<name>.SPEC`, with a clear error when there is none."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise ValueError(f"not an assignment name: {name!r}")
    try:
        module = importlib.import_module(f"autograder.specs.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"autograder.specs.{name}":
            raise
        raise ValueError(
            f"no grading spec for {name!r}: write autograder/specs/{name}.py"
        ) from None
    return module.SPEC


def read_bundle(name: str, course_root: Path) -> Bundle:
    """Read an assignment's source and release notebooks (and data files) from the course."""
    spec = load_spec(name)
    source = course_root / SOURCE_DIR / name / spec.notebook
    release = course_root / RELEASE_DIR / name / spec.notebook
    for path in (source, release):
        if not path.is_file():
            raise ValueError(f"{path} does not exist")
    data = tuple(
        (p.name, p.read_bytes())
        for p in sorted(release.parent.iterdir())
        if p.is_file() and p.suffix != ".ipynb" and not p.name.startswith(".")
    )
    return Bundle(name, spec.notebook, source.read_bytes(), release.read_bytes(), data)


def prepare(bundle: Bundle) -> Prepared:
    """The assignment's cells and roles, its test cells with their hidden lines."""
    spec = load_spec(bundle.name)
    cells = assignment_cells(
        parse_notebook(bundle.source, 2**30), parse_notebook(bundle.release, 2**30)
    )
    trusted = set(dir(builtins))
    for cell in cells:
        if cell.role in (SETUP, TEST) and cell.cell_type == "code":
            trusted |= _bound_names(cell.source)
    learner = set().union(*(_bound_names(c.source) for c in cells if c.role == SOLUTION))
    tests = [
        TestCell(
            c.grade_id,
            c.points,
            c.source,
            _hidden_lines(c.source),
            frozenset(_used_names(c.source) & (learner - trusted)),
        )
        for c in cells
        if c.role == TEST
    ]
    if not tests:
        raise ValueError(f"{bundle.name} has no autograded test cell")
    return Prepared(spec, bundle, cells, tests)


def _hidden_lines(source: str) -> frozenset[int]:
    hidden, inside = set(), False
    for number, line in enumerate(source.splitlines(), start=1):
        if _HIDDEN_BEGIN in line:
            inside = True
        if inside:
            hidden.add(number)
        if _HIDDEN_END in line:
            inside = False
    return frozenset(hidden)


def _bound_names(source: str) -> set[str]:
    """Top-level names a cell defines (functions, classes, assignments, imports)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        else:
            names |= {
                n.id
                for n in ast.walk(node)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            }
    return names


def _used_names(source: str) -> set[str]:
    try:
        return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
    except SyntaxError:
        return set()
