"""ModelConfig: every architecture of the course as one set of hyper-parameters.

One frozen dataclass describes GPT-2/3 (learned positions, LayerNorm, GELU MLP, biases),
Llama 2/3 (RMSNorm, RoPE with optional Llama 3 scaling, SwiGLU, GQA), Mistral (sliding
window), Mixtral (top-2 MoE), Qwen 2 (q/k/v bias), Gemma 2 (sandwich norms, (1+w) RMSNorm,
local/global layers, soft-capping), OLMo 2 (post-sublayer norms, QK-norm) and DeepSeek-V3
(Multi-head Latent Attention, shared + routed experts with sigmoid routing), and of 2025
Qwen 3 (per-head QK-norm; MoE with dense layers by step or list), SmolLM3 (NoPE layers),
OLMo 3 (sliding layers with their own RoPE base), Gemma 3 (Gemma 2 without attention
soft-capping, plus per-head QK-norm with the (1 + w) gain and OLMo 3's per-kind RoPE bases),
gpt-oss (attention sinks, biased router and experts, clamped SwiGLU) and Llama 4 (chunked
attention in the RoPE layers, NoPE layers with attention temperature tuning, a gain-free
QK-norm after RoPE, dense and MoE layers interleaved, a sigmoid top-k router gating the
experts' inputs, and a shared expert). Field names are
the papers' symbols where they have one (d_model, n_heads, d_ff); the Hugging Face name is
given in the comment when it differs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class RopeScaling:
    """RoPE context extension (`course_lib.kernels.rope`): `kind` is "llama3" (Llama 3.1, Meta
    2024), "yarn" (Peng et al. 2023), "linear" (Chen et al. 2023), "ntk" or "dynamic" (NTK-aware).

    `original_max_seq_len` is the pre-training context (dynamic NTK scales beyond it); `low_freq_factor`/`high_freq_factor`
    are Llama 3's wavelength thresholds, `beta_fast`/`beta_slow`/`mscale`/`mscale_all_dim`
    YaRN's ramp and attention temperature.
    """

    kind: str = "llama3"
    factor: float = 8.0
    original_max_seq_len: int = 8192
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    mscale: float = 1.0
    mscale_all_dim: float = 0.0
    truncate: bool = True  # YaRN: round the ramp's ends to whole dims (gpt-oss: False)

    def __post_init__(self) -> None:
        kinds = ("llama3", "yarn", "linear", "ntk", "dynamic")
        if self.kind not in kinds:
            raise ValueError(f"RopeScaling.kind={self.kind!r} is not one of {kinds}")


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of a decoder-only Transformer (Vaswani et al. 2017; Radford et al. 2019).

    Derived defaults: `n_kv_heads` = `n_heads` (multi-head attention), `head_dim` =
    `d_model // n_heads`, `moe_d_ff` = `d_ff`. Layer `i` is a sliding-window ("local") layer
    when `layer_pattern[i % len(layer_pattern)] == "local"`, a chunked one (blocks of
    `attention_chunk` positions, Llama 4) when it is "chunked".
    """

    vocab_size: int
    d_model: int  # hidden_size / n_embd
    n_layers: int  # num_hidden_layers
    n_heads: int  # num_attention_heads
    d_ff: int  # intermediate_size (dense MLP width)
    n_kv_heads: int = 0  # num_key_value_heads; 0 = n_heads (MHA), 1 = MQA, else GQA
    head_dim: int = 0  # 0 = d_model // n_heads
    max_seq_len: int = 2048  # max_position_embeddings / n_positions
    name: str = "custom"
    family: str = "llama"  # the Hugging Face model_type it maps onto, or "gpt3"/"gopher"/"palm"
    source: str = ""  # paper or model card the numbers come from
    # embeddings and output
    position: str = "rope"  # "rope" | "learned" (GPT-2/3) | "relative" (Transformer-XL, Gopher)
    tie_embeddings: bool = False  # tie_word_embeddings
    embed_scale: bool = False  # multiply embeddings by sqrt(d_model) (Gemma)
    final_softcap: float | None = None  # final_logit_softcapping (Gemma 2)
    # normalisation
    norm: str = "rms"  # "rms" (Zhang & Sennrich 2019) | "layer" (Ba et al. 2016)
    norm_eps: float = 1e-5
    norm_bias: bool = True  # LayerNorm's additive bias (PaLM drops it)
    norm_unit_offset: bool = False  # RMSNorm scales by (1 + w) (Gemma)
    # RMSNorm applies its gain in float32 before casting back (OLMo 2; always with the unit offset)
    norm_scale_in_fp32: bool = False
    # "pre" | "post" (OLMo 2: norms on the sublayer outputs) | "sandwich" (Gemma 2: both)
    norm_placement: str = "pre"
    qk_norm: bool = False  # RMSNorm on q and k projections (OLMo 2)
    # QK-norm of each head over head_dim, one (head_dim,) gain shared by the heads (Qwen 3)
    qk_norm_per_head: bool = False
    # use_qk_norm (Llama 4): RMS-normalise each q and k head without a gain, after RoPE, in
    # the RoPE layers only (transformers' Llama4TextL2Norm; eps = norm_eps)
    qk_l2_norm: bool = False
    parallel_block: bool = False  # x + attn(norm(x)) + mlp(norm(x)), one norm (GPT-J; PaLM)
    # attention
    qkv_bias: bool = False  # attention_bias on q/k/v (GPT-2, Qwen 2)
    out_bias: bool = False  # bias on the attention output projection (GPT-2)
    query_pre_attn_scalar: float | None = None  # scores times this**-0.5 (Gemma 2); None: head_dim
    attn_softcap: float | None = None  # attn_logit_softcapping (Gemma 2)
    attn_sinks: bool = False  # one learned sink logit per head in the softmax (gpt-oss)
    sliding_window: int | None = None  # window w: query i sees keys i-w+1 … i
    # repeating cycle of "global" / "local" / "chunked"
    layer_pattern: tuple[str, ...] = ("global",)
    # attention_chunk_size (Llama 4): a "chunked" layer's query at position p sees the keys
    # j <= p with j // attention_chunk == p // attention_chunk
    attention_chunk: int | None = None
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling | None = None
    # RoPE base of the "local" layers, which then rotate without rope_scaling (the scaling and
    # rope_theta are the global layers'): OLMo 3's per-layer-type rope_parameters, Gemma 3's
    # rope_local_base_freq; None = shared
    local_rope_theta: float | None = None
    rope_interleave: bool = False  # rotate pairs (x0, x1), (x2, x3) … (DeepSeek) instead of halves
    rope_in_fp32: bool = False  # rotate q and k in float32, then cast back (OLMo 2)
    # repeating cycle: does layer i rotate q and k? False = a NoPE layer (SmolLM3: every 4th)
    rope_layers: tuple[bool, ...] = (True,)
    # Llama 4's attn_temperature_tuning: NoPE layers scale their queries at position p by
    # 1 + attn_temperature_scale * log(1 + floor((p + 1) / floor_scale))
    attn_temperature_tuning: bool = False
    floor_scale: int = 8192
    attn_temperature_scale: float = 0.1  # attn_scale in transformers' Llama4TextConfig
    # feed-forward
    # "silu" | "gelu_tanh" | "gelu_new" (GPT-2's spelling of gelu_tanh) | "gelu" | "relu"
    activation: str = "silu"
    gated_mlp: bool = True  # GLU variant (Shazeer 2020): act(x W_gate) * (x W_up)
    mlp_bias: bool = False
    # mixture of experts (Shazeer et al. 2017; Jiang et al. 2024; DeepSeek-AI 2024)
    n_experts: int = 0  # routed experts per MoE layer; 0 = dense model
    n_experts_per_tok: int = 0  # top-k
    n_shared_experts: int = 0  # always-on experts (DeepSeekMoE)
    moe_d_ff: int = 0  # width of one expert; 0 = d_ff
    first_dense_layers: int = 0  # first_k_dense_replace: the first k layers keep a dense MLP
    moe_layer_step: int = 1  # decoder_sparse_step (Qwen MoE): layer i is MoE if (i + 1) % step == 0
    dense_layers: tuple[int, ...] = ()  # mlp_only_layers (Qwen MoE): these layers keep a dense MLP
    # "softmax" (Mixtral: softmax, top-k) | "topk_softmax" (gpt-oss: top-k logits, softmax)
    # | "sigmoid" (DeepSeek-V3, bias-corrected top-k) | "topk_sigmoid" (Llama 4: top-k logits,
    # sigmoid of each)
    router: str = "softmax"
    # Llama 4: each routed expert gets its gate value times the token, E(g x), instead of g E(x)
    moe_gate_on_input: bool = False
    moe_bias: bool = False  # biases on the router and every expert projection (gpt-oss)
    # gpt-oss's clamped SwiGLU in the experts (`kernels.activations.clamped_swiglu`); None: act
    swiglu_limit: float | None = None
    swiglu_alpha: float = 1.702
    n_expert_groups: int = 1  # n_group: node-limited routing of DeepSeek-V3
    topk_groups: int = 1  # topk_group
    routed_scaling: float = 1.0  # routed_scaling_factor
    norm_topk_prob: bool = True  # renormalise the top-k gate weights to sum to one
    # mix expert outputs with float32 gate values (Mixtral); False: in the model dtype (Qwen 3 MoE)
    moe_gate_in_fp32: bool = True
    # Multi-head Latent Attention (DeepSeek-V2, 2024); active when kv_lora_rank > 0
    q_lora_rank: int = 0  # 0 = full-rank query projection
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    n_mtp_modules: int = 0  # multi-token prediction modules (DeepSeek-V3), not in the main model

    def __post_init__(self) -> None:
        if self.n_kv_heads == 0:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        if self.head_dim == 0:
            object.__setattr__(self, "head_dim", self.d_model // self.n_heads)
        if self.moe_d_ff == 0:
            object.__setattr__(self, "moe_d_ff", self.d_ff)
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"n_heads={self.n_heads} is not a multiple of n_kv_heads={self.n_kv_heads}"
            )
        if set(self.layer_pattern) - {"global", "local", "chunked"}:
            raise ValueError(
                f"layer_pattern entries must be 'global', 'local' or 'chunked': "
                f"{self.layer_pattern}"
            )
        if "local" in self.layer_pattern and not self.sliding_window:
            raise ValueError("a 'local' layer needs sliding_window")
        if "chunked" in self.layer_pattern and not self.attention_chunk:
            raise ValueError("a 'chunked' layer needs attention_chunk")
        if self.qk_norm_per_head and not self.qk_norm:
            raise ValueError("qk_norm_per_head needs qk_norm")
        if not self.rope_layers or self.moe_layer_step < 1:
            raise ValueError("rope_layers must be non-empty and moe_layer_step >= 1")
        if self.parallel_block and self.norm_placement != "pre":
            raise ValueError("a parallel block has one pre-norm: norm_placement must be 'pre'")
        for name, allowed in (
            ("position", {"rope", "learned", "relative"}),
            ("norm", {"rms", "layer"}),
            ("norm_placement", {"pre", "post", "sandwich"}),
            ("router", {"softmax", "topk_softmax", "sigmoid", "topk_sigmoid"}),
            ("activation", {"silu", "gelu_tanh", "gelu_new", "gelu", "relu"}),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {sorted(allowed)}")

    @property
    def is_mla(self) -> bool:
        """Multi-head Latent Attention (DeepSeek-V2/V3) instead of MHA/GQA."""
        return self.kv_lora_rank > 0

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0

    @property
    def attn_scale(self) -> float:
        """Factor on q·k of MHA/GQA layers: head_dim**-0.5, or Gemma 2's query_pre_attn_scalar**-0.5.

        (MLA's scale, which also depends on the RoPE scaling, is `kernels.mla.mla_softmax_scale`.)
        """
        if self.query_pre_attn_scalar is not None:
            return self.query_pre_attn_scalar**-0.5
        return self.head_dim**-0.5

    def rope_scaling_dict(self) -> dict[str, Any] | None:
        """`rope_scaling` as the mapping `course_lib.kernels.rope` reads, or None."""
        return None if self.rope_scaling is None else asdict(self.rope_scaling)

    @property
    def rope_dim(self) -> int:
        """Number of rotated dimensions per head (MLA rotates only its decoupled qk_rope_head_dim)."""
        return self.qk_rope_head_dim if self.is_mla else self.head_dim

    def layer_type(self, i: int) -> str:
        """'local' (sliding window), 'chunked' or 'global' (full causal) attention for layer i."""
        return self.layer_pattern[i % len(self.layer_pattern)]

    def rope_local(self, i: int) -> bool:
        """Whether layer i rotates with the local layers' own RoPE (`local_rope_theta`)."""
        return self.local_rope_theta is not None and self.layer_type(i) == "local"

    def window(self, i: int) -> int | None:
        """Sliding window of layer i, None for full causal attention."""
        return self.sliding_window if self.layer_type(i) == "local" else None

    def chunk(self, i: int) -> int | None:
        """Attention chunk of layer i (Llama 4's chunked layers), None for no chunking."""
        return self.attention_chunk if self.layer_type(i) == "chunked" else None

    def uses_rope(self, i: int) -> bool:
        """Whether layer i rotates q and k (False: a NoPE layer, Kazemnejad et al. 2023)."""
        return self.position == "rope" and self.rope_layers[i % len(self.rope_layers)]

    def is_moe_layer(self, i: int) -> bool:
        """MoE (not dense MLP) in layer i: DeepSeek's first_k_dense_replace, Qwen's
        decoder_sparse_step and mlp_only_layers."""
        return (
            self.is_moe
            and i >= self.first_dense_layers
            and (i + 1) % self.moe_layer_step == 0
            and i not in self.dense_layers
        )

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (`dataclasses.replace`), re-validated."""
        return replace(self, **changes)

    def scaled(
        self,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        vocab_size: int = 256,
        max_seq_len: int = 128,
        **changes: Any,
    ) -> ModelConfig:
        """A tiny variant of the same architecture, for tests, the book and a laptop CPU.

        Keeps every architectural switch (norms, biases, pattern of local/global layers, MoE
        routing, MLA, soft-caps) and the ratios n_heads/n_kv_heads and d_ff/d_model; shrinks
        widths, depth, vocabulary, window and expert counts. `changes` override anything.
        """
        n_kv = max(1, n_heads * self.n_kv_heads // self.n_heads)
        while n_heads % n_kv:
            n_kv -= 1
        head_dim = d_model // n_heads
        new: dict[str, Any] = {
            "name": f"{self.name}-tiny",
            "d_model": d_model,
            "n_layers": n_layers,
            "n_heads": n_heads,
            "n_kv_heads": n_kv,
            "head_dim": head_dim,
            "vocab_size": vocab_size,
            "max_seq_len": max_seq_len,
            "d_ff": _round8(d_model * self.d_ff / self.d_model),
            "moe_d_ff": _round8(d_model * self.moe_d_ff / self.d_model),
        }
        if self.query_pre_attn_scalar is not None:  # keep its ratio to the head dim (27B: 144/128)
            new["query_pre_attn_scalar"] = head_dim * self.query_pre_attn_scalar / self.head_dim
        if self.sliding_window is not None:
            new["sliding_window"] = max(2, min(self.sliding_window, max_seq_len // 4))
        if self.attention_chunk is not None:
            new["attention_chunk"] = max(2, min(self.attention_chunk, max_seq_len // 4))
        if self.attn_temperature_tuning:  # so that the temperature moves within max_seq_len
            new["floor_scale"] = max(1, min(self.floor_scale, max_seq_len // 8))
        if self.rope_scaling is not None:
            orig = max(4, max_seq_len // 4)
            new["rope_scaling"] = replace(self.rope_scaling, original_max_seq_len=orig)
        if self.is_moe:
            new["n_experts"] = min(self.n_experts, 8)
            new["n_experts_per_tok"] = min(self.n_experts_per_tok, new["n_experts"] // 2 or 1)
            new["first_dense_layers"] = min(self.first_dense_layers, 1)
            groups = min(self.n_expert_groups, 4)
            new["n_expert_groups"] = groups
            new["topk_groups"] = min(self.topk_groups, max(1, groups // 2))
        if self.is_mla:
            new.update(
                q_lora_rank=d_model // 2 if self.q_lora_rank else 0,
                kv_lora_rank=d_model // 2,
                qk_nope_head_dim=head_dim,
                qk_rope_head_dim=max(2, head_dim // 2),
                v_head_dim=head_dim,
            )
        new.update(changes)
        return replace(self, **new)

    def to_dict(self) -> dict[str, Any]:
        """Plain fields (RopeScaling as a dict), e.g. to print a table in the book."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, RopeScaling):
                value = {g.name: getattr(value, g.name) for g in fields(value)}
            out[f.name] = value
        return out


def _round8(x: float) -> int:
    """Round a width up to a multiple of 8 (at least 8)."""
    return max(8, int(math.ceil(x / 8)) * 8)
