"""Second-round red team: names that shadow builtins, hidden inputs smuggled into feedback,
and honest code that a static scan used to punish (docstrings, self-checks, stale paths)."""

from __future__ import annotations

from redteam.base import (
    BY_FUNCTION,
    Env,
    append,
    attack,
    both,
    correct,
    dump,
    everything,
    rest,
    score,
)

from autograder import synthetic
from course_lib.grading import embedding_cases

# The visible calls of dot before its first hidden case (examples cell, then the visible
# lines of the random cell), and the hidden case whose inputs an attacker wants to see.
_VISIBLE_DOT_CALLS = (
    4
    + len(embedding_cases.vector_pairs(seed=1, n=5))
    + len(embedding_cases.batch_pairs(seed=2, n=5))
)
_HIDDEN_CASE = 5
HIDDEN_SECRET = f"{abs(embedding_cases.vector_pairs(seed=101, n=40)[_HIDDEN_CASE].args[0][0]):.6f}"[
    2:
]


@attack(everything("full", "ok", "", BY_FUNCTION["dot"]))
def shadow_builtins(env: Env) -> bytes:
    """Top-level print, max, int, float and str: the test cells must keep Python's own."""
    code = (
        "def print(*args, **kwargs):\n    raise RuntimeError('the learner print ran')\n\n\n"
        "def max(*args, **kwargs):\n    raise RuntimeError('the learner max ran')\n\n\n"
        "int = float = str = max\n"
    )
    return dump(append(correct(env), "ex4_analogy", code))


@attack(both(score("zero", ["test_ex1_dot_random"]), score("full", rest("dot"))))
def leak_hidden_inputs(env: Env) -> bytes:
    """dot passes the visible cases, then raises with the hidden inputs it received in the
    exception's type name, message and (through linecache) its traceback lines."""
    code = (
        "import linecache\n_calls = []\n\n\ndef dot(a, b):\n    _calls.append(1)\n"
        f"    if len(_calls) != {_VISIBLE_DOT_CALLS + _HIDDEN_CASE + 1}:\n"
        "        return np.sum(np.asarray(a, float) * np.asarray(b, float), axis=-1)\n"
        "    seen = repr(np.asarray(a).tolist())\n"
        "    for key in list(linecache.cache):\n"
        "        linecache.cache[key] = (1, None, [seen + '\\n'] * 50, key)\n"
        "    name = 'Leak_' + seen.replace('.', 'p').replace('-', 'm').replace(', ', '_')[:200]\n"
        "    raise type(name.strip('[]'), (ValueError,), {})(seen)\n"
    )
    nb = correct(env)
    synthetic.set_cell(nb, "ex1_dot", code)
    return dump(nb)


@attack(score("full", BY_FUNCTION["dot"]))
def honest_docstrings(env: Env) -> bytes:
    """Docstrings that name the course module and say 'my solution' (nothing happens)."""
    nb = correct(env)
    source = synthetic.cell_source(nb, "ex1_dot").replace(
        "def dot(a, b):",
        'def dot(a, b):\n    """My solution; like course_lib.embeddings.similarity.dot."""',
        1,
    )
    synthetic.set_cell(nb, "ex1_dot", "# my solution\n" + source)
    return dump(nb)


@attack(score("full", BY_FUNCTION["dot"]))
def honest_self_check(env: Env) -> bytes:
    """The visible test call copied into the solution cell as a self-check."""
    code = (
        "import course_lib.embeddings.similarity as reference\n\ntry:\n"
        "    check_function(dot, reference.dot, embedding_cases.vector_pairs(seed=1, n=5))\n"
        "except Exception as exc:\n    print('self-check:', exc)\n"
    )
    return dump(append(correct(env), "ex1_dot", code))


@attack(score("full", BY_FUNCTION["dot"]))
def honest_stale_path(env: Env) -> bytes:
    """A guarded open() of a path from the learner's laptop that contains solutions/."""
    code = (
        "try:\n    _notes = open('/home/me/course/solutions/ps01/notes.txt').read()\n"
        "except OSError:\n    _notes = ''\n"
    )
    return dump(append(correct(env), "ex1_dot", code))
