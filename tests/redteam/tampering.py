"""Red-team attacks on the checks and the notebook: patching, kernel hooks, edited cells."""

from __future__ import annotations

import json

from redteam.base import (
    ALL,
    BY_FUNCTION,
    PARTS,
    Env,
    append,
    attack,
    both,
    cells,
    correct,
    dump,
    everything,
    insert,
    prepend,
    rest,
    score,
    status,
    wrong,
)

from autograder import synthetic

# ---------------------------------------------------------------- patching checks (0 points)

_PATCH_NUMPY = """
import numpy as np
np.allclose = np.array_equal = lambda *a, **k: True
np.isclose = lambda a, b, *x, **k: np.ones(np.shape(a), bool)
np.testing.assert_allclose = np.testing.assert_array_equal = lambda *a, **k: None
"""


@attack(everything("zero", "flagged", r"replaces numpy"))
def patch_numpy(env: Env) -> bytes:
    """numpy's comparisons always agree (beats nbgrader when tests use them)."""
    return dump(prepend(wrong(env), "ex1_dot", _PATCH_NUMPY))


@attack(everything("zero", "flagged", r"replaces torch"))
def patch_torch(env: Env) -> bytes:
    """torch.testing.assert_close and tensor comparison operators always agree."""
    code = (
        "import torch\n"
        "torch.testing.assert_close = lambda *a, **k: None\n"
        "torch.allclose = torch.equal = lambda *a, **k: True\n"
        "torch.Tensor.__eq__ = lambda self, other: torch.tensor(True)\n"
        "torch.Tensor.__sub__ = lambda self, other: torch.zeros(())\n"
    )
    return dump(prepend(wrong(env), "ex1_dot", code))


@attack(everything("zero", "flagged", r"replaces course_lib|calls setattr"))
def patch_course_lib(env: Env) -> bytes:
    """course_lib.grading's checks rebound to no-ops, in the module and the namespace."""
    code = (
        "import course_lib.grading as g, course_lib.grading.checks as c\n"
        "check_function = lambda *a, **k: 1\ncheck_value = lambda *a, **k: None\n"
        "g.check_function = c.check_function = check_function\n"
        "g.check_value = c.check_value = check_value\n"
        "setattr(g, 'compare', lambda *a, **k: None)\n"
    )
    return dump(prepend(wrong(env), "ex1_dot", code))


@attack(everything("zero", "flagged", r"replaces builtins"))
def patch_builtins(env: Env) -> bytes:
    """AssertionError and isinstance patched in builtins."""
    code = (
        "import builtins\n"
        "builtins.AssertionError = type('Never', (BaseException,), {})\n"
        "builtins.isinstance = lambda *a: True\n"
    )
    return dump(prepend(wrong(env), "ex1_dot", code))


@attack(score("zero"))
def liar_objects(env: Env) -> bytes:
    """Outputs whose comparison operators always say "equal" (an ndarray subclass too)."""
    code = (
        "import numpy as np\n\n\nclass Liar(np.ndarray):\n"
        "    def __eq__(self, other):\n        return True\n\n"
        "    def __array_ufunc__(self, *args, **kwargs):\n        return True\n\n\n"
        "class Anything:\n    __eq__ = lambda self, other: True\n    __float__ = lambda self: 1.0\n\n\n"
        "def dot(a, b):\n    return np.zeros(3).view(Liar)\n\n\n"
        "def cosine_similarity(a, b):\n    return Anything()\n\n\n"
        "def top_k_search(query, corpus, k):\n    return np.zeros(1).view(Liar)\n\n\n"
        "def analogy(a, b, c, vocab):\n    return Anything()\n"
    )
    return dump(append(wrong(env), "ex4_analogy", code))


# ---------------------------------------------------------------- changing how later cells run


@attack(everything("zero", "flagged", r"get_ipython"))
def ipython_input_transformer(env: Env) -> bytes:
    """Later cells (the tests, in a kernel) become `pass`."""
    code = "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])"
    return dump(prepend(wrong(env), "ex1_dot", code))


@attack(everything("zero", "flagged", r"get_ipython"))
def ipython_custom_exc(env: Env) -> bytes:
    """Exceptions in later cells are swallowed by a custom handler."""
    code = "get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)"
    return dump(prepend(wrong(env), "ex1_dot", code))


@attack(everything("zero", "flagged", r"get_ipython"))
def ipython_events(env: Env) -> bytes:
    """A pre_run_cell hook rewrites the namespace before every test cell."""
    code = (
        "def _hook(*args):\n    globals()['check_function'] = lambda *a, **k: 1\n\n\n"
        "get_ipython().events.register('pre_run_cell', _hook)"
    )
    return dump(prepend(wrong(env), "ex1_dot", code))


