"""FlashAttention forward in plain PyTorch: tiled attention with the online softmax.

Dao et al. 2022, "FlashAttention: Fast and Memory-Efficient Exact Attention with
IO-Awareness" (arXiv:2205.14135), with the loop order of FlashAttention-2 (Dao 2023,
arXiv:2307.08691): the outer loop runs over blocks of queries, the inner loop over blocks
of keys. Each query block keeps a running row maximum m, a running normaliser
ℓ = sum exp(s - m) and an unnormalised output; a new key block rescales them by
exp(m_old - m_new). The T x T score matrix is never formed: the largest temporary is one
(block_q x block_k) tile per head, so the extra memory grows linearly in T.

Conventions shared by every attention kernel in course_lib:
- q (B, H, T_q, D), k (B, H_kv, T_k, D), v (B, H_kv, T_k, D_v), H % H_kv == 0; query head
  h reads key/value head h // (H / H_kv) (grouped-query attention, Ainslie et al. 2023).
- T_q <= T_k; query i sits at absolute position i + T_k - T_q (the queries are the last
  T_q tokens, as in chunked prefill or decoding), so T_q == T_k is ordinary self-attention.
- causal: query at position p sees keys j <= p; window=w additionally restricts it to
  j >= p - w + 1 (sliding-window attention, Mistral 7B; Jiang et al. 2023). A window is a
  causal notion, so it requires causal=True.
"""

from __future__ import annotations

import math

import torch

from course_lib.kernels.dispatch import record_backend, resolve_backend


def check_attention_inputs(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, window: int | None
) -> None:
    """Raise a ValueError naming the expected shape when q, k, v do not fit together."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            f"expected q (B, H, T_q, D), k/v (B, H_kv, T_k, D); got {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )
    B, H, T_q, D = q.shape
    if k.shape[:2] != v.shape[:2] or k.shape[2] != v.shape[2] or k.shape[0] != B:
        raise ValueError(f"k {tuple(k.shape)} and v {tuple(v.shape)} must share (B, H_kv, T_k)")
    if k.shape[3] != D:
        raise ValueError(f"k head dim {k.shape[3]} must equal q head dim {D}")
    if H % k.shape[1] != 0:
        raise ValueError(f"n_heads {H} must be a multiple of n_kv_heads {k.shape[1]}")
    if T_q > k.shape[2]:
        raise ValueError(f"T_q={T_q} queries but only T_k={k.shape[2]} keys")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}")
    if window is not None:
        if not causal:
            raise ValueError("a sliding window is causal: pass causal=True with window")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")


def key_range(
    q_start: int, q_end: int, t_k: int, offset: int, causal: bool, window: int | None
) -> tuple[int, int]:
    """Keys [lo, hi) that queries q_start..q_end-1 (absolute position i + offset) may see."""
    lo = 0 if window is None else max(0, q_start + offset - window + 1)
    hi = min(t_k, q_end + offset) if causal else t_k
    return lo, hi


def visible(
    q_pos: torch.Tensor, k_pos: torch.Tensor, causal: bool, window: int | None
) -> torch.Tensor:
    """Boolean (len(q_pos), len(k_pos)) mask: which keys each query may attend to."""
    q_pos, k_pos = q_pos[:, None], k_pos[None, :]
    ok = torch.ones(q_pos.shape[0], k_pos.shape[1], dtype=torch.bool, device=q_pos.device)
    if causal:
        ok &= k_pos <= q_pos
    if window is not None:
        ok &= k_pos > q_pos - window
    return ok


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
    return_lse, the log-sum-exp of the scaled scores (B, H, T_q) in float32. Tiles are
    computed in float32 whatever the input dtype. Key tiles that no query of the block can
    see (above the causal diagonal, or left of the window) are skipped, not masked.
    """
    check_attention_inputs(q, k, v, causal, window)
    B, H, T_q, D = q.shape
    H_kv, T_k, D_v = k.shape[1], k.shape[2], v.shape[3]
    G = H // H_kv  # query heads per key/value head
    offset = T_k - T_q
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    q_g = q.view(B, H_kv, G, T_q, D)  # head h = kv * G + g; K/V are never repeated
    out = torch.empty(B, H_kv, G, T_q, D_v, dtype=q.dtype, device=q.device)
    lse = torch.empty(B, H_kv, G, T_q, dtype=torch.float32, device=q.device)
    positions = torch.arange(T_k, device=q.device)

    for qs in range(0, T_q, block_q):
        qe = min(qs + block_q, T_q)
        n = qe - qs
        q_blk = q_g[:, :, :, qs:qe].reshape(B, H_kv, G * n, D).float() * scale  # (B, H_kv, G*n, D)
        m = torch.full((B, H_kv, G * n), -math.inf, device=q.device)  # running max
        ell = torch.zeros(B, H_kv, G * n, device=q.device)  # running normaliser (ℓ in the paper)
        acc = torch.zeros(B, H_kv, G * n, D_v, device=q.device)  # unnormalised output
        lo, hi = key_range(qs, qe, T_k, offset, causal, window)
        for ks in range((lo // block_k) * block_k, hi, block_k):
            ke = min(ks + block_k, hi)
            k_blk = k[:, :, ks:ke].float()  # (B, H_kv, bk, D)
            v_blk = v[:, :, ks:ke].float()  # (B, H_kv, bk, D_v)
            s = q_blk @ k_blk.transpose(-1, -2)  # (B, H_kv, G*n, bk)
            full_tile = (not causal or ke - 1 <= qs + offset) and (
                window is None or ks > qe - 1 + offset - window
            )
            if not full_tile:
                mask = visible(positions[qs:qe] + offset, positions[ks:ke], causal, window)
                s = s.masked_fill(~mask.repeat(G, 1), -math.inf)
            m_new = torch.maximum(m, s.amax(dim=-1))
            m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
            p = torch.exp(s - m_safe[..., None])  # (B, H_kv, G*n, bk); masked entries -> 0
            alpha = torch.exp(m - m_safe)  # rescales the old statistics; exp(-inf) = 0
            ell = alpha * ell + p.sum(dim=-1)
            acc = alpha[..., None] * acc + p @ v_blk
            m = m_new
        out[:, :, :, qs:qe] = (acc / ell[..., None]).view(B, H_kv, G, n, D_v).to(q.dtype)
        lse[:, :, :, qs:qe] = (m + torch.log(ell)).view(B, H_kv, G, n)

    out = out.view(B, H, T_q, D_v)
    return (out, lse.view(B, H, T_q)) if return_lse else out


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
    "torch" or "triton" force one. Block sizes default to each backend's own.
    Returns out (B, H, T, D), plus the float32 log-sum-exp (B, H, T) with return_lse.
    """
    chosen = resolve_backend(backend, q.device, q.dtype, q.shape[-1])
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
