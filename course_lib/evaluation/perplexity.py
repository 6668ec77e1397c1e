"""Perplexity of a causal language model over a long corpus, with a sliding window.

Perplexity is exp of the mean negative log-likelihood per token,
PPL = exp(−(1/N) Σ_t log p(x_t | x_<t)). A model sees at most `window` tokens, so a long
corpus is cut into windows. Non-overlapping windows (stride = window) leave the first
tokens of every window with little or no context; a sliding window with stride < window
scores each token once, in the first window where it is new, with at least
window − stride tokens of context (the "strided" evaluation of the Hugging Face
perplexity guide; Press et al. 2021 call it sliding-window evaluation).

Perplexity depends on the tokenizer; bits per character (total NLL / ln 2 / characters)
does not, which is how models with different vocabularies are compared.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch

from course_lib.evaluation.multiple_choice import CausalLM, model_device


def window_spans(n_tokens: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first_scored) of each window: tokens first_scored … end-1 are scored in it.

    Token t ≥ 1 is scored in the first window [begin, end) with end > t; with stride ≥ window
    the first token of every window has no context in it and is skipped (as in the HF guide).
    With stride > window the tokens between two windows are never scored: a warning says so.
    """
    if window < 2 or stride < 1:
        raise ValueError(f"need window >= 2 and stride >= 1, got {window} and {stride}")
    if stride > window and n_tokens > window:
        warnings.warn(
            f"stride {stride} > window {window}: {stride - window} tokens between windows are "
            "never scored; use stride <= window",
            stacklevel=2,
        )
    spans, prev_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + window, n_tokens)
        first = max(prev_end, begin + 1)
        if first < end:
            spans.append((begin, end, first))
        prev_end = end
        if end == n_tokens:
            break
    return spans


def sliding_window_nll(
    model: CausalLM, ids: Sequence[int] | torch.Tensor, window: int, stride: int | None = None
) -> tuple[float, int]:
    """(total negative log-likelihood in nats, number of tokens scored) over `ids` (T,)."""
    ids = torch.as_tensor(ids, dtype=torch.long).flatten()  # (T,)
    if ids.numel() < 2:
        raise ValueError("need at least two tokens: the first one is never predicted")
    stride = window if stride is None else stride
    device = model_device(model)
    total, count = 0.0, 0
    for begin, end, first in window_spans(ids.numel(), window, stride):
        chunk = ids[begin:end].to(device)[None]  # (1, L)
        with torch.no_grad():
            logits = model(chunk)[0]  # (L, V)
        logp = torch.log_softmax(logits.double(), dim=-1)  # (L, V)
        positions = torch.arange(first - begin, end - begin, device=logp.device)  # scored tokens
        token_logp = logp[positions - 1].gather(-1, chunk[0, positions][:, None])  # (k, 1)
        total -= token_logp.sum().item()
        count += positions.numel()
    return total, count


def perplexity(
    model: CausalLM, ids: Sequence[int] | torch.Tensor, window: int, stride: int | None = None
) -> float:
    """exp(mean NLL per scored token) with windows of `window` tokens moved by `stride`."""
    total, count = sliding_window_nll(model, ids, window, stride)
    return math.exp(total / count)


def bits_per_character(total_nll: float, n_characters: int) -> float:
    """Total NLL in nats converted to bits, per character of the text: tokenizer-free."""
    return total_nll / math.log(2) / n_characters
