"""Known mistakes in ps02's attention, for the grader's misconception hints.

Each is the reference of one exercise with one well-known error, called as the test cells
call the reference (`lm_cases.reference_causal_attention`,
`lm_cases.reference_multi_head_attention`). When a learner's output on the case that failed
equals one of these, the feedback names the mistake (autograder.misconception).
"""

from __future__ import annotations

import torch

from course_lib.kernels.attention import attention


def causal_attention_unscaled(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T + mask) v: the 1/sqrt(d) of Vaswani et al. (2017, sec. 3.2.1) left out."""
    return attention(q[:, None], k[:, None], v[:, None], causal=True, scale=1.0)[:, 0]


def causal_attention_softmax_over_queries(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """Causal attention with the softmax over the query axis (dim -2), not the key axis."""
    t = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5  # (B, T, T)
    future = torch.ones(t, t, dtype=torch.bool).triu(1)  # key j > query i
    return torch.softmax(scores.masked_fill(future, float("-inf")), dim=-2) @ v


def _mha(x, w_qkv, b_qkv, w_o, b_o, n_heads: int, scale: float) -> torch.Tensor:
    """reference_multi_head_attention with the scores multiplied by `scale`."""
    B, T, D = x.shape
    q, k, v = torch.nn.functional.linear(x, w_qkv, b_qkv).split(D, dim=-1)  # (B, T, D) each
    heads = (t.view(B, T, n_heads, D // n_heads).transpose(1, 2) for t in (q, k, v))
    y = attention(*heads, causal=True, scale=scale)  # (B, H, T, d)
    return torch.nn.functional.linear(y.transpose(1, 2).reshape(B, T, D), w_o, b_o)


def mha_unscaled(x, w_qkv, b_qkv, w_o, b_o, n_heads: int) -> torch.Tensor:
    """GPT-2 attention without the 1/sqrt(d_head) scaling."""
    return _mha(x, w_qkv, b_qkv, w_o, b_o, n_heads, 1.0)


def mha_scaled_by_model_width(x, w_qkv, b_qkv, w_o, b_o, n_heads: int) -> torch.Tensor:
    """GPT-2 attention scaled by 1/sqrt(D), the model width, instead of 1/sqrt(d_head)."""
    return _mha(x, w_qkv, b_qkv, w_o, b_o, n_heads, x.shape[-1] ** -0.5)
