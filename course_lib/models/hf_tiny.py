"""Tiny random Hugging Face models of every family `from_hf` supports, built locally.

Shared by the model tests and the book (`from course_lib.models.hf_tiny import
tiny_hf_model`): no download, a few thousand parameters each, and
every architectural switch turned on where the family has it: GQA/MQA with several query
heads per key/value head, sliding windows shorter than `SEQ_LEN`, Gemma 2's soft-caps low
enough to bend the scores, MoE with several experts per token, Llama 3 RoPE scaling.
`randomize_` replaces HF's small initialisation (std 0.02, norms at 1) by weights of unit
scale, so that a wrong norm, bias or scale changes the logits well beyond the tolerance.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the Hub from here

import torch  # noqa: E402
import transformers  # noqa: E402

from course_lib.models.hf import FAMILIES, first_divergent_layer  # noqa: E402
from course_lib.models.transformer import Transformer  # noqa: E402

__all__ = [
    "FAMILIES",
    "SEQ_LEN",
    "VOCAB",
    "assert_logits_match",
    "randomize_",
    "tiny_hf_config",
    "tiny_hf_model",
    "tiny_input_ids",
    "variant_logits",
]

SEQ_LEN = 12  # longer than every sliding window below
VOCAB = 97

_COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=64,
    attn_implementation="eager",
    bos_token_id=None,
    eos_token_id=None,
    pad_token_id=None,
)


def tiny_hf_config(family: str, **overrides):
    """A transformers config of `family` with tiny sizes and its distinctive features active."""
    c = dict(_COMMON)
    if family == "gpt2":
        return transformers.GPT2Config(
            vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, n_positions=64,
            attn_implementation="eager", bos_token_id=None, eos_token_id=None, **overrides,
        )  # fmt: skip
    if family == "llama":
        c.update(
            num_key_value_heads=2,
            rope_parameters={
                "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8,
            },
        )  # fmt: skip
        return transformers.LlamaConfig(**{**c, **overrides})
    if family == "mistral":
        c.update(num_key_value_heads=1, sliding_window=4, head_dim=16)
        return transformers.MistralConfig(**{**c, **overrides})
    if family == "mixtral":
        c.update(
            num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, sliding_window=5
        )
        return transformers.MixtralConfig(**{**c, **overrides})
    if family == "qwen2":
        c.update(
            num_key_value_heads=2, use_sliding_window=True, sliding_window=4, max_window_layers=1
        )
        return transformers.Qwen2Config(**{**c, **overrides})
    if family == "gemma2":
        c.update(
            num_key_value_heads=2, head_dim=32, query_pre_attn_scalar=24, sliding_window=4,
            attn_logit_softcapping=2.0, final_logit_softcapping=3.0,
            hidden_activation="gelu_pytorch_tanh",
        )  # fmt: skip
        return transformers.Gemma2Config(**{**c, **overrides})
    if family == "olmo2":
        c.update(num_key_value_heads=2)
        return transformers.Olmo2Config(**{**c, **overrides})
    if family == "deepseek_v3":
        c.update(
            num_key_value_heads=4, q_lora_rank=32, kv_lora_rank=24, qk_nope_head_dim=16,
            qk_rope_head_dim=8, v_head_dim=12, n_routed_experts=8, num_experts_per_tok=3,
            n_shared_experts=1, moe_intermediate_size=32, first_k_dense_replace=1, n_group=4,
            topk_group=2, routed_scaling_factor=2.5, norm_topk_prob=True, rope_interleave=True,
        )  # fmt: skip
        return transformers.DeepseekV3Config(**{**c, **overrides})
    if family == "qwen3":  # per-head QK-norm, biases, head_dim != d/H, sliding layers, YaRN
        c.update(
            num_key_value_heads=2, head_dim=24, attention_bias=True, use_sliding_window=True,
            sliding_window=4, max_window_layers=1,
            rope_parameters={
                "rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
                "original_max_position_embeddings": 16,
            },
        )  # fmt: skip
        return transformers.Qwen3Config(**{**c, **overrides})
    if family == "qwen3_moe":  # Qwen 3 attention; top-3 of 8 experts; layer 2 dense (mlp_only)
        c.update(
            num_hidden_layers=4, num_key_value_heads=2, head_dim=24, attention_bias=True,
            use_sliding_window=True, sliding_window=5, num_experts=8, num_experts_per_tok=3,
            moe_intermediate_size=32, norm_topk_prob=True, decoder_sparse_step=1,
            mlp_only_layers=[2],
        )  # fmt: skip
        return transformers.Qwen3MoeConfig(**{**c, **overrides})
    if family == "smollm3":  # NoPE every 2nd layer, those sliding; biases; tied embeddings
        c.update(
            num_hidden_layers=4, num_key_value_heads=2, head_dim=24, attention_bias=True,
            mlp_bias=True, no_rope_layer_interval=2, use_sliding_window=True, sliding_window=4,
            rope_parameters={"rope_type": "default", "rope_theta": 5000000.0},
        )  # fmt: skip
        return transformers.SmolLM3Config(**{**c, **overrides})
    if family == "olmo3":  # OLMo 2 + sliding layers (3 of 4) with their own RoPE base; YaRN
        c.update(
            num_hidden_layers=4, num_key_value_heads=2, sliding_window=4, attention_bias=True,
            rope_parameters={
                "full_attention": {
                    "rope_type": "yarn", "rope_theta": 500000.0, "factor": 4.0,
                    "original_max_position_embeddings": 16,
                },
                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            },
        )  # fmt: skip
        return transformers.Olmo3Config(**{**c, **overrides})
    if family == "gemma3_text":  # Gemma 2's norms and scalings + per-head (1 + w) QK-norm,
        # sliding layers (2 of 3) with their own RoPE base, linear RoPE scaling on the global ones
        c.update(
            num_hidden_layers=3, num_key_value_heads=2, head_dim=32, query_pre_attn_scalar=24,
            attention_bias=True,
            sliding_window=4, final_logit_softcapping=3.0, hidden_activation="gelu_pytorch_tanh",
            layer_types=["sliding_attention", "sliding_attention", "full_attention"],
            rope_parameters={
                "full_attention": {"rope_type": "linear", "rope_theta": 1000000.0, "factor": 8.0},
                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            },
        )  # fmt: skip
        return transformers.Gemma3TextConfig(**{**c, **overrides})
    if family == "gpt_oss":  # sinks, alternating sliding/full layers, top-3 of 8 biased
        # experts with a clamped SwiGLU whose limit (1.5) the unit-scale activations reach; YaRN
        c.update(
            num_key_value_heads=2, head_dim=24, sliding_window=4, num_local_experts=8,
            num_experts_per_tok=3, intermediate_size=32, swiglu_limit=1.5, swiglu_alpha=1.702,
            num_hidden_layers=3,
            rope_parameters={
                "rope_type": "yarn", "rope_theta": 150000.0, "factor": 4.0, "beta_fast": 32.0,
                "beta_slow": 1.0, "truncate": False, "original_max_position_embeddings": 16,
            },
        )  # fmt: skip
        return transformers.GptOssConfig(**{**c, **overrides})
    if family == "llama4_text":  # dense and MoE layers interleaved (step 2: layers 1, 3 MoE,
        # top-2 of 4 sigmoid-gated experts + a shared one); chunks of 4 positions < SEQ_LEN in
        # the RoPE layers; layer 2 NoPE (full attention) with temperature tuning from position
        # 2 on (floor_scale 3); L2 QK-norm; interleaved RoPE with Llama 3 scaling; biases, GQA
        c.update(
            num_hidden_layers=4, num_key_value_heads=2, head_dim=24, attention_bias=True,
            intermediate_size=32, intermediate_size_mlp=96, num_local_experts=4,
            num_experts_per_tok=2, interleave_moe_layer_step=2, no_rope_layers=[1, 1, 0, 1],
            attention_chunk_size=4, use_qk_norm=True, attn_temperature_tuning=True,
            floor_scale=3, attn_scale=0.3,
            rope_parameters={
                "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8,
            },
        )  # fmt: skip
        return transformers.Llama4TextConfig(**{**c, **overrides})
    raise ValueError(f"unknown family {family!r}")


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Unit-scale random weights: matrices ~ N(0, 1/fan_in), embeddings ~ N(0, 1), gains
    1 + N(0, 0.1²) (N(0, 0.1²) for Gemma's zero-centred ones), biases and DeepSeek's routing
    bias ~ N(0, 0.1²)."""
    g = torch.Generator().manual_seed(seed)

    def normal(shape: torch.Size, std: float) -> torch.Tensor:
        return torch.randn(shape, generator=g) * std

    for name, p in model.named_parameters():
        if p.dim() >= 2:
            std = 1.0 if "embed" in name or "wte" in name or "wpe" in name else p.shape[-1] ** -0.5
            p.copy_(normal(p.shape, std))
        elif name.endswith("bias"):
            p.copy_(normal(p.shape, 0.1))
        else:  # a norm gain
            centred = float(p.mean()) == 0.0  # Gemma stores w for a gain of (1 + w)
            p.copy_(normal(p.shape, 0.1) + (0.0 if centred else 1.0))
    for name, b in model.named_buffers():
        if name.endswith("e_score_correction_bias"):
            b.copy_(normal(b.shape, 0.1))
    return model


