"""Multi-head Latent Attention (DeepSeek-V2/V3): a low-rank KV cache with decoupled RoPE.

API
- `MultiHeadLatentAttention(dim, n_heads, *, kv_lora_rank, qk_nope_head_dim,
  qk_rope_head_dim, v_head_dim, q_lora_rank=None, softmax_scale=None, rope_layout="half",
  norm_eps=1e-6, bias=False)`
  - `latent(x, cos, sin) -> (c_kv (B, T, kv_lora_rank), k_rope (B, T, qk_rope_head_dim))`
  - `forward(x, cos, sin, *, cache=None, absorbed=False, attn_mask=None)
    -> (out (B, T, dim), cache)`, cache = (c_kv, k_rope) of all tokens so far
  - `attend(x, cos, sin, latent, *, absorbed=False, attn_mask=None) -> out (B, T, dim)`
    over latent (B, T_k, d_c + d_R) = [c_kv | k_rope], e.g. a preallocated cache's prefix
- `mla_softmax_scale(qk_head_dim, rope_scaling=None) -> float`
- `latent_cache_bytes_per_token(kv_lora_rank, qk_rope_head_dim, n_layers=1,
  bytes_per_element=2) -> int`

DeepSeek-V2 (DeepSeek-AI 2024, arXiv:2405.04434, §2.1) compresses keys and values of a token
into one latent c_kv = RMSNorm(W^DKV h) of kv_lora_rank (d_c) numbers; per head, keys
k^C = W^UK c_kv and values v = W^UV c_kv are recovered from it. RoPE cannot pass through
W^UK, so position goes into extra "decoupled" dims: a rotated key k^R = RoPE(W^KR h) of
qk_rope_head_dim (d_R) numbers shared by all heads, and per-head rotated queries q^R. A
head's query/key is [q^C; q^R] / [k^C; k^R] of width qk_nope_head_dim + qk_rope_head_dim.
Queries may be low-rank too: c_q = RMSNorm(W^DQ h), [q^C; q^R] = W^UQ c_q (q_lora_rank).
The cache holds only (c_kv, k^R): d_c + d_R numbers per token and layer, e.g. 512 + 64 = 576
in V2/V3 = 4.5 d_h with d_h = 128 (the paper's Table 1), against 2 n_h d_h for MHA.

Absorbed decoding (§2.1.2): q^C . k^C = (W^UK^T q^C) . c_kv, so W^UK folds into the query and
the scores come straight from the cache; sum_j p_j W^UV c_kv_j = W^UV sum_j p_j c_kv_j, so W^UV
folds into the output. That is multi-query attention over the latents with head width
d_c + d_R; the result equals the naive path (expand k, v per head) up to rounding.

Parameter names are those of DeepSeek-V3's reference code (inference/model.py); Hugging
Face's DeepseekV3Attention calls them q_proj (wq), q_a_proj (wq_a), q_a_layernorm (q_norm),
q_b_proj (wq_b), kv_a_proj_with_mqa (wkv_a), kv_a_layernorm (kv_norm), kv_b_proj (wkv_b) and
o_proj (wo), with identical shapes. wkv_b's output rows are per head [k^C (nope); v].
`rope_layout="interleaved"` is for checkpoints with HF's `rope_interleave=True` (DeepSeek-V3):
as HF does, the rope channels are first de-interleaved (even channels, then odd) and rotated
in the half layout, which leaves every q^R . k^R unchanged; cached k_rope is in that order.
The softmax scale is 1/sqrt(qk_nope + qk_rope) times YaRN's mscale(factor, mscale_all_dim)^2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from course_lib.kernels.attention import attention
from course_lib.kernels.norms import RMSNorm
from course_lib.kernels.rope import apply_rope, yarn_get_mscale


def mla_softmax_scale(qk_head_dim: int, rope_scaling: Mapping[str, Any] | None = None) -> float:
    """1/sqrt(qk_head_dim), times mscale(factor, mscale_all_dim)^2 under a scaled RoPE (as HF)."""
    scale = qk_head_dim**-0.5
    if not rope_scaling:
        return scale
    kind = rope_scaling.get("rope_type") or rope_scaling.get("type") or rope_scaling.get("kind")
    mscale_all_dim = rope_scaling.get("mscale_all_dim") or 0
    if kind not in (None, "default") and mscale_all_dim:
        scale = scale * yarn_get_mscale(rope_scaling["factor"], mscale_all_dim) ** 2
    return scale


def latent_cache_bytes_per_token(
    kv_lora_rank: int, qk_rope_head_dim: int, n_layers: int = 1, bytes_per_element: int = 2
) -> int:
    """Bytes of MLA cache per token: (d_c + d_R) * n_layers * bytes (DeepSeek-V2, Table 1)."""
    return (kv_lora_rank + qk_rope_head_dim) * n_layers * bytes_per_element


def _deinterleave(x: torch.Tensor) -> torch.Tensor:
    """Channels (x0, x1, x2, x3, ...) -> (x0, x2, ..., x1, x3, ...)."""
    return torch.cat((x[..., 0::2], x[..., 1::2]), dim=-1)


class MultiHeadLatentAttention(nn.Module):
    """MLA with an optional low-rank query, a latent KV cache and an absorbed decode path."""

    def __init__(
        self,
        dim: int,
        n_heads: int,
        *,
        kv_lora_rank: int,
        qk_nope_head_dim: int,
        qk_rope_head_dim: int,
        v_head_dim: int,
        q_lora_rank: int | None = None,
        softmax_scale: float | None = None,
        rope_layout: str = "half",
        norm_eps: float = 1e-6,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if rope_layout not in ("half", "interleaved"):
            raise ValueError(f"rope_layout must be 'half' or 'interleaved', got {rope_layout!r}")
        self.n_heads, self.kv_lora_rank, self.q_lora_rank = n_heads, kv_lora_rank, q_lora_rank
        self.qk_nope_head_dim, self.qk_rope_head_dim = qk_nope_head_dim, qk_rope_head_dim
        self.v_head_dim, self.rope_layout = v_head_dim, rope_layout
        self.qk_head_dim = qk_nope_head_dim + qk_rope_head_dim
        self.softmax_scale = self.qk_head_dim**-0.5 if softmax_scale is None else softmax_scale
        if q_lora_rank:
            self.wq_a = nn.Linear(dim, q_lora_rank, bias=bias)  # W^DQ
            self.q_norm = RMSNorm(q_lora_rank, norm_eps)
            self.wq_b = nn.Linear(q_lora_rank, n_heads * self.qk_head_dim, bias=False)  # W^UQ, W^QR
        else:
            self.wq = nn.Linear(dim, n_heads * self.qk_head_dim, bias=False)
        self.wkv_a = nn.Linear(dim, kv_lora_rank + qk_rope_head_dim, bias=bias)  # W^DKV, W^KR
        self.kv_norm = RMSNorm(kv_lora_rank, norm_eps)
        self.wkv_b = nn.Linear(
            kv_lora_rank, n_heads * (qk_nope_head_dim + v_head_dim), bias=False
        )  # W^UK, W^UV
        self.wo = nn.Linear(n_heads * v_head_dim, dim, bias=bias)

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        if self.rope_layout == "interleaved":
            x = _deinterleave(x)
        return apply_rope(x, cos, sin, layout="half")

    def queries(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, dim) -> q^C (B, H, T, qk_nope_head_dim), rotated q^R (B, H, T, qk_rope_head_dim)."""
        b, t, _ = x.shape
        q = self.wq_b(self.q_norm(self.wq_a(x))) if self.q_lora_rank else self.wq(x)
        q = q.view(b, t, self.n_heads, self.qk_head_dim).transpose(1, 2)  # (B, H, T, d_qk)
        q_nope, q_rope = q.split([self.qk_nope_head_dim, self.qk_rope_head_dim], dim=-1)
        return q_nope, self._rope(q_rope, cos, sin)

    def latent(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The cache entries of x (B, T, dim): c_kv (B, T, d_c) and rotated k^R (B, T, d_R)."""
        c_kv, k_rope = self.wkv_a(x).split([self.kv_lora_rank, self.qk_rope_head_dim], dim=-1)
        k_rope = self._rope(k_rope[:, None], cos, sin)[:, 0]  # one head, shared by all
        return self.kv_norm(c_kv), k_rope

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        *,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        absorbed: bool = False,
        attn_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Causal MLA of x (B, T, dim) after the cached tokens; cos/sin (T, d_R/2) for x's positions.

        cache: (c_kv (B, T_c, d_c), k_rope (B, T_c, d_R)) of earlier tokens or None. Returns the
        output (B, T, dim) and the cache extended by x's entries (concatenated: for decoding
        step by step, write into a preallocated buffer and call `attend`, as
        `course_lib.models.cache.MLACache` does).
        """
        c_kv, k_rope = self.latent(x, cos, sin)  # (B, T, d_c), (B, T, d_R)
        if cache is not None:
            c_kv = torch.cat((cache[0], c_kv), dim=1)
            k_rope = torch.cat((cache[1], k_rope), dim=1)
        latent = torch.cat((c_kv, k_rope), dim=-1)  # (B, T_k, d_c + d_R)
        return self.attend(x, cos, sin, latent, absorbed=absorbed, attn_mask=attn_mask), (
            c_kv,
            k_rope,
        )

    def attend(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        latent: torch.Tensor,
        *,
        absorbed: bool = False,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Causal attention of x's (B, T, dim) queries over `latent` (B, T_k, d_c + d_R), the
        entries [c_kv | k_rope] of every token so far with x's the last T. Returns (B, T, dim).

        `latent` is only read through views: a preallocated cache passes its filled prefix.
        """
        b, t, _ = x.shape
        q_nope, q_rope = self.queries(x, cos, sin)  # (B, H, T, d_nope), (B, H, T, d_R)
        c_kv, k_rope = latent.split([self.kv_lora_rank, self.qk_rope_head_dim], dim=-1)  # views
        t_k = latent.shape[1]
        kw: dict[str, Any] = dict(scale=self.softmax_scale, attn_mask=attn_mask, q_offset=t_k - t)
        if absorbed:
            w_kv = self.wkv_b.weight.view(
                self.n_heads, -1, self.kv_lora_rank
            )  # (H, d_nope + d_v, d_c)
            w_uk, w_uv = w_kv.split([self.qk_nope_head_dim, self.v_head_dim], dim=1)
            q_latent = torch.einsum("bhtd,hdc->bhtc", q_nope, w_uk)  # (B, H, T, d_c)
            q = torch.cat((q_latent, q_rope), dim=-1)  # (B, H, T, d_c + d_R)
            o_latent = attention(q, latent[:, None], c_kv[:, None], **kw)  # MQA on the latents
            o = torch.einsum("bhtc,hvc->bhtv", o_latent, w_uv)  # (B, H, T, d_v)
        else:
            kv = self.wkv_b(c_kv).view(b, t_k, self.n_heads, -1).transpose(1, 2)
            k_nope, v = kv.split([self.qk_nope_head_dim, self.v_head_dim], dim=-1)
            k_rope_h = k_rope[:, None].expand(b, self.n_heads, t_k, self.qk_rope_head_dim)
            q = torch.cat((q_nope, q_rope), dim=-1)  # (B, H, T, d_qk)
            k = torch.cat((k_nope, k_rope_h), dim=-1)  # (B, H, T_k, d_qk)
            o = attention(q, k, v, **kw)  # (B, H, T, d_v)
        return self.wo(o.transpose(1, 2).reshape(b, t, self.n_heads * self.v_head_dim))
