"""The red team's shared parts: the attack registry, notebook edits and expectations.

Each attack edits the released ps01 notebook the way a learner could (helpers from
autograder.synthetic keep it in sync with solutions/ps01), or writes a malformed file, and
says what the grader must answer in `expect`: scores that cannot be gamed, a clear status
and a reason. The attacks themselves live in tampering.py, references.py and resources.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autograder import synthetic
from autograder.spec import prepare, read_bundle

ASSIGNMENT = "ps01"
PREPARED = prepare(read_bundle(ASSIGNMENT, Path(__file__).resolve().parents[2]))
PARTS = [t.grade_id for t in PREPARED.tests]
FUNCTIONS = ("dot", "cosine_similarity", "top_k_search", "analogy")
BY_FUNCTION = {f: [t.grade_id for t in PREPARED.tests if f in t.names] for f in FUNCTIONS}
ALL = PARTS


@dataclass(frozen=True)
class Env:
    """Where things are, as a well-informed attacker would know."""

    course_root: Path
    submissions: Path
    out: Path
    victim: Path  # another student's notebook
    token: str  # unique name for files an attack tries to create


@dataclass(frozen=True)
class Attack:
    name: str
    build: Callable[[Env], bytes | None]  # the notebook file; None: no notebook at all
    expect: Callable[[dict, Env], None]  # rows by part -> assertions


ATTACKS: dict[str, Attack] = {}


def attack(expect: Callable[[dict, Env], None]):
    def register(build):
        ATTACKS[build.__name__] = Attack(build.__name__, build, expect)
        return build

    return register


# ---------------------------------------------------------------- notebook helpers


def dump(nb: dict) -> bytes:
    return json.dumps(nb, indent=1).encode()


def correct(env: Env) -> dict:
    return synthetic.correct(env.course_root, ASSIGNMENT)


def wrong(env: Env) -> dict:
    """Every graded function defined but returning 0."""
    nb = correct(env)
    for gid in synthetic.solution_ids(env.course_root, ASSIGNMENT):
        names = [f for f in BY_FUNCTION if f"def {f}(" in synthetic.cell_source(nb, gid)]
        synthetic.set_cell(
            nb, gid, "".join(f"def {f}(*args, **kwargs):\n    return 0\n\n\n" for f in names)
        )
    return nb


def prepend(nb: dict, gid: str, code: str) -> dict:
    synthetic.set_cell(nb, gid, code + "\n\n" + synthetic.cell_source(nb, gid))
    return nb


def append(nb: dict, gid: str, code: str) -> dict:
    synthetic.set_cell(nb, gid, synthetic.cell_source(nb, gid) + "\n\n" + code)
    return nb


def cells(nb: dict, gid: str) -> list[int]:
    return [
        i
        for i, c in enumerate(nb["cells"])
        if c["metadata"].get("nbgrader", {}).get("grade_id") == gid
    ]


def insert(nb: dict, after: str, source: str, nbgrader: dict | None = None) -> dict:
    meta = {"nbgrader": nbgrader} if nbgrader else {}
    cell = {
        "cell_type": "code",
        "metadata": meta,
        "source": source,
        "outputs": [],
        "execution_count": None,
    }
    nb["cells"].insert(cells(nb, after)[0] + 1, cell)
    return nb


# ---------------------------------------------------------------- expectations


def _rows(rows: dict, parts: list[str]) -> list[dict]:
    assert set(parts) <= set(rows), f"missing rows: {set(parts) - set(rows)}"
    return [rows[p] for p in parts]


def score(kind: str, parts: list[str] = ALL):
    def check(rows: dict, env: Env) -> None:
        for r in _rows(rows, parts):
            want = r["max"] if kind == "full" else "0"
            assert r["score"] == want, f"{r['part']}: score {r['score']!r}, want {kind} ({r})"

    return check


def status(value: str, parts: list[str] = ALL, reason: str = ""):
    def check(rows: dict, env: Env) -> None:
        for r in _rows(rows, parts):
            assert r["status"] == value, f"{r['part']}: status {r['status']}, want {value} ({r})"
            assert re.search(reason, r["reason"]), (
                f"{r['part']}: reason {r['reason']!r} lacks {reason!r}"
            )

    return check


def both(*checks):
    def check(rows: dict, env: Env) -> None:
        for c in checks:
            c(rows, env)

    return check


def everything(kind: str, value: str, reason: str = "", parts: list[str] = ALL):
    return both(score(kind, parts), status(value, parts, reason))


def rest(*functions: str) -> list[str]:
    return [p for p in ALL if not any(p in BY_FUNCTION[f] for f in functions)]