def tiny_hf_model(
    family: str, seed: int = 0, dtype: torch.dtype = torch.float32, **overrides
) -> torch.nn.Module:
    """A randomised causal LM of `family` with weights in `dtype`, in eval mode, on the CPU.

    Built in `dtype` as `from_pretrained(..., dtype=...)` does, which keeps the RoPE
    frequencies in float32 (`model.to(torch.bfloat16)` would round them to bfloat16).
    """
    torch.manual_seed(seed)
    config = tiny_hf_config(family, **overrides)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    return randomize_(model.eval(), seed)


def tiny_input_ids(batch: int = 2, seq_len: int = SEQ_LEN, seed: int = 0) -> torch.Tensor:
    """Random token ids (batch, seq_len) in the tiny vocabulary."""
    return torch.randint(0, VOCAB, (batch, seq_len), generator=torch.Generator().manual_seed(seed))


def assert_logits_match(
    ours: Transformer, hf_model: torch.nn.Module, input_ids: torch.Tensor, atol: float = 1e-4
) -> None:
    """Our logits equal the HF model's; on failure, report the first layer that diverges."""
    with torch.no_grad():
        expected = hf_model(input_ids).logits
        actual = ours(input_ids)
    assert actual.shape == expected.shape, f"logits shape {actual.shape}, expected {expected.shape}"
    if not torch.allclose(actual, expected, atol=atol, rtol=0):
        _, report = first_divergent_layer(ours, hf_model, input_ids, atol)
        raise AssertionError(report)


def variant_logits(
    ours: Transformer, input_ids: torch.Tensor, strict: bool = True, **changes
) -> torch.Tensor:
    """Logits of a model with our weights but some config fields changed (a feature removed).

    strict=False when the change removes weights (e.g. qk_norm=False drops q_norm, k_norm).
    """
    dtype = next(ours.parameters()).dtype
    model = Transformer(ours.cfg.replace(**changes), device=ours.device, dtype=dtype)
    model.load_state_dict(ours.state_dict(), strict=strict)
    with torch.no_grad():
        return model(input_ids)
