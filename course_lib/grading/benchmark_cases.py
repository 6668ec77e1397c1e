"""Seeded inputs for the benchmark exercises (ps04): tiny causal models, token ids, battles.

`TinyCausalLM` is a deterministic stand-in for a language model: its logits at position t
depend on every token up to t (a causal running mean of embeddings) and on t itself, so an
off-by-one in "which logits predict which token" changes the result. Multiple-choice
cases have no near-ties, so any correct scoring picks the reference's choice; battle logs
always have finite Bradley–Terry ratings.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from course_lib.evaluation.multiple_choice import choice_logprobs, normalize_scores
from course_lib.evaluation.ratings import bradley_terry, simulate_battles
from course_lib.grading.checks import Case, random_cases

_GAP = 1e-3  # minimum margin between the best and second-best choice score


class TinyCausalLM(nn.Module):
    """logits_t = W · tanh(mean(emb(x_≤t)) + pos_t): (B, T) token ids -> (B, T, V) logits."""

    def __init__(self, vocab_size: int = 13, d: int = 16, max_len: int = 128, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.embed = nn.Parameter(torch.randn(vocab_size, d, generator=g))
        self.pos = nn.Parameter(0.5 * torch.randn(max_len, d, generator=g))
        self.out = nn.Parameter(torch.randn(d, vocab_size, generator=g))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed[ids]  # (B, T, d)
        counts = torch.arange(1, ids.shape[1] + 1, device=ids.device)[:, None]  # (T, 1)
        h = torch.cumsum(x, dim=1) / counts + self.pos[: ids.shape[1]]  # (B, T, d), causal
        return torch.tanh(h) @ self.out  # (B, T, V)


class FixedDistributionLM(nn.Module):
    """A 'model' that predicts the same next-token distribution `probs` at every position."""

    def __init__(self, probs) -> None:
        super().__init__()
        self.register_buffer("logits", torch.log(torch.as_tensor(probs, dtype=torch.float64)))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(*ids.shape, self.logits.numel())  # (B, T, V)


def _tokens(rng: np.random.Generator, vocab: int, low: int, high: int) -> list[int]:
    return rng.integers(0, vocab, int(rng.integers(low, high + 1))).tolist()


def _model(rng: np.random.Generator) -> TinyCausalLM:
    return TinyCausalLM(vocab_size=int(rng.integers(5, 30)), seed=int(rng.integers(1 << 30)))


def logprob_cases(seed: int, n: int) -> list[Case]:
    """`(model, context ids, continuation ids)`; edge cases: one-token context and continuation."""
    fixed = FixedDistributionLM([0.2, 0.6, 0.2])
    edge = [
        Case((fixed, [2], [1, 1, 1]), label="fixed distribution: 3 ln 0.6"),
        Case((TinyCausalLM(seed=1), [4], [7]), label="one-token context and continuation"),
        Case((TinyCausalLM(seed=2), [1, 2, 3, 4, 5, 6, 7, 8], [9]), label="long context"),
    ]

    def make(rng: np.random.Generator) -> Case:
        model = _model(rng)
        vocab = model.out.shape[1]
        return Case((model, _tokens(rng, vocab, 1, 10), _tokens(rng, vocab, 1, 6)), label="random")

    return random_cases(seed, n, make, edge_cases=edge)


def _margin(model, context, choices, normalize: bool) -> float:
    scores = choice_logprobs(model, context, choices)
    if normalize:
        scores = normalize_scores(scores, "token", n_tokens=[len(c) for c in choices])
    top = np.sort(scores)[::-1]
    return float(top[0] - top[1])


def choice_cases(seed: int, n: int) -> list[Case]:
    """`(model, context, choices, normalize)` with a clear winner; normalizing can flip it."""
    fixed = FixedDistributionLM([0.2, 0.6, 0.2])
    edge = [
        Case((fixed, [2], [[0], [1, 1, 1, 1]], False), label="summed: the short choice wins"),
        Case((fixed, [2], [[0], [1, 1, 1, 1]], True), label="per token: the long choice wins"),
        Case((TinyCausalLM(seed=3), [1, 2], [[5]], False), label="a single choice"),
    ]

    def make(rng: np.random.Generator) -> Case:
        while True:
            model = _model(rng)
            vocab = model.out.shape[1]
            context = _tokens(rng, vocab, 1, 8)
            choices = [_tokens(rng, vocab, 1, 5) for _ in range(int(rng.integers(2, 6)))]
            normalize = bool(rng.random() < 0.5)
            if _margin(model, context, choices, normalize) > _GAP:
                return Case((model, context, choices, normalize), label="random")

    return random_cases(seed, n, make, edge_cases=edge)


def perplexity_cases(seed: int, n: int) -> list[Case]:
    """`(model, ids, window, stride)`: sliding, non-overlapping, and window ≥ corpus."""
    model = TinyCausalLM(seed=4)
    ids = np.random.default_rng(5).integers(0, 13, 40).tolist()
    edge = [
        Case((FixedDistributionLM([0.25] * 4), [0, 1, 2, 3, 0, 1], 3, 3), label="uniform: PPL 4"),
        Case((model, ids, 64, 64), label="window longer than the corpus"),
        Case((model, ids, 8, 8), label="non-overlapping windows (stride = window)"),
        Case((model, ids, 8, 2), label="sliding window"),
        Case((model, ids[:2], 4, 1), label="two tokens"),
    ]

    def make(rng: np.random.Generator) -> Case:
        model = _model(rng)
        window = int(rng.integers(2, 16))
        stride = int(rng.integers(max(1, window // 4), window + 1))
        ids = _tokens(rng, model.out.shape[1], 2, 40)
        return Case((model, ids, window, stride), label="random")

    return random_cases(seed, n, make, edge_cases=edge)


def elo_cases(seed: int, n: int) -> list[Case]:
    """`(r_a, r_b, score_a, k)`: wins, losses and ties between random ratings."""
    edge = [
        Case((1000.0, 1000.0, 1.0, 32.0), label="equal ratings, a wins"),
        Case((1000.0, 1000.0, 0.5, 32.0), label="equal ratings, tie"),
        Case((1400.0, 1000.0, 0.0, 16.0), label="upset: the weaker model wins"),
        Case((1200.0, 1600.0, 0.5, 4.0), label="tie against a stronger model, K = 4"),
    ]

    def make(rng: np.random.Generator) -> Case:
        r_a, r_b = rng.uniform(600, 1600, 2).tolist()
        score = float(rng.choice([0.0, 0.5, 1.0]))
        return Case((r_a, r_b, score, float(rng.choice([4.0, 16.0, 32.0]))), label="random")

    return random_cases(seed, n, make, edge_cases=edge)


def _battles(rng: np.random.Generator, m: int, n_battles: int, tie_probability: float):
    names = [f"model-{chr(ord('a') + i)}" for i in range(m)]
    while True:
        ratings = dict(zip(names, rng.normal(1000, 150, m).tolist(), strict=True))
        battles = simulate_battles(ratings, n_battles, int(rng.integers(1 << 30)), tie_probability)
        try:
            bradley_terry(battles)
        except ValueError:  # some model never lost or never won: draw again
            continue
        return battles


def battle_cases(seed: int, n: int) -> list[Case]:
    """`(battles,)`: logs of (model_a, model_b, score_a) with finite Bradley–Terry ratings."""
    edge = [
        Case(([("x", "y", 1.0), ("y", "x", 1.0), ("x", "y", 1.0)],), label="two models, 2:1"),
        Case(([("x", "y", 0.5), ("y", "z", 0.5), ("z", "x", 0.5)],), label="only ties"),
        Case(([("x", "y", 1.0), ("y", "z", 1.0), ("z", "x", 1.0)],), label="a cycle"),
    ]

    def make(rng: np.random.Generator) -> Case:
        m = int(rng.integers(2, 7))
        tie_probability = float(rng.choice([0.0, 0.2]))
        return Case((_battles(rng, m, int(rng.integers(10, 120)), tie_probability),), label="log")

    return random_cases(seed, n, make, edge_cases=edge)
