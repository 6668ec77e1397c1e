"""Word analogies by vector arithmetic.

"a is to b as c is to ?" is answered by the word whose vector is nearest, by cosine, to
`b - a + c`, the three query words excluded: Mikolov, Yih & Zweig (2013), "Linguistic
Regularities in Continuous Space Word Representations" (king - man + woman ≈ queen);
Levy & Goldberg (2014) call this rule 3CosAdd.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from course_lib.embeddings.similarity import pairwise_cosine


def analogy(a: str, b: str, c: str, vocab: Mapping[str, np.ndarray]) -> str:
    """The word `x` with `a : b = c : x`: argmax of cos(v_x, v_b - v_a + v_c), x not in {a, b, c}.

    `vocab` maps words to vectors `(d,)`; ties go to the word that comes first in `vocab`.
    """
    target = np.asarray(vocab[b], float) - np.asarray(vocab[a], float) + np.asarray(vocab[c], float)
    candidates = [w for w in vocab if w not in (a, b, c)]
    if not candidates:
        raise ValueError("the vocabulary has no word besides the three query words")
    vectors = np.stack([np.asarray(vocab[w], float) for w in candidates])  # (V - 3, d)
    scores = pairwise_cosine(target[None, :], vectors)[0]  # (V - 3,)
    return candidates[int(np.argmax(scores))]
