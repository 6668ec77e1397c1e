"""Rotary position embeddings (RoPE) and their context-extension scalings.

API
- `rope_frequencies(head_dim, theta=10000.0, scaling=None, *, seq_len=None, dtype=float32,
  device=None) -> inv_freq (head_dim // 2,)`
- `rope_attention_factor(scaling) -> float`: YaRN's multiplier on cos/sin (1.0 otherwise)
- `yarn_get_mscale(scale, mscale=1.0) -> float`: 0.1 * mscale * ln(scale) + 1 (1 if scale <= 1)
- `rope_cos_sin(positions, inv_freq, attention_factor=1.0) -> (cos, sin)`, each
  (..., T, head_dim // 2) for positions (..., T)
- `apply_rope(x, cos, sin, layout="half") -> Tensor`, x (B, H, T, D), same shape out
- `rope_rotation(cos, sin, layout="half", dtype=None) -> (cos_r, sin_r)` (..., T, r): the tables
  expanded once, and `apply_rope_tables(x, cos_r, sin_r, layout="half")`, the rotation itself
- `RotaryEmbedding(head_dim, theta=10000.0, scaling=None)`: `forward(positions) -> (cos, sin)`

RoPE (Su et al. 2021, arXiv:2104.09864) rotates each pair of channels i of a query or key at
position m by the angle m * theta_i, theta_i = base^(-2i/d). Then q_m . k_n depends only on
m - n. Two layouts pair the channels differently:
- "interleaved": pairs (x0, x1), (x2, x3), ... as in the paper and Meta's original Llama code
  (complex multiplication of `x.view(..., d/2, 2)`), and DeepSeek-V3's checkpoints;
- "half": pairs (x_i, x_{i + d/2}), the `rotate_half` of GPT-NeoX and Hugging Face Llama.
They are the same rotation up to a fixed permutation of the channels (HF permutes the
q/k projection rows of Meta's checkpoints when converting them).

The cos/sin tables here have d/2 columns, one per frequency; `apply_rope` expands them for
the layout. If cos has fewer than D/2 columns only the first 2 * cos.shape[-1] channels are
rotated (partial rotary embeddings) and the rest pass through.

`scaling` is a mapping with Hugging Face's `rope_parameters` keys: "rope_type" (also read
as "type" or "kind") and its parameters. `dataclasses.asdict` of an object whose fields are
named kind / factor / original_max_seq_len / ... works too. Types:
- "default": no scaling.
- "linear": position interpolation, inv_freq / factor (Chen et al. 2023, arXiv:2306.15595).
- "ntk": static NTK-aware base change, base * factor^(d / (d - 2)) (bloc97, 2023).
- "dynamic": dynamic NTK (emozilla, 2023), as transformers' `_compute_dynamic_ntk_parameters`:
  base * (factor * L / L_max - (factor - 1))^(d / (d - 2)) with L = max(seq_len, L_max);
  needs "max_position_embeddings" (or "original_max_seq_len"). The frequencies depend on the
  length: `RotaryEmbedding` recomputes them from the largest position it is given, as
  transformers' `dynamic_rope_update` does.
- "yarn": YaRN (Peng et al. 2023, arXiv:2309.00071), as `_compute_yarn_parameters`: a linear
  ramp between interpolated and original frequencies over the dims whose number of rotations
  in the original context lies between beta_slow and beta_fast, plus the attention factor
  mscale = 0.1 ln(factor) + 1 on cos and sin.
- "llama3": Llama 3.1's frequency-dependent scaling (Meta 2024), as
  `_compute_llama3_parameters`: wavelengths above L_orig / low_freq_factor are divided by
  factor, below L_orig / high_freq_factor kept, smoothly interpolated in between.
The float32 arithmetic mirrors transformers' so that the tables agree bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


def _param(scaling: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    """The first of `names` present (and not None) in `scaling`, else `default`."""
    for name in names:
        if scaling.get(name) is not None:
            return scaling[name]
    return default


def _rope_type(scaling: Mapping[str, Any] | None) -> str:
    if scaling is None:
        return "default"
    return _param(scaling, "rope_type", "type", "kind", default="default")


def yarn_get_mscale(scale: float, mscale: float = 1.0) -> float:
    """YaRN's attention temperature factor 0.1 * mscale * ln(scale) + 1 (Peng et al. 2023, eq. 22)."""
    if scale <= 1:
        return 1.0
    return 0.1 * mscale * math.log(scale) + 1.0


