"""course_lib.embeddings.analogy: 3CosAdd analogies (Mikolov, Yih & Zweig 2013)."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.embeddings.analogy import analogy
from course_lib.grading import embedding_cases

# dimensions: [royal, male, person, good, comparative]
VOCAB = {
    "king": np.array([1.0, 1.0, 1.0, 0.0, 0.0]),
    "queen": np.array([1.0, -1.0, 1.0, 0.0, 0.0]),
    "man": np.array([0.0, 1.0, 1.0, 0.0, 0.0]),
    "woman": np.array([0.0, -1.0, 1.0, 0.0, 0.0]),
    "good": np.array([0.0, 0.0, 0.0, 5.0, 0.0]),
    "better": np.array([0.0, 0.0, 0.0, 5.0, 1.0]),
    "bad": np.array([0.0, 0.0, 0.0, -5.0, 0.0]),
    "worse": np.array([0.0, 0.0, 0.0, -4.0, 2.0]),
}


def test_king_minus_man_plus_woman_is_queen():
    # king - man + woman = [1, -1, 1, 0, 0], queen by construction
    assert analogy("man", "king", "woman", VOCAB) == "queen"
    assert analogy("woman", "queen", "man", VOCAB) == "king"


def test_query_words_are_excluded():
    # better - good + bad = [0, 0, 0, -5, 1]: cosine 25/(5 sqrt 26) = 0.98 with "bad",
    # 22/(sqrt 26 sqrt 20) = 0.96 with "worse"
    assert analogy("good", "better", "bad", VOCAB) == "worse"


def _loop_analogy(a, b, c, vocab):
    target = [vb - va + vc for va, vb, vc in zip(vocab[a], vocab[b], vocab[c], strict=True)]
    best, best_score = None, -2.0
    for word, vector in vocab.items():
        if word in (a, b, c):
            continue
        dot = sum(t * v for t, v in zip(target, vector, strict=True))
        norms = np.sqrt(sum(t * t for t in target)) * np.sqrt(sum(v * v for v in vector))
        score = dot / norms if norms > 0 else 0.0
        if score > best_score:
            best, best_score = word, score
    return best


def test_matches_an_explicit_loop_on_random_vocabularies():
    for case in embedding_cases.analogy_cases(seed=0, n=30):
        assert analogy(*case.args) == _loop_analogy(*case.args), case.label


def test_needs_a_fourth_word():
    with pytest.raises(ValueError, match="no word besides"):
        analogy("man", "king", "woman", {w: VOCAB[w] for w in ("man", "king", "woman")})
