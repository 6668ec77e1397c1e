"""Small causal language models to evaluate on a CPU: tokenizers, an n-gram model, a trainer.

The models follow the evaluation interface `model(input_ids (B, T)) -> logits (B, T, V)`.

- `CharTokenizer`: one token per character; `WordTokenizer`: one token per word or
  punctuation mark (whitespace is dropped). Unknown characters or words map to id 0.
- `NGramLM`: counts of the tokens that follow every context of up to n − 1 tokens,
  interpolated across orders (Jelinek and Mercer 1980) with add-one smoothing at the
  unigram level, so every token keeps a non-zero probability. It is "trained" by counting,
  in seconds, and memorises its training text: a clean model of contamination.
- `train_causal_lm`: next-token cross-entropy training of any torch model on random
  windows of a token stream, through the course's one loop (`course_lib.training.train`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from course_lib.training.loop import TrainConfig, train


class CharTokenizer:
    """Characters <-> ids over the alphabet of a training text; id 0 is the unknown character."""

    UNKNOWN = "\ufffd"

    def __init__(self, text: str) -> None:
        self.chars = [self.UNKNOWN] + sorted(set(text) - {self.UNKNOWN})
        self.index = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(c, 0) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)


class WordTokenizer:
    """Words and punctuation marks of a training text <-> ids; id 0 is the unknown word."""

    PATTERN = re.compile(r"\w+|[^\w\s]")

    def __init__(self, text: str) -> None:
        self.words = ["<unk>"] + sorted(set(self.PATTERN.findall(text)))
        self.index = {w: i for i, w in enumerate(self.words)}

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(w, 0) for w in self.PATTERN.findall(text)]

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self.words[int(i)] for i in ids)


class NGramLM:
    """Interpolated n-gram model: p(c | h) = Σ_k λ_k p_k(c | last k chars of h).

    Orders whose context was never seen give their weight to the lower orders; the weights
    λ_k are `weights` (default: equal).
    """

    def __init__(
        self, ids: list[int], vocab_size: int, n: int = 5, weights: Sequence[float] | None = None
    ) -> None:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        self.n, self.vocab_size = n, vocab_size
        self.weights = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        counts: list[dict[tuple, Counter]] = [defaultdict(Counter) for _ in range(n)]
        counts[0][()].update(range(vocab_size))  # add-one smoothing of the unigram level
        for t, token in enumerate(ids):
            for k in range(min(n, t + 1)):
                counts[k][tuple(ids[t - k : t])][token] += 1
        # Sparse next-token distributions: context -> (token ids, probabilities).
        self.tables = [
            {ctx: _normalised(counter) for ctx, counter in table.items()} for table in counts
        ]

    def distribution(self, history: tuple) -> np.ndarray:
        """p(next character | history), shape (V,)."""
        mix, weight = np.zeros(self.vocab_size), 0.0
        for k in range(min(self.n, len(history) + 1)):
            entry = self.tables[k].get(history[len(history) - k :] if k else ())
            if entry is not None:
                tokens, probs = entry
                mix[tokens] += self.weights[k] * probs
                weight += self.weights[k]
        return mix / weight

    def __call__(self, input_ids: torch.Tensor) -> torch.Tensor:
        """input_ids (B, T) -> log-probabilities (B, T, V), used as logits."""
        ids = input_ids.tolist()
        out = np.empty((len(ids), len(ids[0]), self.vocab_size))  # (B, T, V)
        for b, row in enumerate(ids):
            for t in range(len(row)):
                out[b, t] = self.distribution(tuple(row[max(0, t + 2 - self.n) : t + 1]))
        return torch.from_numpy(np.log(out))


def _normalised(counter: Counter) -> tuple[np.ndarray, np.ndarray]:
    tokens = np.fromiter(counter.keys(), dtype=np.int64)
    counts = np.fromiter(counter.values(), dtype=np.float64)
    return tokens, counts / counts.sum()


def train_causal_lm(
    model: torch.nn.Module,
    ids: torch.Tensor,
    steps: int,
    batch_size: int = 16,
    seq_len: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
) -> list[float]:
    """Train `model` for `steps` AdamW steps on random windows of `ids` (N,); the losses.

    The course's one loop (`course_lib.training.train`) with Adam's default betas, no weight
    decay, no warm-up, no clipping and a cosine decay to 0: a short run on a small model.
    """
    config = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        seq_len=seq_len,
        lr=lr,
        min_lr=0.0,
        warmup=0,
        weight_decay=0.0,
        betas=(0.9, 0.999),
        max_grad_norm=None,
        seed=seed,
        progress=False,
    )
    return train(model, ids, config=config).losses
