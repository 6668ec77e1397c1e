"""Red-team attacks by reference use, file access, resources, and malformed files."""

from __future__ import annotations

import json

from redteam.base import (
    ALL,
    ASSIGNMENT,
    BY_FUNCTION,
    PARTS,
    Env,
    attack,
    both,
    correct,
    dump,
    everything,
    prepend,
    rest,
    score,
    status,
    wrong,
)

from autograder import synthetic

# ---------------------------------------------------------------- returning the reference's answer


@attack(everything("zero", "flagged", r"no credit"))
def call_reference(env: Env) -> bytes:
    """`dot` returns course_lib's own dot (beats plain nbgrader); the others call this dot."""
    code = "from course_lib.embeddings.similarity import dot as _dot\n\n\ndef dot(a, b):\n    return _dot(a, b)\n"
    nb = correct(env)
    synthetic.set_cell(nb, "ex1_dot", code)
    return dump(nb)


@attack(
    both(
        everything(
            "zero",
            "flagged",
            r"called course_lib\.embeddings\.similarity\.cosine_similarity",
            BY_FUNCTION["cosine_similarity"],
        )
    )
)
def call_reference_obfuscated(env: Env) -> bytes:
    """The reference found by string arithmetic (no import statement names it)."""
    code = (
        "import importlib\n_m = importlib.import_module('course_lib.' + 'embed' + 'dings.simi' + 'larity')\n\n\n"
        "def cosine_similarity(a, b):\n    return getattr(_m, 'cosine_' + 'similarity')(a, b)\n"
    )
    nb = correct(env)
    synthetic.set_cell(nb, "ex2_cosine", code)
    return dump(nb)


@attack(everything("zero", "flagged", r"embedding_cases\._cosine", BY_FUNCTION["top_k_search"]))
def private_helper(env: Env) -> bytes:
    """top_k_search ranks with the grading module's own private cosine."""
    code = (
        "def top_k_search(query, corpus, k):\n"
        "    scores = embedding_cases._cosine(query, corpus)\n    return np.argsort(-scores, kind='stable')[:k]\n"
    )
    nb = correct(env)
    synthetic.set_cell(nb, "ex3_top_k", code)
    return dump(nb)


@attack(everything("zero", "flagged", r"reference", BY_FUNCTION["analogy"]))
def exec_reference_source(env: Env) -> bytes:
    """The reference module's source file read from disk and executed."""
    code = (
        "import os, course_lib\n_ns = {}\n"
        "_path = os.path.join(os.path.dirname(course_lib.__file__), 'embeddings', 'analogy.py')\n"
        "exec(open(_path).read(), _ns)\n\n\n"
        "def analogy(a, b, c, vocab):\n    return _ns['analogy'](a, b, c, vocab)\n"
    )
    nb = correct(env)
    synthetic.set_cell(nb, "ex4_analogy", code)
    return dump(nb)


@attack(score("zero"))
def read_solution_notebook(env: Env) -> bytes:
    """Find solutions/ps01/ps01.ipynb on disk and run its solutions (beats plain nbgrader)."""
    return dump(synthetic.hostile(env.course_root, ASSIGNMENT, "read_solution"))


@attack(status("flagged", ALL, r"gradebook"))
def read_gradebook(env: Env) -> bytes:
    """Open the course's gradebook.db."""
    code = f"try:\n    open({str(env.course_root / 'gradebook.db')!r}, 'rb').read()\nexcept OSError:\n    pass"
    return dump(prepend(correct(env), "ex1_dot", code))


@attack(everything("zero", "flagged", r"tried to read|submitted"))
def read_other_students(env: Env) -> bytes:
    """List the submissions and copy the victim's solutions."""
    code = (
        "import json, os\n"
        f"try:\n    print(os.listdir({str(env.submissions)!r}))\n"
        f"    _nb = json.load(open({str(env.victim)!r}))\n"
        "    for _c in _nb['cells']:\n        if _c['cell_type'] == 'code':\n            exec(''.join(_c['source']), globals())\n"
        "except Exception as e:\n    print(e)\n"
    )
    return dump(prepend(correct(env), "ex1_dot", code))


# ---------------------------------------------------------------- resources


@attack(
    both(
        # the part's wall limit (6 s) or, later, the process's CPU limit (15 s)
        everything("zero", "error", r"took longer than|CPU-time limit", BY_FUNCTION["analogy"]),
        score("full", rest("analogy")),
    )
)
def infinite_loop(env: Env) -> bytes:
    """analogy never returns (each part stopped at its time limit or the CPU-time limit)."""
    code = "def analogy(a, b, c, vocab):\n    while True:\n        pass\n"
    nb = correct(env)
    synthetic.set_cell(nb, "ex4_analogy", code)
    return dump(nb)


@attack(
    both(
        everything("zero", "ok", r"not defined.*TimeoutError", BY_FUNCTION["top_k_search"]),
        score("full", rest("top_k_search", "analogy")),
    )
)
def infinite_loop_cell(env: Env) -> bytes:
    """A cell that never finishes (stopped at the per-cell time limit, later cells still run)."""
    return dump(prepend(correct(env), "ex3_top_k", "while True:\n    pass"))


@attack(
    both(
        everything(
            "zero", "flagged", r"signal.signal.*(time limit|CPU-time limit)", BY_FUNCTION["analogy"]
        ),
        score("full", rest("analogy")),
    )
)
def unstoppable_loop(env: Env) -> bytes:
    """analogy ignores SIGALRM and loops: the CPU or wall limit kills the process."""
    code = (
        "import signal\n\n\ndef analogy(a, b, c, vocab):\n"
        "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    while True:\n        pass\n"
    )
    nb = correct(env)
    synthetic.set_cell(nb, "ex4_analogy", code)
    return dump(nb)


