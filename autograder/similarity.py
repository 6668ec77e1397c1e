"""Similarity of the learners' solution code across a class, for review (never for scores).

Each learner's code is the code they wrote: their solution cells and the code cells they added
(autograder.notebook.learner_script without the trusted set-up cells). It is fingerprinted with
copydetect's pieces, winnowing as in MOSS (Schleimer, Wilkerson & Aiken, "Winnowing: local
algorithms for document fingerprinting", SIGMOD 2003): pygments tokens with names, strings and
comments normalised (renaming variables changes nothing), hashes of k-grams of that text, the
minimum of each window kept. Every k-gram of the release notebook's code (the stubs, set-up
and test cells) is template and removed, so two learners who only kept the stubs share nothing.

The k-gram hash is blake2b rather than copydetect's `hash()`, which Python salts per process:
the same class gives the same scores run after run. A pair's similarity is, for each learner,
the share of their fingerprinted code found in the other's (MOSS reports both); the pair is
ranked by the larger.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
from copydetect import compare_files
from copydetect.defaults import GUARANTEE_THRESHOLD, NOISE_THRESHOLD
from copydetect.utils import filter_code, get_token_coverage, highlight_overlap, winnow

from autograder.collect import Submission, collect
from autograder.context import Options
from autograder.notebook import (
    Cell,
    NotebookError,
    SourceCell,
    assignment_cells,
    learner_script,
    parse_notebook,
)
from autograder.spec import read_bundle

PAIRS_CSV, REPORT_HTML = "similarity.csv", "similarity.html"
PAIR_COLUMNS = ("rank", "student_a", "student_b", "similarity_a", "similarity_b", "tokens")


@dataclass(frozen=True)
class Fingerprint:
    """One learner's winnowed code, with the attribute names copydetect.compare_files reads."""

    raw_code: str
    filtered_code: str  # names -> V, strings -> S, comments and whitespace dropped
    offsets: np.ndarray  # (N, 2): filtered index -> characters removed before it
    hashes: set[int]  # fingerprints left after the template is removed
    hash_idx: dict[int, list[int]]  # fingerprint -> its start indices in filtered_code
    k: int
    token_coverage: float  # filtered characters covered by the kept fingerprints


@dataclass(frozen=True)
class Pair:
    """Two learners and how much of each one's own code is found in the other's."""

    a: str
    b: str
    similarity_a: float  # share of a's fingerprinted code also in b's
    similarity_b: float
    tokens: int  # filtered characters of a in the shared k-grams
    slices_a: np.ndarray  # (2, N) start/end of shared code in a's raw code
    slices_b: np.ndarray

    @property
    def score(self) -> float:
        return max(self.similarity_a, self.similarity_b)


@dataclass
class ClassSimilarity:
    """Every pair of a class, closest first, and the students left out (with why)."""

    pairs: list[Pair]
    code: dict[str, str]  # student -> the learner code compared
    skipped: dict[str, str]


def kgram_hashes(text: str, k: int) -> np.ndarray:
    """Stable 63-bit hashes of every k-gram of `text`: (len(text) - k + 1,) int64."""
    grams = (text[i : i + k].encode() for i in range(len(text) - k + 1))
    return np.array(
        [int.from_bytes(hashlib.blake2b(g, digest_size=8).digest()) >> 1 for g in grams],
        dtype=np.int64,
    )


def fingerprint(
    code: str,
    template: set[int],
    k: int = NOISE_THRESHOLD,
    window: int = GUARANTEE_THRESHOLD - NOISE_THRESHOLD + 1,
) -> Fingerprint:
    """Winnow `code` (Python) and drop every fingerprint that is a k-gram of the template.

    `k` is the noise threshold (shorter matches are ignored); a match of at least
    `k + window - 1` characters of filtered code is always found (Schleimer et al., §3).
    """
    filtered, offsets = filter_code(code, "learner.py", "python")
    selected, idx = winnow(kgram_hashes(filtered, k), window, remove_duplicates=False)
    hash_idx: dict[int, list[int]] = {}
    for h, i in zip(selected.tolist(), idx.tolist(), strict=True):
        if h not in template:
            hash_idx.setdefault(h, []).append(i)
    coverage = float(get_token_coverage(hash_idx, k, len(filtered)))
    return Fingerprint(code, filtered, offsets, set(hash_idx), hash_idx, k, coverage)


def template_hashes(
    release: list[Cell], assignment: list[SourceCell], k: int = NOISE_THRESHOLD
) -> set[int]:
    """Every k-gram hash of what all learners were given: each code cell of the release, and
    its stubs as `learner_code` joins them (k-grams across two untouched stubs are template)."""
    texts = [c.source for c in release if c.cell_type == "code"]
    hashes: set[int] = set()
    for text in [*texts, learner_code(release, assignment)]:
        filtered, _ = filter_code(text, "template.py", "python")
        hashes.update(kgram_hashes(filtered, k).tolist())
    return hashes


def learner_code(cells: list[Cell], assignment: list[SourceCell]) -> str:
    """The code a learner wrote: solution cells and added cells, each under a comment naming it."""
    return "\n".join(
        f"# --- {c['id']} ---\n{c['source'].rstrip()}\n"
        for c in learner_script(cells, assignment)
        if not c.get("trusted")
    )


