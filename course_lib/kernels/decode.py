"""Decode attention: one new query token per sequence against a padded KV cache.

During generation each step has a single query per sequence, so attention is a
matrix-vector product that reads the whole cache once: it is memory-bound (Pope et al.
2022, "Efficiently Scaling Transformer Inference", arXiv:2211.05102). Batched sequences
have different lengths, so the cache (B, H_kv, S, D) is padded and `lengths[b]` says how
many slots of sequence b are valid. The cache is read in blocks with the online softmax
(the split-K idea of Flash-Decoding, Dao et al. 2023), so no (B, H, S) score row is kept
beyond one block, and the GQA groups share each loaded K/V block.
"""

from __future__ import annotations

import math

import torch

from course_lib.kernels.attention import visible
from course_lib.kernels.flash import online_softmax_step


def decode_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    lengths: torch.Tensor | list[int],
    *,
    window: int | None = None,
    scale: float | None = None,
    block_k: int = 256,
    return_lse: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Attention of the newest token of each sequence over its valid cache slots.

    q (B, H, 1, D); k_cache (B, H_kv, S, D), v_cache (B, H_kv, S, D_v); lengths (B,) with
    1 <= lengths[b] <= S. Sequence b's query sits at position lengths[b] - 1 (its own key
    is already in the cache) and sees slots 0 ... lengths[b] - 1, or only the last `window`
    of them. Slots past lengths[b] are never read into the result, whatever they hold.
    Computed in float32 (float64 for float64 inputs). Returns (B, H, 1, D_v) in q's dtype,
    plus the log-sum-exp (B, H, 1) in the compute dtype.
    """
    B, H, T, D = q.shape
    _, H_kv, S, _ = k_cache.shape
    if T != 1:
        raise ValueError(
            f"decode attention takes one query per sequence: q (B, H, 1, D), got {tuple(q.shape)}"
        )
    if k_cache.shape[0] != B or v_cache.shape[:3] != k_cache.shape[:3] or k_cache.shape[3] != D:
        raise ValueError(
            f"expected k_cache (B={B}, H_kv, S, D={D}) and v_cache (B, H_kv, S, D_v); "
            f"got {tuple(k_cache.shape)}, {tuple(v_cache.shape)}"
        )
    if H % H_kv != 0:
        raise ValueError(f"n_heads {H} must be a multiple of n_kv_heads {H_kv}")
    lengths = torch.as_tensor(lengths, device=q.device).long()
    if lengths.shape != (B,) or int(lengths.min()) < 1 or int(lengths.max()) > S:
        raise ValueError(
            f"lengths must be (B={B},) with values in [1, {S}], got {lengths.tolist()}"
        )
    if window is not None and window < 1:
        raise ValueError(f"window must be >= 1, got {window}")

    G, D_v = H // H_kv, v_cache.shape[3]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    c = dict(dtype=torch.promote_types(q.dtype, torch.float32), device=q.device)
    q_g = q.view(B, H_kv, G, D).to(c["dtype"]) * scale  # (B, H_kv, G, D)
    last = lengths - 1  # position of each query, (B,)
    first = torch.zeros_like(last) if window is None else (last - window + 1).clamp(min=0)

    m = torch.full((B, H_kv, G), -math.inf, **c)  # running max
    ell = torch.zeros(B, H_kv, G, **c)  # running normaliser (ℓ in the paper)
    acc = torch.zeros(B, H_kv, G, D_v, **c)  # unnormalised output
    lo, hi = int(first.min()), int(lengths.max())  # slots no sequence needs are skipped
    for ks in range((lo // block_k) * block_k, hi, block_k):
        ke = min(ks + block_k, hi)
        k_blk = k_cache[:, :, ks:ke].to(c["dtype"])  # (B, H_kv, bk, D)
        v_blk = v_cache[:, :, ks:ke].to(c["dtype"])  # (B, H_kv, bk, D_v)
        s = q_g @ k_blk.transpose(-1, -2)  # (B, H_kv, G, bk)
        pos = torch.arange(ks, ke, device=q.device)[None, :]  # (1, bk)
        ok = visible(last[:, None], pos, True, window)  # (B, bk)
        s = s.masked_fill(~ok[:, None, None, :], -math.inf)
        v_blk = v_blk.masked_fill(~ok[:, None, :, None], 0.0)  # stale slots may hold anything
        m, ell, acc = online_softmax_step(m, ell, acc, s, v_blk)

    out = (acc / ell[..., None]).to(q.dtype).view(B, H, 1, D_v)
    return (out, (m + torch.log(ell)).view(B, H, 1)) if return_lse else out
