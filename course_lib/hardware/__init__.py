"""The hardware model of chapter 10: accelerator specs, roofline, memory, MFU and MBU.

Every peak and bandwidth comes from `course_lib/data/accelerators.json` with its datasheet;
the formulas cite their papers. Model configurations can be course_lib ModelConfigs,
anything with n_layers / n_heads / head_dim / n_kv_heads (+ n_params), or plain numbers.
"""

from course_lib.hardware.memory import (
    GB,
    activation_bytes,
    inference_memory_table,
    kv_cache_bytes,
    lora_parameters,
    training_memory,
    weight_bytes,
)
from course_lib.hardware.mfu import (
    decode_bytes_per_step,
    expected_experts_touched,
    mbu,
    mfu,
    palm_flops_per_token,
    training_cost,
    training_seconds,
)
from course_lib.hardware.roofline import (
    ModelShape,
    RooflinePoint,
    attainable_flops,
    attention_decode_intensity,
    attention_prefill_intensity,
    matmul_intensity,
    model_shape,
    ridge_point,
    roofline,
    step_flops_and_bytes,
    step_roofline,
)
from course_lib.hardware.specs import (
    ACCELERATORS,
    BYTES_PER_ELEMENT,
    Accelerator,
    get_accelerator,
    published,
)

__all__ = [
    "ACCELERATORS",
    "BYTES_PER_ELEMENT",
    "GB",
    "Accelerator",
    "ModelShape",
    "RooflinePoint",
    "activation_bytes",
    "attainable_flops",
    "attention_decode_intensity",
    "attention_prefill_intensity",
    "decode_bytes_per_step",
    "expected_experts_touched",
    "get_accelerator",
    "inference_memory_table",
    "kv_cache_bytes",
    "lora_parameters",
    "matmul_intensity",
    "mbu",
    "mfu",
    "model_shape",
    "palm_flops_per_token",
    "published",
    "ridge_point",
    "roofline",
    "step_flops_and_bytes",
    "step_roofline",
    "training_cost",
    "training_memory",
    "training_seconds",
    "weight_bytes",
]
