"""Synthetic classes for dry runs, tests and the benchmark: correct, wrong and hostile notebooks.

Every submission is the RELEASE notebook with its solution cells edited, as a learner would
hand it in: "correct" puts in the source's solutions; "wrong" leaves some stubs or makes one
function slightly off; "hostile" is a correct-looking notebook that tries a known attack on
plain nbgrader (rebinding the checks, calling the reference, reading the solution notebook,
ending the kernel). Deterministic for a given seed.
"""

from __future__ import annotations

import ast
import copy
import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

from autograder.notebook import parse_notebook
from autograder.spec import RELEASE_DIR, SOURCE_DIR, load_spec
from autograder.view import hidden_objects

Notebook = dict  # the notebook JSON


def course_folder(course_root: Path, dest: Path, assignment: str = "ps01") -> Path:
    """A new nbgrader course at `dest`: the course's nbgrader_config.py and one assignment's
    source and release folders (no gradebook yet)."""
    dest.mkdir()
    shutil.copy(course_root / "nbgrader_config.py", dest)
    for folder in (SOURCE_DIR, RELEASE_DIR):
        shutil.copytree(course_root / folder / assignment, dest / folder / assignment)
    return dest


def load(course_root: Path, assignment: str, folder: str) -> Notebook:
    spec = load_spec(assignment)
    return json.loads((course_root / folder / assignment / spec.notebook).read_text())


def solutions(course_root: Path, assignment: str) -> dict[str, str]:
    """grade_id -> the source's solution (markers removed), for code and written answers."""
    return _solution_cells(load(course_root, assignment, SOURCE_DIR))


def _solution_cells(nb: Notebook) -> dict[str, str]:
    out = {}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            lines = "".join(cell["source"]).splitlines(keepends=True)
            kept = [ln for ln in lines if "BEGIN SOLUTION" not in ln and "END SOLUTION" not in ln]
            out[meta["grade_id"]] = "".join(kept)
    return out


def set_cell(nb: Notebook, grade_id: str, source: str) -> None:
    """Replace the source of the cell with this grade_id (which must exist)."""
    cells = [
        c
        for c in nb["cells"]
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id
    ]
    if not cells:
        raise KeyError(grade_id)
    cells[0]["source"] = source


def cell_source(nb: Notebook, grade_id: str) -> str:
    for c in nb["cells"]:
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return "".join(c["source"])
    raise KeyError(grade_id)


def solution_ids(course_root: Path, assignment: str) -> list[str]:
    """grade_ids of the code cells learners fill in, in notebook order."""
    data = (course_root / SOURCE_DIR / assignment / load_spec(assignment).notebook).read_bytes()
    return [
        c.grade_id
        for c in parse_notebook(data, 2**30)
        if c.nbgrader.get("solution") and c.cell_type == "code"
    ]


def correct(course_root: Path, assignment: str) -> Notebook:
    """The release with every solution (and written answer) filled in from the source."""
    return from_source(course_root, assignment, load(course_root, assignment, SOURCE_DIR))


def from_source(course_root: Path, assignment: str, source: Notebook) -> Notebook:
    """The release with its solution cells taken from `source` (e.g. an edited source)."""
    nb = load(course_root, assignment, RELEASE_DIR)
    for gid, code in _solution_cells(source).items():
        set_cell(nb, gid, code)
    return nb


def wrong(course_root: Path, assignment: str, rng: random.Random) -> Notebook:
    """Correct, except one or two exercises: a stub left, or a function slightly off."""
    nb = correct(course_root, assignment)
    release = load(course_root, assignment, RELEASE_DIR)
    ids = solution_ids(course_root, assignment)
    for gid in rng.sample(ids, k=min(len(ids), rng.choice((1, 2)))):
        if rng.random() < 0.5:
            set_cell(nb, gid, cell_source(release, gid))
        elif _functions(cell_source(nb, gid)):
            set_cell(nb, gid, cell_source(nb, gid) + _off_by_a_little(course_root, assignment, gid))
        else:  # only classes: the cell stops before defining them
            set_cell(nb, gid, "raise ValueError('left unfinished')\n\n" + cell_source(nb, gid))
    return nb


def _functions(source: str) -> list[str]:
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return []
    return [n.name for n in body if isinstance(n, ast.FunctionDef)]


def _off_by_a_little(course_root: Path, assignment: str, gid: str) -> str:
    """Code that wraps the cell's first function so its outputs are slightly wrong."""
    name = _functions(solutions(course_root, assignment)[gid])[0]
    return (
        f"\n\n_exact_{name} = {name}\n\n\ndef {name}(*args, **kwargs):\n"
        f"    out = _exact_{name}(*args, **kwargs)\n"
        "    if isinstance(out, str):\n        return out + '_'\n"
        "    if isinstance(out, tuple):\n        return out[::-1] + (1,)\n"
        "    return out * 1.001 + 1\n"
    )


