"""Import Hugging Face `transformers` models: config and weights, plus a per-layer diff.

`from_hf(hf_model)` reads `hf_model.config` into a `ModelConfig` (`config_from_hf`), builds
a `Transformer` on the same device and dtype and copies the weights, renaming them
(`hf_state_dict_to_ours`). Families: gpt2, llama, mistral, mixtral, qwen2, gemma2, olmo2,
deepseek_v3, qwen3, qwen3_moe, smollm3,
olmo3, gemma3_text, gpt_oss, llama4_text (transformers 5.x layouts: MoE experts as fused 3-D
`gate_up_proj`). Nothing is
downloaded: pass a model you built or loaded yourself. `first_divergent_layer` finds where
two models stop agreeing, for readable test failures.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from course_lib.models.config import ModelConfig, RopeScaling
from course_lib.models.transformer import Transformer

FAMILIES = (
    "gpt2", "llama", "mistral", "mixtral", "qwen2", "gemma2", "olmo2", "deepseek_v3", "qwen3",
    "qwen3_moe", "smollm3", "olmo3", "gemma3_text", "gpt_oss", "llama4_text",
)  # fmt: skip

_ACTIVATIONS = {
    "silu": "silu",
    "swish": "silu",
    "gelu_new": "gelu_new",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu": "gelu",
    "relu": "relu",
}

# Hugging Face name (regex) -> ours, for the Llama-style families; layer norms by family below.
_RENAMES = [
    (r"^model\.embed_tokens\.", "embed."),
    (r"^model\.norm\.", "norm."),
    (r"^model\.layers\.(\d+)\.self_attn\.q_a_proj\.", r"layers.\1.attn.mla.wq_a."),
    (r"^model\.layers\.(\d+)\.self_attn\.q_a_layernorm\.", r"layers.\1.attn.mla.q_norm."),
    (r"^model\.layers\.(\d+)\.self_attn\.q_b_proj\.", r"layers.\1.attn.mla.wq_b."),
    (r"^model\.layers\.(\d+)\.self_attn\.kv_a_proj_with_mqa\.", r"layers.\1.attn.mla.wkv_a."),
    (r"^model\.layers\.(\d+)\.self_attn\.kv_a_layernorm\.", r"layers.\1.attn.mla.kv_norm."),
    (r"^model\.layers\.(\d+)\.self_attn\.kv_b_proj\.", r"layers.\1.attn.mla.wkv_b."),
    (r"^model\.layers\.(\d+)\.self_attn\.", r"layers.\1.attn."),
    (r"^model\.layers\.(\d+)\.mlp\.", r"layers.\1.mlp."),
    (r"^model\.layers\.(\d+)\.feed_forward\.", r"layers.\1.mlp."),  # Llama 4
]
_NORMS = {  # HF layer-norm name -> our Block attribute, per norm placement
    "pre": {"input_layernorm": "attn_norm", "post_attention_layernorm": "mlp_norm"},
    "sandwich": {
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "attn_out_norm",
        "pre_feedforward_layernorm": "mlp_norm",
        "post_feedforward_layernorm": "mlp_out_norm",
    },
    "post": {
        "post_attention_layernorm": "attn_out_norm",
        "post_feedforward_layernorm": "mlp_out_norm",
    },
}


def _cycle(full: tuple[Any, ...]) -> tuple[Any, ...]:
    """The shortest prefix of a per-layer list that repeats into all of it."""
    for period in range(1, len(full) + 1):
        if all(full[i] == full[i % period] for i in range(len(full))):
            return full[:period]
    return full


def _layer_pattern(c: Any) -> tuple[str, ...]:
    """HF layer_types ("sliding_attention"/"chunked_attention"/"full_attention") as our
    shortest repeating cycle."""
    types = getattr(c, "layer_types", None)
    if types is None:  # Mistral/Mixtral: the window, if any, applies to every layer
        return ("local",) if getattr(c, "sliding_window", None) else ("global",)
    if getattr(c, "use_sliding_window", True) is False:  # SmolLM3 ignores its layer_types then
        return ("global",)
    kinds = {"sliding_attention": "local", "chunked_attention": "chunked"}
    return _cycle(tuple(kinds.get(t, "global") for t in types[: c.num_hidden_layers]))


def _rope(c: Any) -> dict[str, Any]:
    """rope_theta and RopeScaling from HF's `rope_parameters` (OLMo 3, Gemma 3: one dict per
    layer type, the global layers' read here, the local layers' base as local_rope_theta)."""
    params = dict(getattr(c, "rope_parameters", None) or {})
    if "full_attention" in params:
        local = params["sliding_attention"] or {}
        if local.get("rope_type", "default") != "default":
            raise NotImplementedError("RoPE scaling in the sliding-window layers")
        out = _rope(type("C", (), {"rope_parameters": params["full_attention"]}))
        return {**out, "local_rope_theta": float(local.get("rope_theta", out["rope_theta"]))}
    kind = params.get("rope_type", "default")
    out: dict[str, Any] = {"rope_theta": float(params.get("rope_theta", 10000.0))}
    if kind == "default":
        return out
    if kind not in ("llama3", "yarn", "linear"):
        raise NotImplementedError(f"rope_type {kind!r} is not supported by from_hf")
    fields = {
        "factor": params.get("factor"),
        "original_max_seq_len": params.get("original_max_position_embeddings"),
        "low_freq_factor": params.get("low_freq_factor"),
        "high_freq_factor": params.get("high_freq_factor"),
        "beta_fast": params.get("beta_fast"),
        "beta_slow": params.get("beta_slow"),
        "mscale": params.get("mscale"),
        "mscale_all_dim": params.get("mscale_all_dim"),
        "truncate": params.get("truncate"),
    }
    out["rope_scaling"] = RopeScaling(
        kind=kind, **{k: v for k, v in fields.items() if v is not None}
    )
    return out


def config_from_hf(c: Any) -> ModelConfig:
    """A ModelConfig equivalent to a transformers config of one of `FAMILIES`."""
    family = c.model_type
    if family not in FAMILIES:
        raise NotImplementedError(f"model_type {family!r}: from_hf supports {FAMILIES}")
    if family == "gpt2":
        if (
            c.scale_attn_by_inverse_layer_idx
            or c.reorder_and_upcast_attn
            or not c.scale_attn_weights
        ):
            raise NotImplementedError("GPT-2 attention variants other than the default")
        return ModelConfig(
            name=f"hf-{family}", family=family, vocab_size=c.vocab_size, d_model=c.n_embd,
            n_layers=c.n_layer, n_heads=c.n_head, d_ff=c.n_inner or 4 * c.n_embd,
            max_seq_len=c.n_positions, position="learned", norm="layer",
            norm_eps=c.layer_norm_epsilon, activation=_ACTIVATIONS[c.activation_function],
            gated_mlp=False, qkv_bias=True, out_bias=True, mlp_bias=True, tie_embeddings=True,
        )  # fmt: skip
    kw: dict[str, Any] = dict(
        name=f"hf-{family}",
        family=family,
        vocab_size=c.vocab_size,
        d_model=c.hidden_size,
        n_layers=c.num_hidden_layers,
        n_heads=c.num_attention_heads,
        n_kv_heads=c.num_key_value_heads or c.num_attention_heads,
        d_ff=c.intermediate_size,
        max_seq_len=c.max_position_embeddings,
        norm_eps=c.rms_norm_eps,
        tie_embeddings=bool(c.tie_word_embeddings),
        activation=_ACTIVATIONS[getattr(c, "hidden_act", None) or c.hidden_activation],
        **_rope(c),
    )
    if family != "deepseek_v3":
        kw["head_dim"] = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        kw["layer_pattern"] = _layer_pattern(c)
        kw["sliding_window"] = getattr(c, "sliding_window", None)
        bias = bool(getattr(c, "attention_bias", False))
        kw["qkv_bias"], kw["out_bias"] = bias, bias
        kw["mlp_bias"] = bool(getattr(c, "mlp_bias", False))
    if family == "qwen2":
        kw["qkv_bias"], kw["out_bias"] = True, False
    if family in ("smollm3", "llama4_text"):  # no_rope_layers[i] = 1: layer i *uses* RoPE
        kw["rope_layers"] = _cycle(tuple(bool(r) for r in c.no_rope_layers[: c.num_hidden_layers]))
    if family == "llama4_text":
        kw.update(_llama4(c))
    if family in ("gemma2", "gemma3_text"):
        if getattr(c, "use_bidirectional_attention", False):
            raise NotImplementedError("Gemma with bidirectional attention is not a decoder")
        kw.update(
            norm_unit_offset=True, norm_placement="sandwich", embed_scale=True,
            query_pre_attn_scalar=float(c.query_pre_attn_scalar),
            attn_softcap=c.attn_logit_softcapping, final_softcap=c.final_logit_softcapping,
        )  # fmt: skip
    if family == "gemma3_text":  # per-head QK-norm; its config's attn_logit_softcapping is unused
        kw.update(qk_norm=True, qk_norm_per_head=True, attn_softcap=None)
    if family in ("olmo2", "olmo3"):
        kw.update(norm_placement="post", qk_norm=True, norm_scale_in_fp32=True, rope_in_fp32=True)
    if family in ("qwen3", "qwen3_moe"):
        kw.update(qk_norm=True, qk_norm_per_head=True)
    if family == "qwen3_moe":
        kw.update(
            n_experts=c.num_experts, n_experts_per_tok=c.num_experts_per_tok,
            moe_d_ff=c.moe_intermediate_size, norm_topk_prob=bool(c.norm_topk_prob),
            moe_layer_step=c.decoder_sparse_step, dense_layers=tuple(c.mlp_only_layers),
            moe_gate_in_fp32=False,
        )  # fmt: skip
    if family == "mixtral":
        kw.update(n_experts=c.num_local_experts, n_experts_per_tok=c.num_experts_per_tok)
    if family == "gpt_oss":  # every layer MoE of intermediate_size-wide experts
        kw.update(
            attn_sinks=True, norm_scale_in_fp32=True, n_experts=c.num_local_experts,
            n_experts_per_tok=c.num_experts_per_tok, moe_d_ff=c.intermediate_size,
            router="topk_softmax", moe_bias=True, moe_gate_in_fp32=False,
            swiglu_limit=float(c.swiglu_limit), swiglu_alpha=float(c.swiglu_alpha),
        )  # fmt: skip
    if family == "deepseek_v3":
        if c.attention_bias:
            raise NotImplementedError("DeepSeek-V3 with attention_bias=True")
        kw.update(
            q_lora_rank=c.q_lora_rank or 0, kv_lora_rank=c.kv_lora_rank,
            qk_nope_head_dim=c.qk_nope_head_dim, qk_rope_head_dim=c.qk_rope_head_dim,
            v_head_dim=c.v_head_dim, rope_interleave=bool(c.rope_interleave),
            n_experts=c.n_routed_experts, n_experts_per_tok=c.num_experts_per_tok,
            n_shared_experts=c.n_shared_experts, moe_d_ff=c.moe_intermediate_size,
            first_dense_layers=c.first_k_dense_replace, router="sigmoid",
            n_expert_groups=c.n_group or 1, topk_groups=c.topk_group or 1,
            routed_scaling=c.routed_scaling_factor, norm_topk_prob=bool(c.norm_topk_prob),
            n_mtp_modules=getattr(c, "num_mtp_layers", 0) or 0,
        )  # fmt: skip
    return ModelConfig(**kw)


def _llama4(c: Any) -> dict[str, Any]:
    """Llama 4's fields (transformers' Llama4TextConfig): dense layers of intermediate_size_mlp,
    MoE layers (moe_layers) of intermediate_size-wide experts plus one shared expert."""
    L, step = c.num_hidden_layers, max(1, c.interleave_moe_layer_step)
    moe, by_step = set(c.moe_layers), set(range(step - 1, L, step))
    if not moe <= by_step:  # not a subset of the step's layers: list the dense ones
        step, by_step = 1, set(range(L))
    return dict(
        d_ff=c.intermediate_size_mlp, n_experts=c.num_local_experts,
        n_experts_per_tok=c.num_experts_per_tok, moe_d_ff=c.intermediate_size,
        n_shared_experts=1, router="topk_sigmoid", norm_topk_prob=False,
        moe_gate_on_input=True, moe_gate_in_fp32=False, moe_layer_step=step,
        dense_layers=tuple(sorted(by_step - moe)), attention_chunk=c.attention_chunk_size,
        qk_l2_norm=bool(c.use_qk_norm), attn_temperature_tuning=bool(c.attn_temperature_tuning),
        floor_scale=int(c.floor_scale), attn_temperature_scale=float(c.attn_scale),
        rope_interleave=True, rope_in_fp32=True,
    )  # fmt: skip


def _rope_parameters(cfg: ModelConfig) -> dict[str, Any]:
    """HF's `rope_parameters` for cfg (rope_theta and, if any, the scaling)."""
    params: dict[str, Any] = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    rs = cfg.rope_scaling
    if rs is not None:
        params.update(rope_type=rs.kind, factor=rs.factor)
        if rs.kind == "linear":
            return params
        params["original_max_position_embeddings"] = rs.original_max_seq_len
        if rs.kind == "llama3":
            params.update(low_freq_factor=rs.low_freq_factor, high_freq_factor=rs.high_freq_factor)
        else:
            params.update(beta_fast=rs.beta_fast, beta_slow=rs.beta_slow, mscale=rs.mscale)
            params["mscale_all_dim"] = rs.mscale_all_dim
            if not rs.truncate:
                params["truncate"] = False
    return params


