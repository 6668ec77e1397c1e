"""Training byte-level BPE: count adjacent pairs, merge the most frequent, repeat.

Sennrich et al. 2016 (arXiv:1508.07909), on bytes as in GPT-2 (Radford et al. 2019). The text
is pre-tokenized (`bpe.pretokenize`) and merges never cross chunks, so only the distinct
chunks and their counts matter. Each step merges the most frequent pair; ties go to the
smallest pair (comparing the two byte strings, then the second), which makes the result
deterministic. Pair counts are updated only in the chunks that contain the merged pair, and a
heap with stale entries skipped finds the maximum, so a few hundred merges take seconds.

API
- `train_bpe(text, n_merges, pattern=GPT2_PATTERN, split_digits=False, special_tokens=())
  -> BPETokenizer`: ids 0-255 are the bytes, 256 + r the merge of rank r, then the specials
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable

from tqdm.auto import tqdm

from course_lib.tokenizers.bpe import GPT2_PATTERN, BPETokenizer, Pair, pretokenize


def _pairs(word: tuple[bytes, ...]) -> Counter[Pair]:
    return Counter(zip(word, word[1:], strict=False))


def _apply(word: tuple[bytes, ...], pair: Pair) -> tuple[bytes, ...]:
    """Every occurrence of `pair` in `word` merged, left to right."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def train_bpe(
    text: str,
    n_merges: int,
    pattern: str = GPT2_PATTERN,
    split_digits: bool = False,
    special_tokens: Iterable[str] = (),
    progress: bool = False,
) -> BPETokenizer:
    """Learn up to `n_merges` merges from `text` (fewer if no pair is left to merge)."""
    if n_merges < 0:
        raise ValueError(f"n_merges must be >= 0, got {n_merges}")
    chunk_counts = Counter(pretokenize(text, pattern, split_digits))
    words = [tuple(bytes([b]) for b in chunk.encode("utf-8")) for chunk in chunk_counts]
    freq = list(chunk_counts.values())
    counts: Counter[Pair] = Counter()
    where: dict[Pair, set[int]] = defaultdict(set)  # pair -> indices of the words holding it
    for w, word in enumerate(words):
        for pair, n in _pairs(word).items():
            counts[pair] += n * freq[w]
            where[pair].add(w)
    heap = [(-n, pair) for pair, n in counts.items()]
    heapq.heapify(heap)

    merges: list[Pair] = []
    for _ in tqdm(range(n_merges), desc="BPE merges", disable=not progress):
        while heap and counts.get(heap[0][1], 0) != -heap[0][0]:
            heapq.heappop(heap)  # stale: the pair's count changed since it was pushed
        if not heap:
            break
        _, best = heapq.heappop(heap)
        merges.append(best)
        changed: set[Pair] = set()
        for w in where.pop(best):
            old, new = words[w], _apply(words[w], best)
            for pair, n in _pairs(old).items():
                counts[pair] -= n * freq[w]
                changed.add(pair)
            for pair, n in _pairs(new).items():
                counts[pair] += n * freq[w]
                where[pair].add(w)
                changed.add(pair)
            words[w] = new
        for pair in changed:
            if counts[pair] > 0:
                heapq.heappush(heap, (-counts[pair], pair))
            else:
                del counts[pair]
                where.pop(pair, None)
    vocab = {b: bytes([b]) for b in range(256)}
    vocab.update({256 + r: a + b for r, (a, b) in enumerate(merges)})
    special = {t: len(vocab) + i for i, t in enumerate(dict.fromkeys(special_tokens))}
    return BPETokenizer(vocab, merges, special, pattern, split_digits)
