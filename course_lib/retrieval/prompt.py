"""Prompt assembly with citations: numbered passages, the question, and the cited numbers.

The retrieved passages go into the prompt numbered `[1]`, `[2]`, ... with their source, and
the model is asked to answer from them and cite the numbers it used, as in WebGPT (Nakano
et al. 2021) and the attributed-QA setups since; the numbers let a reader (or a check)
trace each claim to a passage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

INSTRUCTION = (
    "Answer the question using only the numbered passages below. Cite the passages you use as [n]."
)


def format_context(passages: Sequence[str], sources: Sequence[str]) -> str:
    """`[1] (source) passage`, one block per passage, separated by a blank line.

    Whitespace at either end of a passage is stripped.
    """
    if len(passages) != len(sources):
        raise ValueError(f"{len(passages)} passages but {len(sources)} sources: give one each")
    return "\n\n".join(
        f"[{i}] ({src}) {p.strip()}"
        for i, (p, src) in enumerate(zip(passages, sources, strict=True), 1)
    )


def build_prompt(question: str, passages: Sequence[str], sources: Sequence[str]) -> str:
    """The instruction, the numbered passages, then `Question: ...` and `Answer:`.

    With no passages it is the bare question (`Question: ...\\nAnswer:`): the closed-book
    baseline.
    """
    tail = f"Question: {question.strip()}\nAnswer:"
    if not passages:
        return tail
    return f"{INSTRUCTION}\n\n{format_context(passages, sources)}\n\n{tail}"


def cited_sources(answer: str, n_passages: int) -> list[int]:
    """The passage numbers `[n]` cited in `answer`, in order of first citation, that exist
    (1 <= n <= n_passages); `[1, 3]` and `[1][3]` both count."""
    cited: list[int] = []
    for group in re.findall(r"\[(\d+(?:\s*,\s*\d+)*)\]", answer):
        for n in (int(x) for x in group.split(",")):
            if 1 <= n <= n_passages and n not in cited:
                cited.append(n)
    return cited