def to_hf_config(cfg: ModelConfig, **extra: Any) -> Any:
    """The transformers config of cfg's family (the inverse of `config_from_hf`).

    Build the model on the meta device to count its parameters at no memory cost:
    `with torch.device("meta"): AutoModelForCausalLM.from_config(to_hf_config(cfg))`.
    """
    import transformers

    if cfg.family not in FAMILIES:
        raise NotImplementedError(f"family {cfg.family!r}: to_hf_config supports {FAMILIES}")
    if cfg.family == "gpt2":
        act = {v: k for k, v in _ACTIVATIONS.items() if k != "swish"}[cfg.activation]
        return transformers.GPT2Config(
            vocab_size=cfg.vocab_size, n_embd=cfg.d_model, n_layer=cfg.n_layers,
            n_head=cfg.n_heads, n_inner=cfg.d_ff, n_positions=cfg.max_seq_len,
            layer_norm_epsilon=cfg.norm_eps, activation_function=act, **extra,
        )  # fmt: skip
    kw: dict[str, Any] = dict(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.d_ff,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_kv_heads,
        max_position_embeddings=cfg.max_seq_len,
        rms_norm_eps=cfg.norm_eps,
        tie_word_embeddings=cfg.tie_embeddings,
        rope_parameters=_rope_parameters(cfg),
    )
    act = {"gelu_tanh": "gelu_pytorch_tanh"}.get(cfg.activation, cfg.activation)
    gemma = cfg.family in ("gemma2", "gemma3_text")
    kw["hidden_activation" if gemma else "hidden_act"] = act
    layer_types = [
        "sliding_attention" if cfg.layer_type(i) == "local" else "full_attention"
        for i in range(cfg.n_layers)
    ]
    if cfg.family not in ("deepseek_v3",):
        kw["head_dim"] = cfg.head_dim
    if cfg.family in (
        "llama", "olmo2", "gemma2", "qwen3", "qwen3_moe", "smollm3", "olmo3", "gemma3_text",
        "gpt_oss", "llama4_text",
    ):  # fmt: skip
        kw["attention_bias"] = cfg.qkv_bias
    if cfg.family in ("llama", "smollm3"):
        kw["mlp_bias"] = cfg.mlp_bias
    if cfg.family in ("mistral", "mixtral"):
        kw["sliding_window"] = cfg.sliding_window if "local" in cfg.layer_pattern else None
    if cfg.family == "qwen3_moe":
        kw.update(
            use_sliding_window="local" in cfg.layer_pattern, sliding_window=cfg.sliding_window,
            num_experts=cfg.n_experts, num_experts_per_tok=cfg.n_experts_per_tok,
            moe_intermediate_size=cfg.moe_d_ff, norm_topk_prob=cfg.norm_topk_prob,
            decoder_sparse_step=cfg.moe_layer_step, mlp_only_layers=list(cfg.dense_layers),
        )  # fmt: skip
    if cfg.family == "mixtral":
        kw.update(num_local_experts=cfg.n_experts, num_experts_per_tok=cfg.n_experts_per_tok)
    if cfg.family == "gpt_oss":
        kw.update(
            intermediate_size=cfg.moe_d_ff, num_local_experts=cfg.n_experts,
            num_experts_per_tok=cfg.n_experts_per_tok, sliding_window=cfg.sliding_window,
            layer_types=layer_types, swiglu_limit=cfg.swiglu_limit, swiglu_alpha=cfg.swiglu_alpha,
        )  # fmt: skip
    if cfg.family in ("olmo3", "gemma3_text"):
        local = {"rope_type": "default", "rope_theta": cfg.local_rope_theta or cfg.rope_theta}
        kw["rope_parameters"] = {
            "full_attention": kw["rope_parameters"],
            "sliding_attention": local,
        }
        kw.update(sliding_window=cfg.sliding_window, layer_types=layer_types)
    if cfg.family in ("smollm3", "llama4_text"):
        kw["no_rope_layers"] = [int(cfg.uses_rope(i)) for i in range(cfg.n_layers)]
    if cfg.family == "llama4_text":
        kw.update(
            intermediate_size=cfg.moe_d_ff, intermediate_size_mlp=cfg.d_ff,
            num_local_experts=cfg.n_experts, num_experts_per_tok=cfg.n_experts_per_tok,
            interleave_moe_layer_step=cfg.moe_layer_step,
            moe_layers=[i for i in range(cfg.n_layers) if cfg.is_moe_layer(i)],
            attention_chunk_size=cfg.attention_chunk, use_qk_norm=cfg.qk_l2_norm,
            attn_temperature_tuning=cfg.attn_temperature_tuning, floor_scale=cfg.floor_scale,
            attn_scale=cfg.attn_temperature_scale,
            layer_types=[
                "chunked_attention" if cfg.layer_type(i) == "chunked" else "full_attention"
                for i in range(cfg.n_layers)
            ],
        )  # fmt: skip
    if cfg.family in ("qwen2", "qwen3", "smollm3"):
        sliding = "local" in cfg.layer_pattern
        kw.update(use_sliding_window=sliding, sliding_window=cfg.sliding_window)
        kw["layer_types"] = layer_types
    if gemma:
        kw.update(
            query_pre_attn_scalar=int(cfg.query_pre_attn_scalar or cfg.head_dim),
            sliding_window=cfg.sliding_window, layer_types=layer_types,
            attn_logit_softcapping=cfg.attn_softcap, final_logit_softcapping=cfg.final_softcap,
        )  # fmt: skip
    if cfg.family == "deepseek_v3":
        del kw["num_key_value_heads"]
        kw.update(
            q_lora_rank=cfg.q_lora_rank or None, kv_lora_rank=cfg.kv_lora_rank,
            qk_nope_head_dim=cfg.qk_nope_head_dim, qk_rope_head_dim=cfg.qk_rope_head_dim,
            v_head_dim=cfg.v_head_dim, rope_interleave=cfg.rope_interleave,
            n_routed_experts=cfg.n_experts, num_experts_per_tok=cfg.n_experts_per_tok,
            n_shared_experts=cfg.n_shared_experts, moe_intermediate_size=cfg.moe_d_ff,
            first_k_dense_replace=cfg.first_dense_layers, n_group=cfg.n_expert_groups,
            topk_group=cfg.topk_groups, routed_scaling_factor=cfg.routed_scaling,
            norm_topk_prob=cfg.norm_topk_prob, num_mtp_layers=cfg.n_mtp_modules,
        )  # fmt: skip
    classes = {
        "llama": transformers.LlamaConfig,
        "mistral": transformers.MistralConfig,
        "mixtral": transformers.MixtralConfig,
        "qwen2": transformers.Qwen2Config,
        "gemma2": transformers.Gemma2Config,
        "olmo2": transformers.Olmo2Config,
        "deepseek_v3": transformers.DeepseekV3Config,
        "qwen3": transformers.Qwen3Config,
        "qwen3_moe": transformers.Qwen3MoeConfig,
        "smollm3": transformers.SmolLM3Config,
        "olmo3": transformers.Olmo3Config,
        "gemma3_text": transformers.Gemma3TextConfig,
        "gpt_oss": transformers.GptOssConfig,
        "llama4_text": transformers.Llama4TextConfig,
    }
    return classes[cfg.family](**kw, **extra)