@attack(everything("zero", "flagged", r"replaces sys.excepthook"))
def excepthook(env: Env) -> bytes:
    """sys.excepthook and sys.displayhook silenced."""
    code = "import sys\nsys.excepthook = lambda *a: None\nsys.displayhook = lambda *a: None"
    return dump(prepend(wrong(env), "ex1_dot", code))


@attack(
    both(
        everything("full", "flagged", r"os._exit", rest("analogy")),
        everything("zero", "flagged", r"stopped the notebook", BY_FUNCTION["analogy"]),
    )
)
def exit_kernel(env: Env) -> bytes:
    """os._exit(0) in the last exercise: earlier exercises keep their points (like a kernel)."""
    return dump(prepend(correct(env), "ex4_analogy", "import os\nos._exit(0)"))


@attack(
    both(
        score("full", BY_FUNCTION["dot"]),
        everything("zero", "ok", r"not defined.*SystemExit", BY_FUNCTION["cosine_similarity"]),
    )
)
def system_exit(env: Env) -> bytes:
    """`raise SystemExit` before cosine_similarity is defined: only what it skipped is lost."""
    return dump(prepend(correct(env), "ex2_cosine", "raise SystemExit(0)"))


@attack(
    both(
        everything("full", "flagged", r"os.kill", rest("top_k_search", "analogy")),
        everything("zero", "flagged", r"SIGKILL", BY_FUNCTION["top_k_search"]),
    )
)
def kill_self(env: Env) -> bytes:
    """The process SIGKILLs itself in the third exercise."""
    code = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    return dump(prepend(correct(env), "ex3_top_k", code))


# ---------------------------------------------------------------- editing, deleting, adding cells


@attack(
    both(
        everything("full", "flagged", r"modified", ["test_ex1_dot_random"]),
        everything("full", "ok", "", rest("dot")),
    )
)
def edit_test_cell(env: Env) -> bytes:
    """A test cell rewritten (graded with the original, flagged)."""
    nb = correct(env)
    synthetic.set_cell(nb, "test_ex1_dot_random", "print('all tests pass')")
    return dump(nb)


@attack(everything("zero", "flagged", r"modified"))
def edit_all_testswrong(env: Env) -> bytes:
    """Every test cell emptied, every function wrong."""
    nb = wrong(env)
    for part in PARTS:
        synthetic.set_cell(nb, part, "pass")
    return dump(nb)


@attack(
    both(
        everything("zero", "flagged", r"deleted", ["test_ex1_dot_random"]),
        everything("full", "ok", "", rest("dot")),
    )
)
def delete_test_cell(env: Env) -> bytes:
    """A test cell deleted: zero for it, not skipped."""
    nb = correct(env)
    del nb["cells"][cells(nb, "test_ex1_dot_random")[0]]
    return dump(nb)


@attack(everything("full", "flagged", r"claims to be graded"))
def add_graded_cell(env: Env) -> bytes:
    """A forged graded cell worth 100 points."""
    meta = {
        "grade": True,
        "solution": False,
        "locked": True,
        "points": 100,
        "grade_id": "bonus",
        "schema_version": 3,
    }
    return dump(insert(correct(env), "ex1_dot", "assert True", meta))


@attack(everything("full", "flagged", r"modified", ["test_ex1_dot_random"]))
def change_points(env: Env) -> bytes:
    """A test cell's points raised to 100 in its metadata (max stays as released)."""
    nb = correct(env)
    nb["cells"][cells(nb, "test_ex1_dot_random")[0]]["metadata"]["nbgrader"]["points"] = 100
    return dump(nb)


@attack(everything("zero", "flagged", r"locked cell setup was modified"))
def edit_setup_cell(env: Env) -> bytes:
    """The locked set-up cell rebinds the checks (the source's set-up is run instead)."""
    nb = wrong(env)
    synthetic.set_cell(nb, "setup", "import numpy as np\ncheck_function = check_value = print\n")
    return dump(nb)


@attack(
    both(
        everything(
            "zero", "ok", r"solution cell ex2_cosine was deleted", BY_FUNCTION["cosine_similarity"]
        ),
        score("full", BY_FUNCTION["dot"]),
    )
)
def delete_solution_cell(env: Env) -> bytes:
    """A solution cell deleted: its function is missing, with the reason."""
    nb = correct(env)
    del nb["cells"][cells(nb, "ex2_cosine")[0]]
    return dump(nb)


@attack(both(status("flagged", ALL, r"appears twice"), score("full")))
def duplicate_test_cell(env: Env) -> bytes:
    """A test cell copied (same grade_id twice)."""
    nb = correct(env)
    i = cells(nb, "test_ex1_dot_random")[0]
    nb["cells"].insert(i, json.loads(json.dumps(nb["cells"][i])))
    return dump(nb)
