"""Code similarity across a class (autograder.similarity): a copied pair with renamed variables
ranks first, learners who only kept the stubs share nothing, the report escapes learner code.

The class is ps01's release notebook with its solution cells filled in by hand; nothing runs.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

import pytest
from copydetect import CodeFingerprint, compare_files

from autograder.__main__ import main
from autograder.collect import Submission
from autograder.similarity import compare_class, fingerprint
from autograder.spec import RELEASE_DIR
from autograder.synthetic import load, set_cell, solutions

ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 2**24

# bob copied alice's solution, renamed every variable and added comments (one hostile)
_RENAMES = {
    "(a, b)": "(u, v)", "a = ": "u = ", "b = ": "v = ", "(a, ": "(u, ", "(b, ": "(v, ",
    "norms": "lengths", "safe": "denom", "scores": "sims", "target": "goal",
    "best_word": "winner", "best_score": "top", "vector": "vec", "word": "w",
}  # fmt: skip
_HOSTILE = "    # </pre><script>alert('copied')</script>\n"

CAROL = {  # independent: loops and explicit sums
    "ex1_dot": """def dot(a, b):
    total = 0.0
    for x, y in zip(np.ravel(a), np.ravel(b)):
        total += float(x) * float(y)
    if np.ndim(a) == 2:
        return np.array([sum(p * q for p, q in zip(r, s)) for r, s in zip(a, b)])
    return total
""",
    "ex2_cosine": """def cosine_similarity(a, b):
    num = dot(a, b)
    den = math.sqrt(dot(a, a)) * math.sqrt(dot(b, b)) if np.ndim(a) == 1 else None
    if den is None:
        den = np.sqrt(dot(a, a) * dot(b, b))
        return np.divide(num, den, out=np.zeros_like(num), where=den != 0)
    return 0.0 if den == 0 else num / den
""",
    "ex3_top_k": """def top_k_search(query, corpus, k):
    ranked = sorted(range(len(corpus)), key=lambda i: -cosine_similarity(corpus[i], query))
    return ranked[:k]
""",
    "ex4_analogy": """def analogy(a, b, c, vocab):
    want = [vb - va + vc for va, vb, vc in zip(vocab[a], vocab[b], vocab[c])]
    options = {w: cosine_similarity(np.array(want), v) for w, v in vocab.items()}
    for w in (a, b, c):
        options.pop(w)
    return max(options, key=options.get)
""",
}
DAVE = {  # independent: einsum and linalg
    "ex1_dot": """def dot(a, b):
    return np.einsum("...i,...i->...", np.asarray(a, float), np.asarray(b, float))
""",
    "ex2_cosine": """def cosine_similarity(a, b):
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = dot(a, b) / (na * nb)
    return np.nan_to_num(cos, nan=0.0)
""",
    "ex3_top_k": """def top_k_search(query, corpus, k):
    c = np.asarray(corpus, float)
    s = c @ np.asarray(query, float) / (np.linalg.norm(c, axis=1) * np.linalg.norm(query))
    idx = np.argpartition(-s, k - 1)[:k]
    return idx[np.argsort(-s[idx])]
""",
    "ex4_analogy": """def analogy(a, b, c, vocab):
    keys = [w for w in vocab if w not in {a, b, c}]
    mat = np.stack([vocab[w] for w in keys])
    q = vocab[b] - vocab[a] + vocab[c]
    return keys[int(np.argmax(mat @ q / np.linalg.norm(mat, axis=1)))]
""",
}


def _copy_renamed(source: str) -> str:
    for old, new in _RENAMES.items():
        source = source.replace(old, new)
    lines = source.splitlines(keepends=True)
    return "".join(lines[:1]) + _HOSTILE + "    # my own work\n" + "".join(lines[1:])


def _class() -> dict[str, bytes]:
    release = load(ROOT, "ps01", RELEASE_DIR)
    alice = {k: v for k, v in solutions(ROOT, "ps01").items() if k != "ex5_answer"}
    answers = {
        "alice": alice,
        "bob": {k: _copy_renamed(v) for k, v in alice.items()},
        "carol": CAROL,
        "dave": DAVE,
        "erin": {},  # the stubs as released
        "frank": {},
    }
    notebooks = {}
    for student, cells in answers.items():
        nb = copy.deepcopy(release)
        for grade_id, source in cells.items():
            set_cell(nb, grade_id, source)
        notebooks[student] = json.dumps(nb).encode()
    return notebooks


@pytest.fixture(scope="module")
def result():
    subs = [Submission(s, f"{s}.ipynb", data) for s, data in _class().items()]
    release = (ROOT / RELEASE_DIR / "ps01" / "ps01.ipynb").read_bytes()
    return compare_class(release, subs, MAX_BYTES)


def _score(result, a: str, b: str) -> float:
    return next(p.score for p in result.pairs if {p.a, p.b} == {a, b})


def test_renamed_copy_ranks_first(result):
    assert result.code["bob"] != result.code["alice"]  # the renames took
    first = result.pairs[0]
    assert (first.a, first.b) == ("alice", "bob")
    assert first.similarity_a > 0.9 and first.similarity_b > 0.9
    others = [p.score for p in result.pairs[1:]]
    assert max(others) < 0.5 * first.score, result.pairs[1]


def test_stub_only_learners_share_nothing(result):
    assert _score(result, "erin", "frank") == 0.0
    assert all(p.tokens == 0 for p in result.pairs if {"erin", "frank"} & {p.a, p.b})


def test_without_the_template_the_stubs_look_copied(result):
    """The removal is what clears them: the same stubs, fingerprinted with nothing removed."""
    erin, frank = (fingerprint(result.code[s], template=set()) for s in ("erin", "frank"))
    _, (sim_e, sim_f), _ = compare_files(erin, frank)
    assert sim_e == sim_f == 1.0


def test_fingerprints_match_copydetects_own(result):
    """With window 1 every k-gram is kept, so copydetect's CodeFingerprint gives the same shares."""
    pair = ("alice", "dave")  # independent, but with k=15 some short runs coincide
    ours = [fingerprint(result.code[s], set(), k=15, window=1) for s in pair]
    theirs = [CodeFingerprint(f"{s}.py", 15, 1, fp=io.StringIO(result.code[s])) for s in pair]
    _, ours_sim, _ = compare_files(*ours)
    _, theirs_sim, _ = compare_files(*theirs)
    assert ours_sim == pytest.approx(theirs_sim) and ours_sim[0] > 0


def test_cli_writes_escaped_report_and_csv(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    for student, data in _class().items():
        (subs / f"{student}.ipynb").write_bytes(data)
    (subs / "zoe.ipynb").write_text("<script>not a notebook")
    before = {p.name: p.read_bytes() for p in subs.iterdir()}
    assert main(["similarity", "ps01", str(subs), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["similarity.csv", "similarity.html"]
    with open(out / "similarity.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 15  # 6 learners, every pair; zoe's file is not a notebook
    assert (rows[0]["student_a"], rows[0]["student_b"]) == ("alice", "bob")
    html = (out / "similarity.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "</pre><script" not in html
    assert "<mark>" in html  # the shared code is highlighted
    assert "<li>zoe: the file is not valid JSON" in html.split("Not compared")[1]
    assert {p.name: p.read_bytes() for p in subs.iterdir()} == before  # only read
