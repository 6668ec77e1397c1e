"""How much accelerator memory a model needs: weights, KV cache, and training state.

Sizes are in bytes; `GB` = 1e9 bytes (decimal, as datasheets and model cards use).
"""

from __future__ import annotations

from typing import Any

from course_lib.hardware.roofline import model_shape
from course_lib.hardware.specs import BYTES_PER_ELEMENT

GB = 1e9
# Bytes of training state per trained parameter with Adam in mixed precision (Rajbhandari
# et al. 2020, ZeRO, Sec. 3.1): bf16 weights 2 + bf16 gradients 2 + fp32 master weights 4
# + fp32 Adam first and second moments 4 + 4 = 16.
ADAM_MIXED_PRECISION = {"weights": 2, "gradients": 2, "master_weights": 4, "adam_moments": 8}
# QLoRA (Dettmers et al. 2023, arXiv:2305.14314, Sec. 3): 4-bit NormalFloat base weights
# with double quantization cost 4 + 0.127 bits per parameter.
QLORA_BITS_PER_PARAM = 4.127


def weight_bytes(n_params: float, dtype: str = "bf16") -> float:
    """Bytes of `n_params` weights stored in `dtype` (fp32 4, bf16/fp16 2, fp8/int8 1, int4 0.5)."""
    return n_params * BYTES_PER_ELEMENT[dtype]


def inference_memory_table(
    sizes: dict[str, float], dtypes: tuple[str, ...] = ("fp16", "fp8", "int4")
) -> dict[str, dict[str, float]]:
    """{model: {dtype: GB of weights}} for named parameter counts, e.g. {"8B": 8e9}.

    Weights only, no KV cache or activations: the table model cards print (Llama 3.1:
    8B -> 16/8/4 GB, 70B -> 140/70/35 GB, 405B -> 810/405/203 GB).
    """
    return {name: {d: weight_bytes(n, d) / GB for d in dtypes} for name, n in sizes.items()}


def kv_cache_bytes(cfg: Any, seq_len: int, batch: int = 1, dtype: str = "bf16") -> float:
    """KV-cache bytes after `seq_len` tokens for `batch` sequences, every layer full length.

    2 (K and V) * n_layers * n_kv_heads * head_dim per token (MLA: its latent), times
    seq_len * batch * bytes per element. Sliding-window and chunk caps are ignored here (an
    upper bound); `course_lib.models.kv_cache_bytes` applies them for a ModelConfig.
    """
    return (
        model_shape(cfg, n_params=0).kv_elements_per_token
        * seq_len
        * batch
        * BYTES_PER_ELEMENT[dtype]
    )


def activation_bytes(
    seq_len: int, batch: int, d_model: int, n_layers: int, n_heads: int, flash: bool = True
) -> float:
    """Activations a 16-bit training step stores for the backward pass, no recomputation.

    Korthikanti et al. 2022 (arXiv:2205.05198), Eq. 1: s * b * h * (34 + 5 a s / h) bytes
    per layer for sequence s, batch b, width h, a heads. The 5 a s / h term is the stored
    s x s attention scores, softmax and dropout mask; a FlashAttention kernel recomputes
    them in the backward pass, so flash=True drops it.
    """
    per_token = 34.0 + (0.0 if flash else 5.0 * n_heads * seq_len / d_model)
    return n_layers * seq_len * batch * d_model * per_token


def lora_parameters(shapes: list[tuple[int, int]], rank: int) -> int:
    """Trainable parameters of LoRA adapters (Hu et al. 2021): r (d_in + d_out) per adapted matrix."""
    return sum(rank * (d_in + d_out) for d_in, d_out in shapes)


def training_memory(
    n_params: float,
    method: str = "full",
    trainable_params: float = 0.0,
    activations: float = 0.0,
) -> dict[str, float]:
    """Bytes of training state by component; the "total" key sums them.

    method="full": full fine-tuning (or pre-training) with Adam in mixed precision,
        16 bytes per parameter (`ADAM_MIXED_PRECISION`).
    method="lora": frozen bf16 base (2 bytes/param) plus `trainable_params` adapter
        parameters at the same 16 bytes each.
    method="qlora": frozen 4-bit NF4 base with double quantization (4.127 bits/param)
        plus adapters at 16 bytes each (QLoRA keeps adapters in bf16 and pages the 32-bit
        optimizer state to CPU under pressure; counting it on the GPU is an upper bound).
    `activations` (bytes) is added as given (see `activation_bytes`); framework overhead,
    temporary buffers and fragmentation are not counted.
    """
    per_param = sum(ADAM_MIXED_PRECISION.values())
    if method == "full":
        parts = {name: n_params * b for name, b in ADAM_MIXED_PRECISION.items()}
    elif method in ("lora", "qlora"):
        frozen = 2.0 if method == "lora" else QLORA_BITS_PER_PARAM / 8
        parts = {"frozen_weights": n_params * frozen, "adapters": trainable_params * per_param}
    else:
        raise ValueError(f"method must be 'full', 'lora' or 'qlora', got {method!r}")
    parts["activations"] = activations
    parts["total"] = sum(parts.values())
    return parts
