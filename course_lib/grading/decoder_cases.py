"""Seeded inputs and references for the decoder-block exercises (ps08).

Each `*_cases(seed, n)` returns edge cases followed by `n` random ones for `check_function`;
each `reference_*` is the course_lib kernel called with the exercise's signature. Inputs are
float32 or float64 tensors; `with_dtype(fn)` makes a check compare the output dtype as well.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.grading.checks import Case, random_cases
from course_lib.kernels import apply_rope, attention, rms_norm, rope_cos_sin, rope_frequencies
from course_lib.kernels import silu as _silu
from course_lib.kernels.norms import qk_norm

_DTYPES = (torch.float32, torch.float64)


def _randn(rng: np.random.Generator, *shape: int, dtype=torch.float64, scale=1.0) -> torch.Tensor:
    return torch.as_tensor(scale * rng.standard_normal(shape)).to(dtype)


def _dtype(rng: np.random.Generator) -> torch.dtype:
    return _DTYPES[int(rng.integers(len(_DTYPES)))]


def with_dtype(fn: Callable) -> Callable:
    """fn returning a tensor -> fn returning (tensor, its dtype as a string)."""

    def wrapped(*args, **kwargs):
        out = fn(*args, **kwargs)
        return out, str(getattr(out, "dtype", type(out).__name__))

    wrapped.__name__ = getattr(fn, "__name__", "your function")
    return wrapped


# ---------------------------------------------------------------- RMSNorm


def reference_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) * weight over the last dim (Zhang & Sennrich 2019)."""
    return rms_norm(x, weight, eps)


def rms_norm_cases(seed: int, n: int) -> list[Case]:
    """`(x (..., d), weight (d,), eps)`: vectors, batches, d = 1, all-zero rows, big values."""
    edge = [
        Case((torch.tensor([3.0, 4.0]), torch.ones(2), 0.0), label="[3, 4]: rms = 5/sqrt(2)"),
        Case((torch.zeros(2, 5), torch.ones(5), 1e-6), label="all-zero rows: eps avoids 0/0"),
        Case(
            (
                torch.randn(3, 1, dtype=torch.float64),
                torch.full((1,), 2.0, dtype=torch.float64),
                1e-6,
            ),
            label="d = 1",
        ),
        Case((1e4 * torch.randn(2, 3, 8), torch.rand(8) + 0.5, 1e-5), label="large values"),
    ]

    def make(rng: np.random.Generator) -> Case:
        dtype, d = _dtype(rng), int(rng.integers(2, 40))
        lead = tuple(int(s) for s in rng.integers(1, 5, int(rng.integers(0, 3))))
        x = _randn(rng, *lead, d, dtype=dtype, scale=float(rng.uniform(0.1, 10)))
        weight = _randn(rng, d, dtype=dtype)
        return Case((x, weight, float(rng.choice([1e-6, 1e-5]))), label=f"{dtype}")

    return random_cases(seed, n, make, edge_cases=edge)


# ---------------------------------------------------------------- RoPE