def _yarn_factor(scaling: Mapping[str, Any]) -> float:
    factor = _param(scaling, "factor")
    if factor is None:  # DeepSeek-style configs: the ratio of the extended to the original context
        original = _param(scaling, "original_max_position_embeddings", "original_max_seq_len")
        factor = scaling["max_position_embeddings"] / original
    return factor


def rope_attention_factor(scaling: Mapping[str, Any] | None) -> float:
    """Multiplier on cos and sin: YaRN's mscale ratio, 1.0 for every other rope type."""
    if _rope_type(scaling) != "yarn":
        return 1.0
    attention_factor = _param(scaling, "attention_factor")
    if attention_factor is not None:
        return float(attention_factor)
    factor = _yarn_factor(scaling)
    mscale, mscale_all_dim = _param(scaling, "mscale"), _param(scaling, "mscale_all_dim")
    if mscale and mscale_all_dim:
        return float(yarn_get_mscale(factor, mscale) / yarn_get_mscale(factor, mscale_all_dim))
    return yarn_get_mscale(factor)


def _base_inv_freq(
    dim: int, theta: float, dtype: torch.dtype, device: torch.device | str | None
) -> torch.Tensor:
    """theta_i = base^(-2i/d), i = 0 .. d/2 - 1 (Su et al. 2021, eq. 15)."""
    exponents = torch.arange(0, dim, 2, device=device).to(dtype) / dim  # (d/2,)
    return 1.0 / (theta**exponents)


