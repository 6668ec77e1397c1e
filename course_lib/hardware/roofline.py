"""The roofline model: is a kernel or a whole inference step compute- or memory-bound?

Williams, Waterman & Patterson 2009, "Roofline: an insightful visual performance model".
A computation doing F FLOPs while moving Q bytes to and from main memory has arithmetic
intensity I = F / Q; on a chip with peak P FLOP/s and bandwidth W bytes/s it can reach at
most min(P, I * W). The ridge point P / W separates the memory-bound side (I below it)
from the compute-bound side. For LLM inference (Pope et al. 2022, arXiv:2211.05102):
prefill multiplies the weights by B * T tokens at once and is compute-bound, decode
multiplies them by B tokens and reads the whole KV cache, so it is memory-bound unless
the batch is large.

Byte counts assume an ideal fused implementation: every weight, every KV-cache entry and
every attention input/output crosses main memory exactly once; activations between layers
and the (B, T, d) residual stream are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from course_lib.hardware.specs import BYTES_PER_ELEMENT, Accelerator


def matmul_intensity(m: int, n: int, k: int, bytes_per_element: float = 2) -> float:
    """FLOP/byte of C (m, n) = A (m, k) @ B (k, n): 2mnk FLOPs over (mk + kn + mn) elements moved."""
    return 2.0 * m * n * k / ((m * k + k * n + m * n) * bytes_per_element)


def ridge_point(peak_flops: float, bandwidth: float) -> float:
    """Intensity (FLOP/byte) at which memory time equals compute time: peak / bandwidth."""
    return peak_flops / bandwidth


def attainable_flops(intensity: float, peak_flops: float, bandwidth: float) -> float:
    """The roofline: min(peak, intensity * bandwidth) FLOP/s."""
    return min(peak_flops, intensity * bandwidth)


def causal_pairs(seq_len: int) -> int:
    """(query, key) pairs a causal mask keeps for T tokens: T (T + 1) / 2."""
    return seq_len * (seq_len + 1) // 2


def attention_prefill_intensity(
    seq_len: int,
    head_dim: int,
    n_heads: int,
    n_kv_heads: int | None = None,
    bytes_per_element: float = 2,
    causal: bool = True,
) -> float:
    """FLOP/byte of one layer's attention over T tokens with a fused (flash) kernel.

    FLOPs: 4 * H * d per (query, key) pair (q.k and p.v, 2 FLOPs per multiply-add), over
    T(T+1)/2 pairs if causal (a tile-skipping kernel does about that) or T^2. Bytes: read
    q and write o (H heads), read k and v (H_kv heads), each once: the FlashAttention ideal.
    """
    n_kv_heads = n_kv_heads or n_heads
    pairs = causal_pairs(seq_len) if causal else seq_len * seq_len
    flops = 4.0 * n_heads * head_dim * pairs
    moved = (2 * n_heads + 2 * n_kv_heads) * seq_len * head_dim * bytes_per_element
    return flops / moved


def attention_decode_intensity(
    context_len: int,
    head_dim: int,
    n_heads: int,
    n_kv_heads: int | None = None,
    bytes_per_element: float = 2,
) -> float:
    """FLOP/byte of one layer's attention for one new token over S cached tokens.

    FLOPs 4 * H * d * S; bytes: the cached K and V (2 * H_kv * S * d) plus q and o
    (2 * H * d). Tends to 2 * (H / H_kv) / bytes_per_element: only grouped-query
    attention raises it, batching does not (every sequence has its own cache).
    """
    n_kv_heads = n_kv_heads or n_heads
    flops = 4.0 * n_heads * head_dim * context_len
    moved = (2 * n_kv_heads * context_len + 2 * n_heads) * head_dim * bytes_per_element
    return flops / moved


@dataclass(frozen=True)
class ModelShape:
    """What the roofline needs of a model: parameters multiplied per token, attention shape."""

    n_params: float  # parameters in matmuls per token (the N of 2N FLOPs/token)
    n_layers: int
    n_heads: int
    head_dim: int
    kv_elements_per_token: int  # cached numbers per token, summed over layers


def model_shape(cfg: Any, n_params: float | None = None) -> ModelShape:
    """A ModelShape from a ModelShape, a course_lib ModelConfig or anything with its fields.

    Needs n_layers, n_heads, head_dim (or d_model) and n_kv_heads (default n_heads).
    n_params defaults to `cfg.n_params`, else to course_lib.models' matmul parameters
    (active parameters for MoE, embeddings excluded). MLA configs use their latent cache.
    """
    if isinstance(cfg, ModelShape):
        return cfg
    head_dim = getattr(cfg, "head_dim", 0) or cfg.d_model // cfg.n_heads
    n_kv = getattr(cfg, "n_kv_heads", 0) or cfg.n_heads
    kv_per_layer = 2 * n_kv * head_dim
    if getattr(cfg, "is_mla", False):
        kv_per_layer = cfg.kv_lora_rank + cfg.qk_rope_head_dim
    if n_params is None:
        n_params = getattr(cfg, "n_params", None)
    if n_params is None:
        from course_lib.models.analytics import matmul_parameters

        n_params = matmul_parameters(cfg)
    return ModelShape(
        float(n_params), cfg.n_layers, cfg.n_heads, head_dim, kv_per_layer * cfg.n_layers
    )


def step_flops_and_bytes(
    cfg: Any,
    batch: int,
    seq_len: int,
    phase: str,
    weight_dtype: str = "bf16",
    kv_dtype: str = "bf16",
) -> tuple[float, float]:
    """FLOPs and main-memory bytes of one forward step of a whole model.

    phase="prefill": B sequences of T new tokens; FLOPs 2 N B T plus causal attention
    4 L H d * T(T+1)/2 * B; bytes: the weights once plus the KV cache written (B T tokens).
    phase="decode": one new token for each of B sequences with T tokens of context;
    FLOPs 2 N B + 4 L H d T B; bytes: the weights once plus the KV cache read (B T tokens).
    """
    s = model_shape(cfg)
    weights = s.n_params * BYTES_PER_ELEMENT[weight_dtype]
    kv = batch * seq_len * s.kv_elements_per_token * BYTES_PER_ELEMENT[kv_dtype]
    attn = 4.0 * s.n_layers * s.n_heads * s.head_dim
    if phase == "prefill":
        return 2.0 * s.n_params * batch * seq_len + attn * causal_pairs(
            seq_len
        ) * batch, weights + kv
    if phase == "decode":
        return 2.0 * s.n_params * batch + attn * seq_len * batch, weights + kv
    raise ValueError(f"phase must be 'prefill' or 'decode', got {phase!r}")


@dataclass(frozen=True)
class RooflinePoint:
    """Where one step sits on an accelerator's roofline."""

    flops: float
    bytes: float
    intensity: float  # FLOP/byte
    ridge: float  # FLOP/byte
    attainable_flops: float  # FLOP/s
    time_s: float  # lower bound: max(compute time, memory time)
    bound: str  # "compute" or "memory"


