"""An offline corpus and a question set: the Python language reference in `pydoc_data`.

Every CPython ships the plain-text topics of its language reference as
`pydoc_data.topics.topics` (what `help("for")` prints): 79 documents, ~465 kB, PSF-licensed,
no download. The questions below are answered by one short span of one document each (the
`evidence`, copied verbatim), so a chunk is relevant to a question exactly when it contains
the whole span, for any chunking. `answers` are the strings a correct answer contains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from course_lib.retrieval.chunking import Chunk


def python_reference(max_chars: int | None = None) -> dict[str, str]:
    """The language reference topics `{name: text}`, in the module's order.

    Topics whose text repeats an earlier one are dropped ("else" is the "if" page);
    `max_chars` keeps only the documents of at most that many characters.
    """
    from pydoc_data.topics import topics

    seen: set[str] = set()
    docs = {}
    for name, text in topics.items():
        if text in seen or (max_chars is not None and len(text) > max_chars):
            continue
        seen.add(text)
        docs[name] = text
    return docs


@dataclass(frozen=True)
class Question:
    """A question, the strings a correct answer contains, and where the reference says it."""

    question: str
    answers: tuple[str, ...]
    doc: str
    evidence: str

    def is_correct(self, answer: str) -> bool:
        """Whether `answer` contains one of `answers` (case-insensitive)."""
        return any(a.lower() in answer.lower() for a in self.answers)


QUESTIONS: tuple[Question, ...] = (
    Question(
        "What does the pass statement do when it is executed?",
        ("nothing",),
        "pass",
        '"pass" is a null operation — when it is executed, nothing happens.',
    ),
    Question(
        "Which exception is raised when a generator function returns?",
        ("StopIteration",),
        "return",
        'the\ngenerator is done and will cause "StopIteration" to be raised.',
    ),
    Question(
        "Which exception does deleting an unbound name raise?",
        ("NameError",),
        "del",
        'If the name is unbound, a\n"NameError" exception will be raised.',
    ),
    Question(
        "What is the real part of the complex number an imaginary literal yields?",
        ("0.0", "zero"),
        "imaginary",
        "An imaginary literal yields a complex number with a real part of 0.0.",
    ),
    Question(
        "Which command line option makes __debug__ False?",
        ("-O",),
        "assert",
        '"False" when optimization is requested (command\nline option "-O")',
    ),
    Question(
        "A right shift by n bits is defined as what operation?",
        ("floor division",),
        "shifting",
        'A right shift by *n* bits is defined as floor division by "pow(2,n)".',
    ),
    Question(
        "What limits the length of an integer literal in Python?",
        ("memory",),
        "integers",
        "There is no limit for the length of integer literals apart from what\n"
        "can be stored in available memory.",
    ),
    Question(
        "What does -1**2 evaluate to in Python?",
        ("to -1", "is -1", "`-1`", '"-1"'),  # not "-1" alone: "-1**2 is 1" contains it
        "power",
        '"-1**2" results in "-1".',
    ),
)


def relevant_chunks(chunks: Sequence[Chunk], documents: dict[str, str], q: Question) -> set[int]:
    """Indices of the chunks that contain the whole evidence span of `q`."""
    text = documents[q.doc]
    start = text.find(q.evidence)
    if start < 0:
        raise ValueError(f"the evidence of {q.question!r} is not in document {q.doc!r}")
    end = start + len(q.evidence)
    return {i for i, c in enumerate(chunks) if c.doc == q.doc and c.start <= start and end <= c.end}
