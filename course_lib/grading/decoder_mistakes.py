"""Known mistakes in ps08's decoder block, for the grader's misconception hints.

Each is the reference of one exercise with one well-known error, called as the test cells
call the reference (wrapped by `decoder_cases.with_dtype`). When a learner's output on the
case that failed equals one of these, the feedback names the mistake (autograder.misconception).
"""

from __future__ import annotations

import torch

from course_lib.grading.decoder_cases import reference_rope, split_heads, with_dtype
from course_lib.kernels.attention import attention
from course_lib.kernels.norms import layer_norm, qk_norm, rms_norm


def _layer_norm_for_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """LayerNorm (mean subtracted, Ba et al. 2016) where RMSNorm (Zhang & Sennrich 2019) is asked."""
    return layer_norm(x, weight, None, eps)


def _gqa_tiled_heads(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int | None
) -> torch.Tensor:
    """GQA with K/V heads tiled (`repeat`: 0 1 0 1) instead of grouped (`repeat_interleave`: 0 0 1 1)."""
    n_rep = q.shape[1] // k.shape[1]
    k, v = k.repeat(1, n_rep, 1, 1), v.repeat(1, n_rep, 1, 1)  # (B, H, T_k, D)
    return attention(q, k, v, causal=True, window=window)


def _softmax_over_queries(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int | None
) -> torch.Tensor:
    """Causal GQA with the softmax over the query axis (dim -2) instead of the key axis."""
    n_rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(n_rep, dim=1), v.repeat_interleave(n_rep, dim=1)
    t_q, t_k = q.shape[2], k.shape[2]
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5  # (B, H, T_q, T_k)
    i = torch.arange(t_q)[:, None] + (t_k - t_q)  # query positions
    j = torch.arange(t_k)[None, :]
    hidden = (j > i) | ((i - j >= window) if window is not None else torch.zeros_like(j > i))
    scores = scores.masked_fill(hidden, float("-inf"))
    return torch.softmax(scores, dim=-2) @ v


layer_norm_for_rms_norm = with_dtype(_layer_norm_for_rms_norm)
gqa_tiled_heads = with_dtype(_gqa_tiled_heads)
softmax_over_queries = with_dtype(_softmax_over_queries)


def _qk_norm_after_rope(
    x: torch.Tensor,
    weight: torch.Tensor,
    n_heads: int,
    positions: torch.Tensor,
    theta: float,
    eps: float,
) -> torch.Tensor:
    """Per-head QK-norm applied after RoPE: the gain no longer commutes with the rotation."""
    return rms_norm(reference_rope(split_heads(x, n_heads), positions, theta), weight, eps)


def _qk_norm_whole_projection(
    x: torch.Tensor,
    weight: torch.Tensor,
    n_heads: int,
    positions: torch.Tensor,
    theta: float,
    eps: float,
) -> torch.Tensor:
    """One RMSNorm over all n_heads * D channels (OLMo 2's QK-norm) where per head is asked."""
    normed = qk_norm(x, weight.repeat(n_heads), n_heads, eps, per_head=False)
    return reference_rope(split_heads(normed, n_heads), positions, theta)


qk_norm_after_rope = with_dtype(_qk_norm_after_rope)
qk_norm_whole_projection = with_dtype(_qk_norm_whole_projection)