def roofline(
    flops: float, bytes_moved: float, peak_flops: float, bandwidth: float
) -> RooflinePoint:
    """Place a computation of `flops` FLOPs moving `bytes_moved` bytes on a roofline."""
    intensity = flops / bytes_moved
    ridge = ridge_point(peak_flops, bandwidth)
    return RooflinePoint(
        flops=flops,
        bytes=bytes_moved,
        intensity=intensity,
        ridge=ridge,
        attainable_flops=attainable_flops(intensity, peak_flops, bandwidth),
        time_s=max(flops / peak_flops, bytes_moved / bandwidth),
        bound="compute" if intensity >= ridge else "memory",
    )


def step_roofline(
    cfg: Any,
    batch: int,
    seq_len: int,
    phase: str,
    accelerator: Accelerator,
    dtype: str = "bf16",
    kv_dtype: str | None = None,
) -> RooflinePoint:
    """Compute- or memory-bound? One prefill or decode step of a model on one accelerator.

    Weights in `dtype` (whose peak is used), KV cache in `kv_dtype` (default: dtype).
    """
    flops, moved = step_flops_and_bytes(cfg, batch, seq_len, phase, dtype, kv_dtype or dtype)
    return roofline(flops, moved, accelerator.peak_flops(dtype), accelerator.bandwidth)