def _gpt2_state_dict(sd: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """GPT-2's Conv1D weights are stored (in, out): transpose; split the fused c_attn into q, k, v."""
    out = {
        "embed.weight": sd["transformer.wte.weight"],
        "pos_embed.weight": sd["transformer.wpe.weight"],
        "norm.weight": sd["transformer.ln_f.weight"],
        "norm.bias": sd["transformer.ln_f.bias"],
        "lm_head.weight": sd["transformer.wte.weight"],
    }
    for i in range(cfg.n_layers):
        h, o = f"transformer.h.{i}.", f"layers.{i}."
        for hf_name, ours in (("ln_1", "attn_norm"), ("ln_2", "mlp_norm")):
            out[f"{o}{ours}.weight"] = sd[f"{h}{hf_name}.weight"]
            out[f"{o}{ours}.bias"] = sd[f"{h}{hf_name}.bias"]
        qkv_w = sd[f"{h}attn.c_attn.weight"].t().chunk(3, dim=0)  # 3 x (D, D), (out, in)
        qkv_b = sd[f"{h}attn.c_attn.bias"].chunk(3, dim=0)
        for name, w, b in zip(("q_proj", "k_proj", "v_proj"), qkv_w, qkv_b, strict=True):
            out[f"{o}attn.{name}.weight"], out[f"{o}attn.{name}.bias"] = w, b
        out[f"{o}attn.o_proj.weight"] = sd[f"{h}attn.c_proj.weight"].t()
        out[f"{o}attn.o_proj.bias"] = sd[f"{h}attn.c_proj.bias"]
        for name in ("c_fc", "c_proj"):
            out[f"{o}mlp.{name}.weight"] = sd[f"{h}mlp.{name}.weight"].t()
            out[f"{o}mlp.{name}.bias"] = sd[f"{h}mlp.{name}.bias"]
    return out


def _gpt_oss_moe(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """gpt-oss stores experts as (E, dim, 2 * hidden) with gate and up interleaved column by
    column and down as (E, hidden, dim): transpose to our (E, out, in), gate rows then up rows;
    its router is our `gate`."""
    new: dict[str, torch.Tensor] = {}
    for name, t in out.items():
        if ".mlp.router." in name:
            name = name.replace(".mlp.router.", ".mlp.gate.")
        elif name.endswith("experts.gate_up_proj"):  # (E, dim, 2H) -> (E, 2H, dim)
            t = t.transpose(1, 2)
            t = torch.cat((t[:, 0::2], t[:, 1::2]), dim=1)
        elif name.endswith("experts.gate_up_proj_bias"):  # (E, 2H)
            t = torch.cat((t[:, 0::2], t[:, 1::2]), dim=1)
        elif name.endswith("experts.down_proj"):  # (E, H, dim) -> (E, dim, H)
            t = t.transpose(1, 2)
        new[name] = t.contiguous()
    return new


def _llama4_moe(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Llama 4 stores experts as (E, dim, 2 * hidden), [gate | up] along the last dim, and
    down as (E, hidden, dim) (x @ W, not a Linear): transpose to our (E, out, in). Its router
    is our `gate`, its `shared_expert` our `shared_experts`."""
    new: dict[str, torch.Tensor] = {}
    for name, t in out.items():
        name = name.replace(".mlp.router.", ".mlp.gate.")
        name = name.replace(".mlp.shared_expert.", ".mlp.shared_experts.")
        if name.endswith(("experts.gate_up_proj", "experts.down_proj")):
            t = t.transpose(1, 2)
        new[name] = t.contiguous()
    return new


def hf_state_dict_to_ours(sd: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Rename (and for GPT-2 reshape) a Hugging Face state dict into `Transformer(cfg)`'s names."""
    if cfg.family == "gpt2":
        return _gpt2_state_dict(sd, cfg)
    norms = _NORMS[cfg.norm_placement]
    mla = {"q_proj": "mla.wq", "o_proj": "mla.wo"} if cfg.is_mla else {}
    out: dict[str, torch.Tensor] = {}
    for name, tensor in sd.items():
        if name == "lm_head.weight":
            out[name] = tensor
            continue
        m = re.match(r"^model\.layers\.(\d+)\.(\w+)\.(weight|bias)$", name)
        if m and m.group(2) in norms:
            out[f"layers.{m.group(1)}.{norms[m.group(2)]}.{m.group(3)}"] = tensor
            continue
        new = name
        for pattern, repl in _RENAMES:
            new, n = re.subn(pattern, repl, new)
            if n:
                break
        for hf_name, ours in mla.items():
            new = new.replace(f".attn.{hf_name}.", f".attn.{ours}.")
        if new == name:
            raise KeyError(f"no mapping for Hugging Face weight {name!r}")
        out[new] = tensor
    if cfg.family == "gpt_oss":
        out = _gpt_oss_moe(out)
    if cfg.family == "llama4_text":
        out = _llama4_moe(out)
    if cfg.tie_embeddings:
        out["lm_head.weight"] = out["embed.weight"]
    return out


@torch.no_grad()
def from_hf(hf_model: nn.Module) -> Transformer:
    """A Transformer with the configuration and weights of a transformers causal LM.

    The model is built on the HF model's device and dtype; its logits equal the original's
    (up to floating-point rounding; compare in float32 with `attn_implementation="eager"`).
    """
    cfg = config_from_hf(hf_model.config)
    weight = next(hf_model.parameters())
    ours = Transformer(cfg, device=weight.device, dtype=weight.dtype)
    state = hf_state_dict_to_ours(dict(hf_model.state_dict()), cfg)
    ours.load_state_dict(state, strict=True)
    return ours.eval()


def _hf_layers(hf_model: nn.Module) -> nn.ModuleList:
    base = hf_model.base_model
    if not hasattr(base, "h") and not hasattr(base, "layers"):  # Llama4ForCausalLM's prefix
        base = hf_model.model  # is "language_model", which it does not have
    return base.h if hasattr(base, "h") else base.layers


@torch.no_grad()
def layer_differences(
    ours: Transformer, hf_model: nn.Module, input_ids: torch.Tensor
) -> list[float]:
    """Max |ours - hf| of each decoder layer's output, then of the logits (n_layers + 1 values)."""
    outputs: dict[str, list[torch.Tensor]] = {"ours": [], "hf": []}

    def recorder(key: str):
        def hook(_module: nn.Module, _args: Any, output: Any) -> None:
            outputs[key].append(output[0] if isinstance(output, tuple) else output)

        return hook

    handles = [m.register_forward_hook(recorder("ours")) for m in ours.layers]
    handles += [m.register_forward_hook(recorder("hf")) for m in _hf_layers(hf_model)]
    try:
        logits_ours = ours(input_ids)
        logits_hf = hf_model(input_ids).logits
    finally:
        for h in handles:
            h.remove()
    pairs = list(zip(outputs["ours"], outputs["hf"], strict=True)) + [(logits_ours, logits_hf)]
    return [(a.float() - b.float()).abs().max().item() for a, b in pairs]


def first_divergent_layer(
    ours: Transformer, hf_model: nn.Module, input_ids: torch.Tensor, atol: float = 1e-4
) -> tuple[int | None, str]:
    """(index of the first layer whose output differs by more than atol, or None; a report).

    Index n_layers means every layer agrees but the logits (final norm, head, soft-cap) do not.
    """
    diffs = layer_differences(ours, hf_model, input_ids)
    lines = [f"layer {i}: max|diff| = {d:.3g}" for i, d in enumerate(diffs[:-1])]
    lines.append(f"logits: max|diff| = {diffs[-1]:.3g}")
    first = next((i for i, d in enumerate(diffs) if not d <= atol), None)
    head = "all layers agree" if first is None else f"first divergence at index {first}"
    return first, f"{head} (atol {atol:g}):\n" + "\n".join(lines)