def _stubs(source: str) -> str:
    """Each function of a cell returning 0, each class empty."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return "pass\n"
    out = []
    for node in body:
        if isinstance(node, ast.FunctionDef):
            out.append(f"def {node.name}(*args, **kwargs):\n    return 0\n")
        elif isinstance(node, ast.ClassDef):
            out.append(f"class {node.name}:\n    pass\n")
    return "\n\n".join(out) or "pass\n"


def _rebind_checks(nb: Notebook, course_root: Path, assignment: str) -> None:
    """Wrong functions, and the checks the test cells call rebound to no-ops."""
    ids = solution_ids(course_root, assignment)
    for gid in ids:
        set_cell(nb, gid, _stubs(cell_source(nb, gid)))
    patch = (
        "import numpy\nimport course_lib.grading as grading\n\n\n"
        "def check_function(*args, **kwargs):\n    return 1\n\n\n"
        "def check_value(*args, **kwargs):\n    return None\n\n\n"
        "grading.check_function, grading.check_value = check_function, check_value\n"
        "numpy.allclose = lambda *args, **kwargs: True\n\n\n"
    )
    set_cell(nb, ids[0], patch + cell_source(nb, ids[0]))


def _call_reference(nb: Notebook, course_root: Path, assignment: str) -> None:
    """The first graded function returns a course_lib reference's answer (its namesake if any)."""
    hidden = hidden_objects(load_spec(assignment).hidden_references)
    functions = sorted(n for n in hidden.values() if n.count(".") >= 3)
    for gid in solution_ids(course_root, assignment):
        names = _functions(cell_source(nb, gid))
        if not names or not functions:
            continue
        name = names[0]
        target = next((f for f in functions if f.rsplit(".", 1)[1] == name), functions[0])
        module, attr = target.rsplit(".", 1)
        code = (  # `from` finds the module even where a package attribute shadows it
            f"from {module} import {attr} as _reference\n\n\ndef {name}(*args, **kwargs):\n"
            f"    return _reference(*args, **kwargs)\n"
        )
        set_cell(nb, gid, cell_source(nb, gid) + "\n\n" + code)
        return


def _read_solution(nb: Notebook, course_root: Path, assignment: str) -> None:
    """The first solution cell looks for the instructor's source notebook and runs it."""
    relative = f"{SOURCE_DIR}/{assignment}/{load_spec(assignment).notebook}"
    code = (
        "import json, os, pathlib\n\n"
        f"_here = pathlib.Path.cwd()\n"
        f"for _d in [{str(course_root)!r}, *map(str, [_here, *_here.parents])]:\n"
        f"    _p = os.path.join(_d, {relative!r})\n"
        "    if os.path.exists(_p):\n"
        "        for _c in json.load(open(_p))['cells']:\n"
        "            if _c['cell_type'] == 'code' and 'BEGIN SOLUTION' in ''.join(_c['source']):\n"
        "                exec(''.join(_c['source']), globals())\n"
        "        break\n"
    )
    release = load(course_root, assignment, RELEASE_DIR)
    ids = solution_ids(course_root, assignment)
    for other in ids:
        set_cell(nb, other, cell_source(release, other))
    set_cell(nb, ids[0], code)


def _exit_kernel(nb: Notebook, course_root: Path, assignment: str) -> None:
    """A cell ends the process (in Jupyter: the kernel dies, later cells fail)."""
    gid = solution_ids(course_root, assignment)[-1]
    set_cell(nb, gid, "import os\n\nos._exit(0)\n")


HOSTILE: dict[str, Callable[[Notebook, Path, str], None]] = {
    "rebind_checks": _rebind_checks,
    "call_reference": _call_reference,
    "read_solution": _read_solution,
    "exit_kernel": _exit_kernel,
}


def hostile(course_root: Path, assignment: str, attack: str) -> Notebook:
    """A notebook trying `attack` (a key of HOSTILE)."""
    nb = correct(course_root, assignment)
    HOSTILE[attack](nb, course_root, assignment)
    return nb


def make_class(
    course_root: Path, assignment: str, n: int, seed: int = 0, mix=(0.5, 0.3, 0.2)
) -> dict[str, tuple[str, Notebook]]:
    """`n` students -> (kind, notebook); kinds "correct", "wrong", "hostile:<attack>"."""
    rng = random.Random(seed)
    attacks = sorted(HOSTILE)
    out = {}
    for i in range(n):
        draw = rng.random()
        student = f"student{i + 1:03d}"
        if draw < mix[0]:
            out[student] = ("correct", correct(course_root, assignment))
        elif draw < mix[0] + mix[1]:
            out[student] = ("wrong", wrong(course_root, assignment, rng))
        else:
            attack = attacks[i % len(attacks)]
            out[student] = (f"hostile:{attack}", hostile(course_root, assignment, attack))
    return out


def every_kind(
    course_root: Path, assignment: str, seed: int = 0
) -> dict[str, tuple[str, Notebook]]:
    """A small class with each kind once or twice: two correct, two wrong, every attack."""
    rng = random.Random(seed)
    out = {f"correct{i}": ("correct", correct(course_root, assignment)) for i in (1, 2)}
    for i in (1, 2):
        out[f"wrong{i}"] = ("wrong", wrong(course_root, assignment, rng))
    for attack in sorted(HOSTILE):
        out[f"hostile-{attack}"] = (f"hostile:{attack}", hostile(course_root, assignment, attack))
    return out


def write_class(
    students: dict[str, tuple[str, Notebook]], dest: Path, assignment: str, notebook: str
) -> Path:
    """Write `students` in nbgrader's layout `dest/submitted/<student>/<assignment>/`."""
    for student, (_, nb) in students.items():
        folder = dest / "submitted" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        (folder / notebook).write_text(json.dumps(copy.deepcopy(nb), indent=1))
    return dest / "submitted"
