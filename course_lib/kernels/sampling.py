"""Decoding: greedy, temperature, top-k and nucleus (top-p) sampling from next-token logits.

API
- `sample(logits, *, temperature=1.0, top_k=None, top_p=None, generator=None) -> (...,) int64`
- `sampling_probs(logits, *, temperature=1.0, top_k=None, top_p=None) -> (..., V)`:
  the distribution `sample` draws from
- `top_k_filter(logits, k) -> logits` with all but the k largest set to -inf
- `top_p_filter(logits, p) -> logits` with all but the nucleus set to -inf

logits (..., V) -> one token id per row. The steps, in the order of Hugging Face's
`generate`: divide by the temperature (Ackley et al. 1985's Boltzmann temperature; T -> 0 is
greedy, T = 1 the model's distribution), keep the top k (Fan et al. 2018), keep the nucleus
(Holtzman et al. 2020, arXiv:1904.09751): the smallest set of most likely tokens whose
probability sums to at least p, always at least one token. temperature == 0 is greedy
decoding (argmax; top_k and top_p are irrelevant). Ties at the k-th logit are all kept.
Draws use `torch.multinomial` with `generator`, a `torch.Generator` on the logits' device:
the same seed gives the same tokens.
"""

from __future__ import annotations

import torch


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Set every logit below the k-th largest of its row to -inf: (..., V) -> (..., V)."""
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {k}")
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of top tokens with total probability >= p; the rest -> -inf.

    p = 1 keeps every token (the float32 cumulative sum would reach 1 early and drop the
    tail). Probabilities are summed in float32, or float64 for float64 logits.
    """
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    if p == 1.0:  # the nucleus is the whole vocabulary, as in transformers' generate
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(
        sorted_logits, dim=-1, dtype=torch.promote_types(logits.dtype, torch.float32)
    )
    mass_before = probs.cumsum(dim=-1) - probs  # probability of the strictly better tokens
    drop_sorted = mass_before >= p  # already reached p without this token; never the first
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def sampling_probs(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """The distribution (..., V), float32 or wider, that `sample` draws from (temperature > 0)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 for a distribution, got {temperature}")
    scaled = logits.to(torch.promote_types(logits.dtype, torch.float32)) / temperature
    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
    if top_p is not None:
        scaled = top_p_filter(scaled, top_p)
    return torch.softmax(scaled, dim=-1)


def sample(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one token id per row of logits (..., V) -> (...,) int64; greedy when temperature == 0."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = sampling_probs(logits, temperature=temperature, top_k=top_k, top_p=top_p)
    flat = probs.reshape(-1, probs.shape[-1])  # (N, V)
    tokens = torch.multinomial(flat, 1, generator=generator)  # (N, 1)
    return tokens.reshape(probs.shape[:-1])
