"""FlashAttention in plain PyTorch: tiled attention with the online softmax, and its backward.

Dao et al. 2022, "FlashAttention: Fast and Memory-Efficient Exact Attention with
IO-Awareness" (arXiv:2205.14135), with the loop order of FlashAttention-2 (Dao 2023,
arXiv:2307.08691): the outer loop runs over blocks of queries, the inner loop over blocks
of keys. Each query block keeps a running row maximum m, a running normaliser
ℓ = sum exp(s - m) and an unnormalised output; a new key block rescales them by
exp(m_old - m_new). The T x T score matrix is never formed: the largest temporary is one
(block_q x block_k) tile per head, so the extra memory grows linearly in T.

The backward (FlashAttention-2, Algorithm 2) keeps only q, k, v, the output O and the
log-sum-exp L of each row, and recomputes every tile: P = exp(q k^T * scale - L),
dV += P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)), dQ += dS K * scale,
dK += dS^T Q * scale. `flash_attention` wraps either forward (this one or the Triton
kernel) in that backward, so training through it updates q, k and v.

Conventions shared by every attention kernel in course_lib (validated once, by
`course_lib.kernels.attention.check_attention_inputs`, masked by its `visible`):
- q (B, H, T_q, D), k (B, H_kv, T_k, D), v (B, H_kv, T_k, D_v), H % H_kv == 0; query head
  h reads key/value head h // (H / H_kv) (grouped-query attention, Ainslie et al. 2023).
- query i sits at absolute position i + T_k - T_q (the queries are the last T_q tokens, as
  in chunked prefill or decoding), so T_q == T_k is ordinary self-attention; causal
  attention needs T_q <= T_k (every query must see a key).
- causal: query at position p sees keys j <= p; window=w additionally restricts it to
  j >= p - w + 1 (sliding-window attention, Mistral 7B; Jiang et al. 2023).
- tiles are computed in float32, or float64 for float64 inputs; the log-sum-exp has that
  dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from course_lib.kernels.attention import check_attention_inputs, visible
from course_lib.kernels.dispatch import needs_grad, record_backend, resolve_backend

__all__ = ["check_attention_inputs", "flash_attention", "flash_attention_torch"]


def key_range(
    q_start: int, q_end: int, t_k: int, offset: int, causal: bool, window: int | None
) -> tuple[int, int]:
    """Keys [lo, hi) that queries q_start..q_end-1 (absolute position i + offset) may see."""
    lo = 0 if window is None else max(0, q_start + offset - window + 1)
    hi = min(t_k, q_end + offset) if causal else t_k
    return lo, hi


def online_softmax_step(
    m: torch.Tensor, ell: torch.Tensor, acc: torch.Tensor, s: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fold one key block into the running (max m, normaliser ℓ, output acc) of each row.

    s (..., n, bk) scores, -inf where masked; v (..., bk, D_v); m, ℓ (..., n); acc (..., n,
    D_v). The online softmax of Milakov & Gimelshein 2018 (arXiv:1805.02867), as in
    FlashAttention; used by the tiled forward here and by `decode_attention`.
    """
    m_new = torch.maximum(m, s.amax(dim=-1))
    m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
    p = torch.exp(s - m_safe[..., None])  # masked entries -> 0
    alpha = torch.exp(m - m_safe)  # rescales the old statistics; exp(-inf) = 0
    return m_new, alpha * ell + p.sum(dim=-1), alpha[..., None] * acc + p @ v


def _tile_scores(
    q_blk: torch.Tensor,
    k_blk: torch.Tensor,
    q_span: tuple[int, int],
    k_span: tuple[int, int],
    group: int,
    causal: bool,
    window: int | None,
) -> torch.Tensor:
    """Scaled scores (B, H_kv, G*n, bk) of queries at positions q_span = [first, end) against
    keys k_span, -inf where the mask hides a key (tiles fully inside the band skip the mask)."""
    s = q_blk @ k_blk.transpose(-1, -2)
    (q0, q1), (k0, k1) = q_span, k_span
    if (not causal or k1 - 1 <= q0) and (window is None or k0 > q1 - 1 - window):
        return s
    q_pos = torch.arange(q0, q1, device=s.device)[:, None]  # (n, 1)
    k_pos = torch.arange(k0, k1, device=s.device)[None, :]  # (1, bk)
    return s.masked_fill(~visible(q_pos, k_pos, causal, window).repeat(group, 1), -math.inf)


