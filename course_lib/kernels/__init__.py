"""Pure-PyTorch reference kernels: norms, RoPE, activations, attention, MoE, MLA, sampling.

Each module's docstring starts with its API. They run on the device and dtype of their inputs.
"""

# ruff: noqa: F401  (a plain list of re-exports)

from course_lib.kernels.activations import (
    ACTIVATIONS,
    MLP,
    GatedMLP,
    GeGLU,
    SwiGLU,
    gelu,
    gelu_new,
    gelu_tanh,
    get_activation,
    relu,
    silu,
)
from course_lib.kernels.attention import (
    attention,
    attention_probs,
    attention_temperature,
    causal_mask,
    check_attention_inputs,
    final_logit_softcap,
    repeat_kv,
    visible,
)
from course_lib.kernels.decode import decode_attention
from course_lib.kernels.dispatch import attention_backend, which_backend
from course_lib.kernels.flash import flash_attention, flash_attention_torch
from course_lib.kernels.mla import (
    MultiHeadLatentAttention,
    latent_cache_bytes_per_token,
    mla_softmax_scale,
)
from course_lib.kernels.moe import (
    DeepSeekMoE,
    DeepSeekRouter,
    Experts,
    Routing,
    SparseMoE,
    TopKRouter,
    expert_load,
    load_balancing_loss,
    top_k_routing,
)
from course_lib.kernels.norms import LayerNorm, QKNorm, RMSNorm, layer_norm, qk_norm, rms_norm
from course_lib.kernels.quant import QuantizedTensor, QuantLinear, quantize, quantize_model
from course_lib.kernels.rope import (
    RotaryEmbedding,
    apply_rope,
    apply_rope_tables,
    is_dynamic,
    rope_attention_factor,
    rope_cos_sin,
    rope_frequencies,
    rope_rotation,
    yarn_get_mscale,
)
from course_lib.kernels.sampling import sample, sampling_probs, top_k_filter, top_p_filter