def reference_rope(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """RoPE in the "half" layout (Hugging Face Llama): x (B, H, T, D), positions (T,)."""
    inv_freq = rope_frequencies(x.shape[-1], theta, dtype=torch.float64)
    cos, sin = rope_cos_sin(positions, inv_freq)
    return apply_rope(x, cos, sin, layout="half")


def rope_cases(seed: int, n: int) -> list[Case]:
    """`(x (B, H, T, D), positions (T,), theta)`: position 0, far positions, D = 2."""
    edge = [
        Case(
            (
                torch.randn(1, 1, 3, 4, dtype=torch.float64),
                torch.zeros(3, dtype=torch.long),
                10000.0,
            ),
            label="all at position 0: no rotation",
        ),
        Case(
            (torch.randn(1, 2, 4, 2, dtype=torch.float64), torch.arange(4), 10000.0),
            label="D = 2: one pair, rotated by m radians",
        ),
        Case(
            (torch.randn(2, 1, 2, 8, dtype=torch.float64), torch.tensor([1000, 4097]), 500000.0),
            label="far positions, Llama 3 base",
        ),
    ]

    def make(rng: np.random.Generator) -> Case:
        dtype = _dtype(rng)
        b, h, t = (int(s) for s in rng.integers(1, 4, 3))
        d = 2 * int(rng.integers(1, 17))
        positions = torch.as_tensor(np.sort(rng.integers(0, 2048, t)))
        theta = float(rng.choice([10000.0, 500000.0, 1e6]))
        return Case((_randn(rng, b, h, t, d, dtype=dtype), positions, theta), label=f"{dtype}")

    return random_cases(seed, n, make, edge_cases=edge)


# ---------------------------------------------------------------- SwiGLU


def reference_swiglu(
    x: torch.Tensor, w_gate: torch.Tensor, w_up: torch.Tensor, w_down: torch.Tensor
) -> torch.Tensor:
    """W_down (SiLU(W_gate x) * W_up x) (Shazeer 2020): weights as nn.Linear, (out, in)."""
    return F.linear(_silu(F.linear(x, w_gate)) * F.linear(x, w_up), w_down)


def swiglu_cases(seed: int, n: int) -> list[Case]:
    """`(x (..., d), w_gate (h, d), w_up (h, d), w_down (d, h))`; h = 1 and a 1-D x."""
    one = torch.ones(1, 1, dtype=torch.float64)
    edge = [
        Case(
            (torch.tensor([2.0], dtype=torch.float64), one, one, one),
            label="d = h = 1: silu(2) * 2",
        ),
        Case(
            (torch.randn(5, 4), torch.randn(1, 4), torch.randn(1, 4), torch.randn(4, 1)),
            label="hidden size 1",
        ),
    ]

    def make(rng: np.random.Generator) -> Case:
        dtype, d, h = _dtype(rng), int(rng.integers(1, 24)), int(rng.integers(1, 48))
        lead = tuple(int(s) for s in rng.integers(1, 5, int(rng.integers(1, 3))))
        x = _randn(rng, *lead, d, dtype=dtype)
        ws = (_randn(rng, h, d, dtype=dtype), _randn(rng, h, d, dtype=dtype))
        return Case((x, *ws, _randn(rng, d, h, dtype=dtype)), label=f"{dtype}")

    return random_cases(seed, n, make, edge_cases=edge)


def llama_ffn_hidden(d: int, multiple_of: int, ffn_dim_multiplier: float | None = None) -> int:
    """Meta's Llama rule: int(8d/3), times ffn_dim_multiplier, rounded up to multiple_of."""
    h = int(2 * 4 * d / 3)
    if ffn_dim_multiplier is not None:
        h = int(ffn_dim_multiplier * h)
    return multiple_of * ((h + multiple_of - 1) // multiple_of)


# ---------------------------------------------------------------- GQA attention


def reference_gqa_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int | None
) -> torch.Tensor:
    """Causal GQA with an optional sliding window; queries are the last T_q positions."""
    return attention(q, k, v, causal=True, window=window)


def attention_cases(seed: int, n: int) -> list[Case]:
    """`(q (B, H, T_q, D), k, v (B, H_kv, T_k, D), window)`: MHA, MQA, w = 1, w >= T, decode."""

    def qkv(b, h, h_kv, t_q, t_k, d, dtype=torch.float64):
        g = torch.Generator().manual_seed(b * 1000 + h * 100 + h_kv * 10 + t_q + t_k + d)
        q = torch.randn(b, h, t_q, d, generator=g, dtype=dtype)
        k, v = torch.randn(2, b, h_kv, t_k, d, generator=g, dtype=dtype)
        return q, k, v

    edge = [
        Case((*qkv(1, 4, 4, 6, 6, 8), None), label="MHA (H_kv = H), causal"),
        Case((*qkv(1, 4, 1, 6, 6, 8), None), label="MQA (H_kv = 1), causal"),
        Case((*qkv(2, 6, 2, 7, 7, 4), 1), label="window 1: each token sees only itself"),
        Case((*qkv(1, 4, 2, 5, 5, 8), 5), label="window = T: same as causal"),
        Case((*qkv(1, 4, 2, 5, 5, 8), 100), label="window > T: same as causal"),
        Case((*qkv(1, 8, 2, 1, 9, 8), 4), label="decoding: 1 query after 8 cached keys"),
        Case((*qkv(1, 2, 1, 3, 10, 4), 3), label="3 queries, the last of 10 positions"),
    ]

    def make(rng: np.random.Generator) -> Case:
        dtype = _dtype(rng)
        h_kv = int(rng.integers(1, 4))
        h = h_kv * int(rng.integers(1, 4))
        t_k = int(rng.integers(1, 16))
        t_q = t_k if rng.random() < 0.7 else int(rng.integers(1, t_k + 1))
        b, d = int(rng.integers(1, 3)), int(rng.integers(1, 12))
        window = None if rng.random() < 0.3 else int(rng.integers(1, 20))
        q = _randn(rng, b, h, t_q, d, dtype=dtype)
        k, v = _randn(rng, b, h_kv, t_k, d, dtype=dtype), _randn(rng, b, h_kv, t_k, d, dtype=dtype)
        return Case((q, k, v, window), label=f"H={h}, H_kv={h_kv}, window={window}")

    return random_cases(seed, n, make, edge_cases=edge)


# ---------------------------------------------------------------- rolling-buffer KV cache


def rolling_decode(cache_cls: type, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int):
    """Decode token by token through `cache_cls(B, H_kv, window, D)` and `.update(k, v, pos)`.

    Returns the attention outputs (B, H, T, D) and the most entries the cache ever returned.
    """
    b, h_kv, t, d = k.shape
    cache = cache_cls(b, h_kv, window, d, dtype=k.dtype)
    outputs, most = [], 0
    for pos in range(t):
        keys, values = cache.update(k[:, :, pos : pos + 1], v[:, :, pos : pos + 1], pos)
        most = max(most, int(keys.shape[2]))
        outputs.append(attention(q[:, :, pos : pos + 1], keys, values, causal=False))
    return torch.cat(outputs, dim=2), most


def reference_rolling_decode(cache_cls: type, q, k, v, window: int):
    """What `rolling_decode` must give: windowed attention, at most `window` cached entries."""
    return attention(q, k, v, causal=True, window=window), min(window, k.shape[2])


def rolling_cases(seed: int, n: int) -> list[Case]:
    """`(q (B, H, T, D), k, v (B, H_kv, T, D), window)`: w = 1, w = T, w > T, wrap-arounds."""

    def qkv(h, h_kv, t, d, s):
        g = torch.Generator().manual_seed(s)
        return torch.randn(1, h, t, d, generator=g), *torch.randn(2, 1, h_kv, t, d, generator=g)

    edge = [
        Case((*qkv(2, 1, 6, 4, 1), 1), label="window 1"),
        Case((*qkv(2, 2, 5, 4, 2), 5), label="window = T: never wraps"),
        Case((*qkv(4, 2, 4, 8, 3), 10), label="window > T"),
        Case((*qkv(4, 2, 17, 8, 4), 4), label="wraps around four times"),
    ]

    def make(rng: np.random.Generator) -> Case:
        h_kv = int(rng.integers(1, 3))
        h, t, d = h_kv * int(rng.integers(1, 3)), int(rng.integers(1, 25)), int(rng.integers(1, 9))
        dtype = _dtype(rng)
        q = _randn(rng, 1, h, t, d, dtype=dtype)
        k, v = _randn(rng, 1, h_kv, t, d, dtype=dtype), _randn(rng, 1, h_kv, t, d, dtype=dtype)
        return Case((q, k, v, int(rng.integers(1, 12))), label=f"T={t}")

    return random_cases(seed, n, make, edge_cases=edge)


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, n_heads * D) -> (B, n_heads, T, D), a view."""
    return x.unflatten(-1, (n_heads, -1)).transpose(1, 2)


# ---------------------------------------------------------------- per-head QK-norm, then RoPE


def reference_qk_norm_rope(
    x: torch.Tensor,
    weight: torch.Tensor,
    n_heads: int,
    positions: torch.Tensor,
    theta: float,
    eps: float,
) -> torch.Tensor:
    """Qwen 3 / Gemma 3 queries or keys: x (B, T, n_heads * D) -> (B, n_heads, T, D).

    Each head is RMS-normalised over its D channels with the gain `weight` (D,) shared by
    the heads (`kernels.norms.qk_norm`, per_head=True), then rotated by RoPE (half layout).
    """
    normed = qk_norm(x, weight, n_heads, eps, per_head=True)  # (B, T, n_heads * D)
    heads = split_heads(normed, n_heads)  # (B, n_heads, T, D)
    return reference_rope(heads, positions, theta)


def qk_norm_cases(seed: int, n: int) -> list[Case]:
    """`(x (B, T, H * D), weight (D,), n_heads, positions (T,), theta, eps)`, gains not all 1.

    Edge cases: one head (per head = whole projection); heads of very different sizes (a norm
    over the whole projection leaves the small head small); a gain that differs inside each
    rotated pair (RMSNorm after RoPE then differs from before).
    """
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    uneven = randn(1, 3, 2, 8) * torch.tensor([1e3, 0.1], dtype=torch.float64)[:, None]
    edge = [
        Case(
            (randn(1, 4, 6), 1.0 + randn(6).abs(), 1, torch.arange(4), 10000.0, 1e-6),
            label="one head: per head = the whole projection",
        ),
        Case(
            (uneven.flatten(-2), torch.ones(8, dtype=torch.float64), 2, torch.arange(3), 1e4, 1e-6),
            label="head 0 is 10^4 times head 1: both must come out with RMS about 1",
        ),
        Case(
            (randn(2, 3, 12), torch.tensor([1.0, 1.0, 1.0, 3.0, 0.5, 2.0], dtype=torch.float64),
             2, torch.tensor([0, 5, 9]), 10000.0, 1e-6),
            label="gain differs inside rotated pairs: the norm must come before RoPE",
        ),
    ]  # fmt: skip

    def make(rng: np.random.Generator) -> Case:
        dtype = _dtype(rng)
        b, t, h = int(rng.integers(1, 3)), int(rng.integers(1, 7)), int(rng.integers(1, 5))
        d = 2 * int(rng.integers(1, 9))
        x = _randn(rng, b, t, h * d, dtype=dtype, scale=float(rng.uniform(0.1, 20)))
        weight = torch.as_tensor(rng.uniform(0.2, 2.0, d)).to(dtype)
        positions = torch.as_tensor(np.sort(rng.integers(0, 4096, t)))
        theta = float(rng.choice([10000.0, 1e6]))
        eps = float(rng.choice([1e-6, 1e-5]))
        return Case((x, weight, h, positions, theta, eps), label=f"{dtype}, H={h}, D={d}")

    return random_cases(seed, n, make, edge_cases=edge)
