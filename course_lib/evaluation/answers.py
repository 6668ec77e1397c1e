"""Exact-match scoring of free-form answers, e.g. chain-of-thought solutions to GSM8K.

With chain-of-thought prompting (Wei et al. 2022) the model writes its reasoning and then
an answer; only the final answer is graded. GSM8K's reference solutions end with
"#### 72" (Cobbe et al. 2021); few-shot prompts usually end each worked example with
"The answer is 72." The extractor looks for those markers, then for a LaTeX \\boxed{…},
and otherwise takes the last number in the text. Numbers are normalised before
comparison ("1,000", "$1000.00" and "1000" all match).
"""

from __future__ import annotations

import re

_NUMBER = r"-?\$?\s?\d[\d,]*(?:\.\d+)?"
_MARKERS = [
    re.compile(r"####\s*(" + _NUMBER + ")"),
    re.compile(r"answer is:?\s*\**\s*(" + _NUMBER + ")", re.IGNORECASE),
    re.compile(r"\\boxed\{\s*(" + _NUMBER + r")\s*\}"),
]
_ANY_NUMBER = re.compile(_NUMBER)


def normalize_number(text: str) -> str:
    """'$1,000.00' -> '1000', '-3.50' -> '-3.5'; text that is not a number is only stripped."""
    cleaned = text.strip().replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    try:
        value = float(cleaned)
    except ValueError:
        return text.strip()
    if value == int(value):
        return str(int(value))
    return repr(value)


def extract_answer(completion: str) -> str | None:
    """The final answer of a completion, normalised, or None when it holds no number.

    Markers are tried in order ("#### X", "answer is X", "\\boxed{X}"); for each, its last
    occurrence wins. Without a marker, the last number in the text is taken.
    """
    for marker in _MARKERS:
        found = marker.findall(completion)
        if found:
            return normalize_number(found[-1])
    numbers = _ANY_NUMBER.findall(completion)
    return normalize_number(numbers[-1]) if numbers else None


def exact_match(completion: str, reference: str) -> bool:
    """True when the completion's extracted answer equals the normalised reference."""
    answer = extract_answer(completion)
    return answer is not None and answer == normalize_number(reference)
