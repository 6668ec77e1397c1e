"""The graded assignments, each with plausible wrong answers that must lose some points.

Adding an assignment to `ASSIGNMENTS` is all it takes for tests/test_assignments.py to check
its nbgrader round trip: the committed release is current, the source scores full marks,
the release scores zero and gives no free points, and every wrong answer gets partial credit.
A wrong answer is a mistake a learner could make, written as an edit of the source solution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import nbformat

Notebooks = dict[str, nbformat.NotebookNode]  # notebook file name -> notebook


@dataclass(frozen=True)
class WrongAnswer:
    """A named edit of the source notebooks that should cost some, but not all, points."""

    name: str
    edit: Callable[[Notebooks], None]


@dataclass(frozen=True)
class Assignment:
    name: str
    wrong_answers: tuple[WrongAnswer, ...]


def replace_in_cell(name: str, grade_id: str, old: str, new: str) -> WrongAnswer:
    """A wrong answer replacing `old` (which must occur once) by `new` in cell `grade_id`."""

    def edit(notebooks: Notebooks) -> None:
        cells = [
            cell
            for nb in notebooks.values()
            for cell in nb.cells
            if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id
        ]
        assert len(cells) == 1, f"{name}: no single cell with grade_id {grade_id!r}"
        count = cells[0].source.count(old)
        assert count == 1, f"{name}: {old!r} occurs {count} times in {grade_id!r}, expected once"
        cells[0].source = cells[0].source.replace(old, new)

    return WrongAnswer(name, edit)


ASSIGNMENTS = [
    Assignment(
        "ps01",
        (
            # A matrix product instead of a row-wise one: right on vectors, wrong on batches.
            replace_in_cell("dot_matmul", "ex1_dot", "np.sum(a * b, axis=-1)", "a @ b.T"),
            # Plain division: nan instead of 0 for zero vectors.
            replace_in_cell(
                "cosine_nan",
                "ex2_cosine",
                "np.where(norms > 0, dot(a, b) / safe, 0.0)",
                "dot(a, b) / norms",
            ),
            # Forgot that argsort is ascending: worst first.
            replace_in_cell(
                "top_k_ascending", "ex3_top_k", "np.argsort(-scores)", "np.argsort(scores)"
            ),
            # Ranks by dot product: long rows win.
            replace_in_cell(
                "top_k_by_dot",
                "ex3_top_k",
                "cosine_similarity(np.asarray(corpus, dtype=np.float64), query)",
                "dot(np.asarray(corpus, dtype=np.float64), query)",
            ),
            # Keeps the query words as candidates: usually returns c (or b) itself.
            replace_in_cell(
                "analogy_keeps_query_words", "ex4_analogy", "if word in (a, b, c):", "if False:"
            ),
        ),
    ),
    Assignment(
        "ps04",
        (
            # Counts K and V with n_heads instead of n_kv_heads: right for MHA, wrong for GQA.
            replace_in_cell(
                "gqa_ignored",
                "ex1_dense",
                "2 * d_model * n_kv_heads * head_dim",
                "2 * d_model * n_heads * head_dim",
            ),
            # Every expert counted as active.
            replace_in_cell(
                "moe_active_all_experts",
                "ex2_moe",
                "active = dense + n_layers * ((top_k - 1) * expert + router)",
                "active = total",
            ),
            # Forward pass only: 2ND instead of 6ND.
            replace_in_cell(
                "compute_forward_only",
                "ex3_compute",
                "return 6.0 * n_params * n_tokens",
                "return 2.0 * n_params * n_tokens",
            ),
            # Leaves out the attention FLOPs: PaLM's 45.7% instead of 46.2%.
            replace_in_cell(
                "mfu_without_attention",
                "ex4_mfu",
                " + 12.0 * n_layers * n_heads * head_dim * seq_len",
                "",
            ),
        ),
    ),
]