@attack(
    both(
        everything("zero", "error", r"ran out of memory", BY_FUNCTION["analogy"]),
        score("full", rest("analogy")),
    )
)
def memory_bomb(env: Env) -> bytes:
    """analogy allocates 80 GB."""
    code = "def analogy(a, b, c, vocab):\n    return np.ones((100_000, 100_000)).sum()\n"
    nb = correct(env)
    synthetic.set_cell(nb, "ex4_analogy", code)
    return dump(nb)


@attack(
    both(
        everything("zero", "ok", r"MemoryError", BY_FUNCTION["analogy"]),
        score("full", rest("analogy")),
    )
)
def memory_bomb_cell(env: Env) -> bytes:
    """A cell allocates 512 MB blocks until memory runs out."""
    code = "_blocks = []\nwhile True:\n    _blocks.append(np.empty(2**26))  # 512 MB each"
    return dump(prepend(correct(env), "ex4_analogy", code))


@attack(
    both(
        everything("zero", "flagged", r"os\.fork", BY_FUNCTION["analogy"]),
        everything("full", "flagged", r"os\.fork", rest("analogy")),
    )
)
def fork_bomb(env: Env) -> bytes:
    """`while True: os.fork()` (stopped by RLIMIT_NPROC)."""
    return dump(prepend(correct(env), "ex4_analogy", "import os\nwhile True:\n    os.fork()"))


@attack(everything("full", "ok"))
def huge_output(env: Env) -> bytes:
    """One 50 MB line printed (kept to a few KB in the log)."""
    return dump(prepend(correct(env), "ex1_dot", "print('x' * 50_000_000)"))


@attack(
    everything("zero", "ok", r"OutputNotSent: the output cannot be sent back", BY_FUNCTION["dot"])
)
def huge_return(env: Env) -> bytes:
    """dot returns 40 MB of data (over the test's cap on one output)."""
    nb = correct(env)
    synthetic.set_cell(nb, "ex1_dot", "def dot(a, b):\n    return np.zeros(5_000_000)\n")
    return dump(nb)


def _targets(env: Env) -> list[str]:
    root = env.course_root
    return [
        str(root / "solutions" / ASSIGNMENT / "ps01.ipynb"),
        str(root / "autograder" / "__init__.py"),
        str(root / "gradebook.db"),
        str(env.out / "grades.csv"),
        str(env.victim),
        f"/tmp/{env.token}",
        f"{root}/{env.token}",
    ]


@attack(everything("zero", "flagged", r"tried to write .*: no credit"))
def write_outside(env: Env) -> bytes:
    """Overwrite grader files, the gradebook, the CSV, another submission; drop files."""
    code = (
        f"for _t in {_targets(env)!r}:\n"
        "    try:\n        open(_t, 'w').write('pwned')\n    except OSError:\n        pass\n"
    )
    return dump(prepend(correct(env), "ex1_dot", code))


@attack(everything("full", "flagged", r"tried to write /home/learner/plot.png \(blocked\)"))
def write_elsewhere(env: Env) -> bytes:
    """A harmless write outside the working folder: blocked and flagged, points kept."""
    code = "try:\n    open('/home/learner/plot.png', 'wb').write(b'png')\nexcept OSError:\n    pass"
    return dump(prepend(correct(env), "ex1_dot", code))


@attack(score("zero"))
def forge_results(env: Env) -> bytes:
    """Write fake result messages (and garbage) to every open file descriptor."""
    code = (
        "import json, os\n\n\ndef _frame(m):\n    d = json.dumps(m).encode()\n    return len(d).to_bytes(4, 'big') + d\n\n\n"
        "_fake = [{'k': 'case', 'part': p, 'case': i, 'output': {'t': 'float', 'v': '0x0.0p+0'}}\n"
        f"         for p in {PARTS!r} for i in range(400)]\n"
        "for _fd in range(3, 64):\n    try:\n"
        "        os.write(_fd, b''.join(_frame(m) for m in _fake[:50]) + b'\\xff' * 64)\n"
        "    except OSError:\n        pass\n"
    )
    return dump(prepend(wrong(env), "ex1_dot", code))


# ---------------------------------------------------------------- malformed files


@attack(everything("zero", "error", r"not valid JSON"))
def invalid_json(env: Env) -> bytes:
    return b'{"cells": [{"cell_type": "code", "source": "x = 1"'


@attack(everything("zero", "error", r"empty"))
def empty_file(env: Env) -> bytes:
    return b""


@attack(everything("zero", "error", r"not UTF-8"))
def binary_file(env: Env) -> bytes:
    return bytes(range(256)) * 8


@attack(everything("zero", "error", r"not a Jupyter notebook"))
def json_not_notebook(env: Env) -> bytes:
    return b"[1, 2, 3]"


@attack(everything("zero", "error", r"format 3"))
def old_notebook_format(env: Env) -> bytes:
    return json.dumps({"nbformat": 3, "cells": [], "worksheets": []}).encode()


@attack(everything("zero", "error", r"not a ps01 notebook"))
def other_assignment(env: Env) -> bytes:
    nb = correct(env)
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader")
        if meta:
            meta["grade_id"] = "ps99_" + meta["grade_id"]
    return dump(nb)


@attack(everything("zero", "error", r"larger than"))
def huge_file(env: Env) -> bytes:
    nb = correct(env)
    nb["metadata"]["padding"] = "x" * (3 * 2**20)
    return dump(nb)


@attack(everything("zero", "error", r"no notebook"))
def missing_notebook(env: Env) -> None:
    return None