def _yarn_inv_freq(
    dim: int, theta: float, scaling: Mapping[str, Any], dtype: torch.dtype, device: Any
) -> torch.Tensor:
    factor = _yarn_factor(scaling)
    original = _param(scaling, "original_max_position_embeddings", "original_max_seq_len")
    beta_fast = _param(scaling, "beta_fast", default=32)
    beta_slow = _param(scaling, "beta_slow", default=1)
    truncate = _param(scaling, "truncate", default=True)

    def correction_dim(n_rotations: float) -> float:
        # the dim whose wavelength fits n_rotations times into the original context
        return (dim * math.log(original / (n_rotations * 2 * math.pi))) / (2 * math.log(theta))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # avoid a zero-width ramp
    pos_freqs = theta ** (torch.arange(0, dim, 2, device=device).to(dtype) / dim)  # (d/2,)
    inv_freq_extrapolation = 1.0 / pos_freqs
    inv_freq_interpolation = 1.0 / (factor * pos_freqs)
    ramp = ((torch.arange(dim // 2, dtype=dtype, device=device) - low) / (high - low)).clamp(0, 1)
    extrapolation_factor = 1 - ramp  # 1 for high-frequency dims (kept), 0 for low (interpolated)
    return (
        inv_freq_interpolation * (1 - extrapolation_factor)
        + inv_freq_extrapolation * extrapolation_factor
    )


def _llama3_inv_freq(inv_freq: torch.Tensor, scaling: Mapping[str, Any]) -> torch.Tensor:
    factor = scaling["factor"]
    low_freq_factor = _param(scaling, "low_freq_factor", default=1.0)
    high_freq_factor = _param(scaling, "high_freq_factor", default=4.0)
    old_context_len = _param(scaling, "original_max_position_embeddings", "original_max_seq_len")
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth) * inv_freq_llama / factor + smooth * inv_freq_llama
    is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, inv_freq_llama)


def rope_frequencies(
    head_dim: int,
    theta: float = 10000.0,
    scaling: Mapping[str, Any] | None = None,
    *,
    seq_len: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Inverse frequencies theta_i (head_dim // 2,) of RoPE, optionally scaled.

    head_dim is the number of rotated channels (even). `seq_len` is only read by "dynamic".
    """
    if head_dim % 2:
        raise ValueError(f"RoPE needs an even head_dim, got {head_dim}")
    rope_type = _rope_type(scaling)
    if rope_type == "default":
        return _base_inv_freq(head_dim, theta, dtype, device)
    assert scaling is not None
    if rope_type == "linear":
        return _base_inv_freq(head_dim, theta, dtype, device) / scaling["factor"]
    if rope_type == "ntk":
        base = theta * scaling["factor"] ** (head_dim / (head_dim - 2))
        return _base_inv_freq(head_dim, base, dtype, device)
    if rope_type == "dynamic":
        max_len = _param(
            scaling, "max_position_embeddings", "original_max_position_embeddings",
            "original_max_seq_len",
        )  # fmt: skip
        length = max(seq_len or max_len, max_len)
        factor = scaling["factor"]
        base = theta * ((factor * length / max_len) - (factor - 1)) ** (head_dim / (head_dim - 2))
        return _base_inv_freq(head_dim, base, dtype, device)
    if rope_type == "yarn":
        return _yarn_inv_freq(head_dim, theta, scaling, dtype, device)
    if rope_type == "llama3":
        return _llama3_inv_freq(_base_inv_freq(head_dim, theta, dtype, device), scaling)
    raise ValueError(
        f"unknown rope_type {rope_type!r}: expected default, linear, ntk, dynamic, yarn or llama3"
    )


def is_dynamic(scaling: Mapping[str, Any] | None) -> bool:
    """True for dynamic NTK, whose frequencies depend on the sequence length."""
    return _rope_type(scaling) == "dynamic"


def rope_cos_sin(
    positions: torch.Tensor, inv_freq: torch.Tensor, attention_factor: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the angles m * theta_i: positions (..., T) -> two (..., T, d/2) tables.

    Computed in inv_freq's dtype (at least float32), times YaRN's attention factor.
    Decoding with a cache passes the absolute positions of the new tokens, e.g.
    `torch.arange(n_cached, n_cached + T)`.
    """
    dtype = torch.promote_types(inv_freq.dtype, torch.float32)
    angles = positions[..., None].to(dtype) * inv_freq.to(device=positions.device, dtype=dtype)
    cos, sin = angles.cos(), angles.sin()
    if attention_factor != 1.0:
        cos, sin = cos * attention_factor, sin * attention_factor
    return cos, sin


def rope_rotation(
    cos: torch.Tensor, sin: torch.Tensor, layout: str = "half", dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Expand cos, sin (..., T, r/2) to the (..., T, r) tables of `apply_rope_tables`, in dtype.

    With them a rotation is x * cos_r + partner(x) * sin_r, four operators: "half" repeats
    the columns, (c, c) and (-s, s), partner(x) = (x2, x1); "interleaved" repeats each column,
    (c0, c0, c1, c1, ...) and (-s0, s0, -s1, s1, ...), partner swaps each pair. A model builds
    them once per step for all its layers (`Transformer.forward`).
    """
    if layout == "half":
        cos_r, sin_r = torch.cat((cos, cos), dim=-1), torch.cat((-sin, sin), dim=-1)
    elif layout == "interleaved":
        cos_r = torch.stack((cos, cos), dim=-1).flatten(-2)
        sin_r = torch.stack((-sin, sin), dim=-1).flatten(-2)
    else:
        raise ValueError(f"layout must be 'half' or 'interleaved', got {layout!r}")
    if dtype is None or dtype == cos_r.dtype:
        return cos_r, sin_r
    return cos_r.to(dtype), sin_r.to(dtype)


def apply_rope_tables(
    x: torch.Tensor,
    cos_r: torch.Tensor,
    sin_r: torch.Tensor,
    layout: str = "half",
    *,
    upcast: bool = False,
) -> torch.Tensor:
    """Rotate x (B, H, T, D) by the `rope_rotation` tables (T, r) or (B, T, r), r <= D.

    The first r channels are rotated, the rest pass through (partial rotary embeddings).
    The tables are cast to x's dtype (Llama, Mistral, Qwen 2, Gemma 2), or with `upcast` x is
    rotated in the wider of the two dtypes and cast back (OLMo 2). Elementwise the same
    arithmetic as HF's q * cos + rotate_half(q) * sin: negating is exact.
    """
    if cos_r.dim() == 3:  # per-sequence positions (B, T, r): broadcast over heads
        cos_r, sin_r = cos_r[:, None], sin_r[:, None]
    out_dtype = x.dtype
    dtype = torch.promote_types(x.dtype, cos_r.dtype) if upcast else x.dtype
    if x.dtype != dtype:  # checked here: a cast to the same dtype is still an operator call
        x = x.to(dtype)
    if cos_r.dtype != dtype:
        cos_r, sin_r = cos_r.to(dtype), sin_r.to(dtype)
    r, d = cos_r.shape[-1], x.shape[-1]
    if r > d:
        raise ValueError(f"cos/sin cover {r} channels but x has head dim {d}")
    x_rot = x if r == d else x[..., :r]
    if layout == "half":
        partner = torch.roll(x_rot, r // 2, dims=-1)  # (x2, x1)
    elif layout == "interleaved":
        partner = x_rot.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)  # (x1, x0, x3, x2, ...)
    else:
        raise ValueError(f"layout must be 'half' or 'interleaved', got {layout!r}")
    out = x_rot * cos_r + partner * sin_r
    if r < d:
        out = torch.cat((out, x[..., r:]), dim=-1)
    return out if out.dtype == out_dtype else out.to(out_dtype)


def apply_rope(
    x: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    layout: str = "half",
    *,
    upcast: bool = False,
) -> torch.Tensor:
    """Rotate x (B, H, T, D) by the angles of cos/sin (T, D/2) or (B, T, D/2); same shape out.

    layout "half" pairs channel i with i + D/2 (HF Llama's rotate_half); "interleaved" pairs
    2i with 2i + 1 (RoPE paper, Meta's Llama, DeepSeek). cos/sin are cast to x's dtype
    (Llama, Mistral, Qwen 2, Gemma 2), or with `upcast` x is rotated in the wider of the two
    dtypes and cast back (OLMo 2; differs from the default in bf16 only). The tables are
    expanded by `rope_rotation` and applied by `apply_rope_tables`.
    """
    cos_r, sin_r = rope_rotation(cos, sin, layout)
    return apply_rope_tables(x, cos_r, sin_r, layout, upcast=upcast)


class RotaryEmbedding(nn.Module):
    """Holds inv_freq (a non-persistent buffer) and the attention factor of one RoPE variant."""

    inv_freq: torch.Tensor

    def __init__(
        self,
        head_dim: int,
        theta: float = 10000.0,
        scaling: Mapping[str, Any] | None = None,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.head_dim, self.theta, self.scaling = head_dim, theta, scaling
        self.attention_factor = rope_attention_factor(scaling)
        inv_freq = rope_frequencies(head_dim, theta, scaling, device=device)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """positions (..., T) -> cos, sin (..., T, head_dim // 2) in float32."""
        inv_freq = self.inv_freq.float()
        if is_dynamic(self.scaling):  # the length is the largest position + 1
            seq_len = int(positions.max()) + 1
            inv_freq = rope_frequencies(
                self.head_dim, self.theta, self.scaling, seq_len=seq_len, device=positions.device
            )
        return rope_cos_sin(positions, inv_freq, self.attention_factor)
