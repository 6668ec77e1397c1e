"""Model FLOPs utilisation (MFU), memory-bandwidth utilisation (MBU), time and cost to train.

MFU (Chowdhery et al. 2022, PaLM, Sec. 4.1 and App. B) is the observed throughput in
tokens/s divided by the throughput the chips would reach at peak FLOP/s doing only the
model's own FLOPs: 6N per token for the matmuls (2N forward, 4N backward; Kaplan et al.
2020) plus 12 L H Q T for the attention scores and values. Rematerialised FLOPs do not
count (they would give the hardware FLOPs utilisation, HFU). MBU is the analogue for
memory-bound decoding: bytes that must be read per second over peak bandwidth.
"""

from __future__ import annotations

from typing import Any

from course_lib.hardware.memory import weight_bytes
from course_lib.hardware.roofline import model_shape
from course_lib.hardware.specs import BYTES_PER_ELEMENT

SECONDS_PER_DAY = 86400.0


def palm_flops_per_token(
    n_params: float, n_layers: int = 0, n_heads: int = 0, head_dim: int = 0, seq_len: int = 0
) -> float:
    """Training FLOPs per token, 6N + 12 L H Q T (PaLM, App. B); 6N alone if seq_len is 0.

    N parameters, L layers, H heads of size Q, sequence length T. For a course_lib
    ModelConfig, `course_lib.models.flops_per_token` counts N from the architecture.
    """
    return 6.0 * n_params + 12.0 * n_layers * n_heads * head_dim * seq_len


def mfu(
    tokens_per_second: float, flops_per_token: float, n_chips: int, peak_flops_per_chip: float
) -> float:
    """Model FLOPs utilisation: tokens/s * model FLOPs per token / (chips * peak FLOP/s)."""
    return tokens_per_second * flops_per_token / (n_chips * peak_flops_per_chip)


def decode_bytes_per_step(
    cfg: Any, batch: int, context_len: int, weight_dtype: str = "bf16", kv_dtype: str = "bf16"
) -> float:
    """Bytes one decoding step must read: all weights once, plus each sequence's KV cache."""
    s = model_shape(cfg)
    kv = batch * context_len * s.kv_elements_per_token * BYTES_PER_ELEMENT[kv_dtype]
    return weight_bytes(s.n_params, weight_dtype) + kv


def expected_experts_touched(batch: Any, n_experts: int, k: int) -> Any:
    """Expected distinct experts that `batch` tokens reach in one MoE layer, E (1 - (1 - k/E)^B).

    Assumes each token picks k of E experts uniformly and independently (the balanced load
    that Switch's auxiliary loss aims at, Fedus et al. 2021): an expert is missed by one
    token with probability 1 - k/E. One token reads its k experts; a decode batch reads every
    expert any of its tokens picked. `batch` may be a number or a NumPy array.
    """
    if not 0 < k <= n_experts:
        raise ValueError(f"need 0 < k <= n_experts, got k={k}, n_experts={n_experts}")
    return n_experts * (1 - (1 - k / n_experts) ** batch)


def mbu(
    bytes_per_step: float, steps_per_second: float, n_chips: int, bandwidth_per_chip: float
) -> float:
    """Memory-bandwidth utilisation: bytes that must move per second over peak bandwidth.

    For decoding at batch B, steps_per_second = (tokens/s) / B.
    """
    return bytes_per_step * steps_per_second / (n_chips * bandwidth_per_chip)


def training_seconds(
    n_tokens: float,
    flops_per_token: float,
    n_chips: int,
    peak_flops_per_chip: float,
    mfu: float,
) -> float:
    """Wall-clock seconds to train on `n_tokens` tokens at a given MFU.

    time = D * FLOPs/token / (K * peak * MFU); with FLOPs/token = 6N this is the C = 6ND
    rule divided by the FLOP/s actually delivered.
    """
    return n_tokens * flops_per_token / (n_chips * peak_flops_per_chip * mfu)


def training_cost(seconds: float, n_chips: int, price_per_chip_hour: float) -> float:
    """Cost of holding `n_chips` accelerators for `seconds` at a price per chip-hour."""
    return seconds / 3600.0 * n_chips * price_per_chip_hour