def compare_class(
    release: bytes, submissions: list[Submission], max_bytes: int, k: int = NOISE_THRESHOLD
) -> ClassSimilarity:
    """All pairs of learners, closest first (ties: more shared code, then names)."""
    release_cells = parse_notebook(release, 2**30)
    assignment = assignment_cells(release_cells, release_cells)  # roles from nbgrader metadata
    template = template_hashes(release_cells, assignment, k)
    code, prints, skipped = {}, {}, {}
    for sub in submissions:
        if sub.data is None:
            skipped[sub.student] = sub.problem
            continue
        try:
            code[sub.student] = learner_code(parse_notebook(sub.data, max_bytes), assignment)
        except NotebookError as exc:
            skipped[sub.student] = str(exc)
            continue
        prints[sub.student] = fingerprint(code[sub.student], template, k)
    names = sorted(prints)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            tokens, (sim_a, sim_b), (slices_a, slices_b) = compare_files(prints[a], prints[b])
            pairs.append(Pair(a, b, float(sim_a), float(sim_b), int(tokens), slices_a, slices_b))
    pairs.sort(key=lambda p: (-p.score, -p.tokens, p.a, p.b))
    return ClassSimilarity(pairs, code, skipped)


def check_class(
    assignment: str,
    submissions: Path,
    out: Path,
    course_root: Path,
    pattern: str | None = None,
    top: int = 20,
) -> ClassSimilarity:
    """Read the release and the submissions (only read), compare, write the report to `out`."""
    bundle = read_bundle(assignment, course_root)
    max_bytes = Options().max_notebook_bytes
    subs = collect(submissions, assignment, bundle.notebook, max_bytes, pattern)
    result = compare_class(bundle.release, subs, max_bytes)
    write_report(result, out, assignment, top)
    return result


def write_report(result: ClassSimilarity, out: Path, assignment: str, top: int = 20) -> None:
    """`similarity.csv` (every pair) and `similarity.html` (the `top` closest, side by side)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / PAIRS_CSV, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(PAIR_COLUMNS)
        for rank, p in enumerate(result.pairs, start=1):
            writer.writerow(
                (rank, p.a, p.b, f"{p.similarity_a:.3f}", f"{p.similarity_b:.3f}", p.tokens)
            )
    (out / REPORT_HTML).write_text(_html(result, assignment, top))


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; }
table { border-collapse: collapse; }
td, th { border-bottom: 1px solid #ddd; padding: .3rem .6rem; text-align: left; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
pre { background: #f6f6f6; padding: .6rem; white-space: pre-wrap; overflow-wrap: anywhere;
      font-size: .85rem; }
mark { background: #ffd97a; }
"""


def _html(result: ClassSimilarity, assignment: str, top: int) -> str:
    shown = [p for p in result.pairs[:top] if p.tokens > 0]
    rows = "\n".join(
        f'<tr><td><a href="#pair-{n}">{n}</a></td><td>{escape(p.a)}</td><td>{escape(p.b)}</td>'
        f"<td>{p.similarity_a:.0%}</td><td>{p.similarity_b:.0%}</td><td>{p.tokens}</td></tr>"
        for n, p in enumerate(shown, start=1)
    )
    sections = "\n".join(
        f'<section id="pair-{n}"><h2>{n}. {escape(p.a)} and {escape(p.b)}</h2><div class="side">'
        f"<div><h3>{escape(p.a)}: {p.similarity_a:.0%} of their code also in the other's</h3>"
        f"<pre>{_marked(result.code[p.a], p.slices_a)}</pre></div>"
        f"<div><h3>{escape(p.b)}: {p.similarity_b:.0%}</h3>"
        f"<pre>{_marked(result.code[p.b], p.slices_b)}</pre></div></div></section>"
        for n, p in enumerate(shown, start=1)
    )
    skipped = "".join(
        f"<li>{escape(s)}: {escape(why)}</li>" for s, why in sorted(result.skipped.items())
    )
    skipped_html = f"<h2>Not compared</h2><ul>{skipped}</ul>" if skipped else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{escape(assignment)}: code similarity</title><style>{_CSS}</style></head>
<body>
<h1>{escape(assignment)}: code similarity</h1>
<p>The closest pairs of {len(result.code)} learners' code, with the release's template code
removed (winnowing, as MOSS). A high share is a reason to look, not a finding: short
exercises have few ways to be solved. Scores are not changed by this report. Every pair is in
{PAIRS_CSV}.</p>
<table><tr><th>#</th><th>learner A</th><th>learner B</th><th>A's code in B</th>
<th>B's code in A</th><th>shared characters</th></tr>
{rows}
</table>
{sections}
{skipped_html}
</body></html>
"""


def _marked(code: str, slices: np.ndarray) -> str:
    """`code` HTML-escaped, the shared slices in <mark>."""
    if slices.size == 0:
        return escape(code)
    marked, _ = highlight_overlap(code, slices, "<mark>", "</mark>", escape_html=True)
    return marked