def _forward_tiles(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool,
    window: int | None,
    scale: float,
    block_q: int,
    block_k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The tiled forward: out (B, H, T_q, D_v) in q's dtype, lse (B, H, T_q) in the compute dtype."""
    B, H, T_q, D = q.shape
    H_kv, T_k, D_v = k.shape[1], k.shape[2], v.shape[3]
    G, offset = H // H_kv, T_k - T_q  # query heads per key/value head; first query's position
    c = dict(dtype=torch.promote_types(q.dtype, torch.float32), device=q.device)
    q_g = q.view(B, H_kv, G, T_q, D)  # head h = kv * G + g; K/V are never repeated
    out = torch.empty(B, H_kv, G, T_q, D_v, dtype=q.dtype, device=q.device)
    lse = torch.empty(B, H_kv, G, T_q, **c)
    for qs in range(0, T_q, block_q):
        qe = min(qs + block_q, T_q)
        n = qe - qs
        q_blk = q_g[:, :, :, qs:qe].reshape(B, H_kv, G * n, D).to(c["dtype"]) * scale
        m = torch.full((B, H_kv, G * n), -math.inf, **c)  # running max
        ell = torch.zeros(B, H_kv, G * n, **c)  # running normaliser (ℓ in the paper)
        acc = torch.zeros(B, H_kv, G * n, D_v, **c)  # unnormalised output
        lo, hi = key_range(qs, qe, T_k, offset, causal, window)
        for ks in range((lo // block_k) * block_k, hi, block_k):
            ke = min(ks + block_k, hi)
            k_blk, v_blk = k[:, :, ks:ke].to(c["dtype"]), v[:, :, ks:ke].to(c["dtype"])
            span = (qs + offset, qe + offset)
            s = _tile_scores(q_blk, k_blk, span, (ks, ke), G, causal, window)  # (B, H_kv, G*n, bk)
            m, ell, acc = online_softmax_step(m, ell, acc, s, v_blk)
        out[:, :, :, qs:qe] = (acc / ell[..., None]).view(B, H_kv, G, n, D_v).to(q.dtype)
        lse[:, :, :, qs:qe] = (m + torch.log(ell)).view(B, H_kv, G, n)
    return out.view(B, H, T_q, D_v), lse.view(B, H, T_q)


def _rows(t: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """Queries start..end-1 of t (B, H_kv, G, T_q, ...) as one block (B, H_kv, G*n, ...)."""
    b, h_kv, g = t.shape[:3]
    return t[:, :, :, start:end].reshape(b, h_kv, g * (end - start), *t.shape[4:])


def _backward_tiles(
    d_out: torch.Tensor,
    d_lse: torch.Tensor,
    saved: tuple[torch.Tensor, ...],
    causal: bool,
    window: int | None,
    scale: float,
    block_q: int,
    block_k: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FlashAttention-2's backward (Dao 2023, Algorithm 2): dq, dk, dv from recomputed tiles.

    d_lse, the gradient of the returned log-sum-exp, adds P * d_lse to dS (d lse / d s = P).
    """
    q, k, v, out, lse = saved
    B, H, T_q, D = q.shape
    H_kv, T_k, D_v = k.shape[1], k.shape[2], v.shape[3]
    G, offset = H // H_kv, T_k - T_q
    c = dict(dtype=torch.promote_types(q.dtype, torch.float32), device=q.device)
    # rowsum(dO * O) - dL: the term every dS of a row subtracts, (B, H_kv, G, T_q)
    delta = (d_out.to(c["dtype"]) * out.to(c["dtype"])).sum(-1) - d_lse.to(c["dtype"])
    delta, lse_g = delta.view(B, H_kv, G, T_q), lse.view(B, H_kv, G, T_q)
    q_g, do_g = q.view(B, H_kv, G, T_q, D), d_out.reshape(B, H_kv, G, T_q, D_v)
    dq = torch.zeros(B, H_kv, G, T_q, D, **c)
    dk, dv = torch.zeros(B, H_kv, T_k, D, **c), torch.zeros(B, H_kv, T_k, D_v, **c)
    for qs in range(0, T_q, block_q):
        qe = min(qs + block_q, T_q)
        n = qe - qs

        q_blk = _rows(q_g, qs, qe).to(c["dtype"]) * scale  # (B, H_kv, G*n, D)
        do_blk = _rows(do_g, qs, qe).to(c["dtype"])  # (B, H_kv, G*n, D_v)
        lse_blk, delta_blk = _rows(lse_g, qs, qe), _rows(delta, qs, qe)  # (B, H_kv, G*n)
        dq_blk = torch.zeros(B, H_kv, G * n, D, **c)
        lo, hi = key_range(qs, qe, T_k, offset, causal, window)
        for ks in range((lo // block_k) * block_k, hi, block_k):
            ke = min(ks + block_k, hi)
            k_blk, v_blk = k[:, :, ks:ke].to(c["dtype"]), v[:, :, ks:ke].to(c["dtype"])
            span = (qs + offset, qe + offset)
            s = _tile_scores(q_blk, k_blk, span, (ks, ke), G, causal, window)
            p = torch.exp(s - lse_blk[..., None])  # (B, H_kv, G*n, bk), the softmax weights
            dv[:, :, ks:ke] += p.transpose(-1, -2) @ do_blk
            ds = p * (do_blk @ v_blk.transpose(-1, -2) - delta_blk[..., None])
            dq_blk += ds @ k_blk
            dk[:, :, ks:ke] += ds.transpose(-1, -2) @ q_blk  # q_blk already carries the scale
        dq[:, :, :, qs:qe] = dq_blk.view(B, H_kv, G, n, D) * scale
    return dq.view(B, H, T_q, D).to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)


class FlashAttentionFunction(torch.autograd.Function):
    """A flash forward (torch tiles or Triton) with the recomputing FlashAttention-2 backward."""

    @staticmethod
    def forward(
        ctx: Any,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        forward: Callable[..., tuple[torch.Tensor, torch.Tensor]],
        causal: bool,
        window: int | None,
        scale: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, lse = forward(q, k, v)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.args = (causal, window, scale)
        return out, lse

    @staticmethod
    def backward(ctx: Any, d_out: torch.Tensor, d_lse: torch.Tensor) -> tuple[Any, ...]:
        grads = _backward_tiles(d_out, d_lse, ctx.saved_tensors, *ctx.args, 128, 128)
        return (*grads, None, None, None, None)


def with_backward(
    forward: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool,
    window: int | None,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run `forward(q, k, v) -> (out, lse)`, differentiable through the tiled backward if needed."""
    if not needs_grad(q, k, v):
        return forward(q, k, v)
    return FlashAttentionFunction.apply(q, k, v, forward, causal, window, scale)


def flash_attention_torch(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = True,
    window: int | None = None,
    *,
    scale: float | None = None,
    block_q: int = 128,
    block_k: int = 128,
    return_lse: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Tiled attention with the online softmax (FlashAttention-2 loop order), pure PyTorch.

    Shapes as in the module docstring; returns out (B, H, T_q, D_v) in q's dtype and, with
    return_lse, the log-sum-exp of the scaled scores (B, H, T_q) in the compute dtype
    (float32, float64 for float64 inputs). Key tiles that no query of the block can see
    (above the causal diagonal, or left of the window) are skipped, not masked.
    Differentiable: the backward recomputes the tiles (FlashAttention-2).
    """
    check_attention_inputs(q, k, v, causal, window)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale

    def forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        return _forward_tiles(q, k, v, causal, window, scale, block_q, block_k)

    out, lse = with_backward(forward, q, k, v, causal, window, scale)
    return (out, lse) if return_lse else out


def flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = True,
    window: int | None = None,
    *,
    scale: float | None = None,
    block_q: int | None = None,
    block_k: int | None = None,
    return_lse: bool = False,
    backend: str = "auto",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Exact attention without the T x T score matrix, on the best backend for the device.

    q (B, H, T, D), k/v (B, H_kv, T, D) with H % H_kv == 0; window=w lets query i see keys
    i-w+1 ... i. backend="auto" runs the Triton kernel on CUDA and `flash_attention_torch`
    elsewhere (see `course_lib.kernels.dispatch`; `which_backend()` reports the choice);
    "torch" or "triton" force one. Block sizes default to each backend's own. Both are
    differentiable (the FlashAttention-2 backward recomputes the tiles in PyTorch).
    Returns out (B, H, T, D), plus the log-sum-exp (B, H, T) with return_lse.
    """
    head_dims = (q.shape[-1], v.shape[-1]) if v.dim() == 4 else (q.shape[-1],)
    chosen = resolve_backend(backend, q.device, q.dtype, max(head_dims))
    blocks = {name: size for name, size in (("block_q", block_q), ("block_k", block_k)) if size}
    if chosen == "triton":
        from course_lib.kernels.triton.flash_attn import flash_attention_triton

        result = flash_attention_triton(
            q, k, v, causal, window, scale=scale, return_lse=return_lse, **blocks
        )
    else:
        result = flash_attention_torch(
            q, k, v, causal, window, scale=scale, return_lse=return_lse, **blocks
        )
    record_backend(chosen)
    return result
