"""Parameter counts, FLOPs per token and KV-cache bytes, computed from a ModelConfig.

Every count follows the weight matrices of `Transformer(cfg)` (and of the Hugging Face
model of the same family) one by one, so that tests can compare it exactly with
`sum(p.numel())` of a model built on the meta device, and the book can recompute
published totals (GPT-3 175B, Mixtral 46.7B/12.9B, DeepSeek-V3 671B/37B, …).
"""

from __future__ import annotations

from course_lib.models.config import ModelConfig

BREAKDOWN_KEYS = (
    "embedding",
    "position",
    "attention",
    "mlp",
    "shared_experts",
    "experts",
    "router",
    "norms",
    "lm_head",
)


def _norm_size(cfg: ModelConfig, dim: int) -> int:
    """Parameters of one normalisation layer: a gain, plus a bias for LayerNorm."""
    return 2 * dim if cfg.norm == "layer" and cfg.norm_bias else dim


def _attention_params(cfg: ModelConfig) -> tuple[int, int]:
    """(projection weights and biases, norm weights) of one attention layer."""
    d, H = cfg.d_model, cfg.n_heads
    if cfg.is_mla:  # DeepSeek-V2 eqs. (9)-(16): low-rank q and joint low-rank k/v
        qk_dim = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim
        if cfg.q_lora_rank:
            q = d * cfg.q_lora_rank + cfg.q_lora_rank * H * qk_dim
            norms = cfg.q_lora_rank
        else:
            q, norms = d * H * qk_dim, 0
        kv_a = d * (cfg.kv_lora_rank + cfg.qk_rope_head_dim)
        kv_b = cfg.kv_lora_rank * H * (cfg.qk_nope_head_dim + cfg.v_head_dim)
        out = H * cfg.v_head_dim * d
        return q + kv_a + kv_b + out, norms + cfg.kv_lora_rank
    q_dim, kv_dim = H * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    weights = d * q_dim + 2 * d * kv_dim + q_dim * d
    biases = (q_dim + 2 * kv_dim if cfg.qkv_bias else 0) + (d if cfg.out_bias else 0)
    biases += H if cfg.attn_sinks else 0  # gpt-oss: one sink logit per head
    # OLMo 2 normalises the whole projection, Qwen 3 each head with one shared gain
    norms = 0 if not cfg.qk_norm else 2 * cfg.head_dim if cfg.qk_norm_per_head else q_dim + kv_dim
    return weights + biases, norms


def _mlp_params(cfg: ModelConfig, d_ff: int, bias: bool | None = None) -> int:
    """A dense feed-forward block of width d_ff: 3 matrices if gated (SwiGLU/GeGLU), else 2;
    biases if `bias` (default: cfg.mlp_bias)."""
    d = cfg.d_model
    n_in = 2 if cfg.gated_mlp else 1
    biases = (n_in * d_ff + d) if (cfg.mlp_bias if bias is None else bias) else 0
    return (n_in + 1) * d * d_ff + biases


def _norms_per_layer(cfg: ModelConfig) -> int:
    """Norm layers around the sublayers: 2 (pre-norm, or OLMo 2 post-norm), 4 (Gemma 2
    sandwich), 1 (parallel block: attention and MLP share it)."""
    if cfg.parallel_block:
        return 1
    return 4 if cfg.norm_placement == "sandwich" else 2


def parameter_breakdown(cfg: ModelConfig, active: bool = False) -> dict[str, int]:
    """Parameters by kind: embedding, position, attention, mlp, shared_experts, experts, router,
    norms, lm_head.

    `active=True` counts, in MoE layers, only the `n_experts_per_tok` routed experts a token
    uses (Fedus et al. 2021; Jiang et al. 2024 call the result "active parameters"); the
    router, shared experts and everything else are always active. Buffers such as
    DeepSeek-V3's routing bias are not parameters. Gopher/Chinchilla's Transformer-XL
    relative positions add one d_model x d_model matrix per layer ("position").
    """
    d, L = cfg.d_model, cfg.n_layers
    attn, attn_norms = _attention_params(cfg)
    n_moe = sum(cfg.is_moe_layer(i) for i in range(L))
    n_dense = L - n_moe
    experts_used = cfg.n_experts_per_tok if active else cfg.n_experts
    position = {"rope": 0, "learned": cfg.max_seq_len * d, "relative": L * d * d}[cfg.position]
    return {
        "embedding": cfg.vocab_size * d,
        "position": position,
        "attention": L * attn,
        "mlp": n_dense * _mlp_params(cfg, cfg.d_ff),
        "shared_experts": n_moe * _mlp_params(cfg, cfg.n_shared_experts * cfg.moe_d_ff),
        "experts": n_moe * experts_used * _mlp_params(cfg, cfg.moe_d_ff, cfg.moe_bias),
        "router": n_moe * cfg.n_experts * (d + cfg.moe_bias),
        "norms": L * (_norms_per_layer(cfg) * _norm_size(cfg, d) + attn_norms) + _norm_size(cfg, d),
        "lm_head": 0 if cfg.tie_embeddings else cfg.vocab_size * d,
    }


def count_parameters(cfg: ModelConfig, active: bool = False) -> int:
    """Total parameters of the model (`active=True`: those one token uses, for MoE models).

    Equals `sum(p.numel() for p in Transformer(cfg).parameters())` and the Hugging Face
    model's count for the same configuration (tied embeddings counted once).
    """
    return sum(parameter_breakdown(cfg, active).values())


def matmul_parameters(cfg: ModelConfig) -> int:
    """Active parameters that take part in a matrix multiply for each token.

    The token and position embeddings are table look-ups (no FLOPs) and are left out; the
    output projection is a d_model x vocab matmul whether or not it is tied to the
    embedding, so it is always in. This is the N of the "6N" rules below.
    """
    b = parameter_breakdown(cfg, active=True)
    return (
        count_parameters(cfg, active=True)
        - b["embedding"]
        - b["position"]
        + (cfg.vocab_size * cfg.d_model if cfg.tie_embeddings else 0)
    )


def attention_flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Forward FLOPs of the score and value matmuls, q·k^T and softmax·V, for one token.

    2·H·(d_qk + d_v)·T per layer with T the keys the token attends to: the full sequence
    (PaLM's convention, no discount for the causal mask) or, on a sliding-window layer,
    min(T, window), on a chunked layer (Llama 4) min(T, chunk).
    """
    if cfg.is_mla:
        per_key = cfg.n_heads * (cfg.qk_nope_head_dim + cfg.qk_rope_head_dim + cfg.v_head_dim)
    else:
        per_key = cfg.n_heads * 2 * cfg.head_dim
    keys = [min(seq_len, cfg.window(i) or cfg.chunk(i) or seq_len) for i in range(cfg.n_layers)]
    return 2.0 * per_key * sum(keys)


def flops_per_token(cfg: ModelConfig, seq_len: int = 0, training: bool = True) -> float:
    """Model FLOPs per token, training (forward + backward) or forward only.

    seq_len=0 gives the "6N" rule of Kaplan et al. (2020), C ≈ 6·N·D, with N =
    `matmul_parameters(cfg)` (2N for a forward pass alone). With the sequence length it is the
    form of PaLM (Chowdhery et al. 2022, Appendix B), 6N + 12·L·H·Q·T: the attention
    matmuls add 4·L·H·Q·T forward, times 3 for training (see `attention_flops_per_token`).
    Kaplan et al. (Table 1) count 2·L·T·d_attn forward instead: half, for the causal mask.
    """
    passes = 3.0 if training else 1.0
    return passes * (2.0 * matmul_parameters(cfg) + attention_flops_per_token(cfg, seq_len))


def kv_cache_elements_per_token(cfg: ModelConfig) -> int:
    """Cached numbers per token per layer: 2·n_kv_heads·head_dim (K and V), or MLA's latent
    c_KV plus the shared RoPE key, kv_lora_rank + qk_rope_head_dim (DeepSeek-V2, Section 2.1)."""
    if cfg.is_mla:
        return cfg.kv_lora_rank + cfg.qk_rope_head_dim
    return 2 * cfg.n_kv_heads * cfg.head_dim


def kv_cache_bytes(
    cfg: ModelConfig, seq_len: int, batch: int = 1, bytes_per_element: int = 2
) -> int:
    """Bytes of the KV cache after `seq_len` tokens, for `batch` sequences.

    MHA, GQA and MQA differ through n_kv_heads; a sliding-window layer keeps at most its
    window (Mistral's rolling buffer), so Gemma 2's local layers are capped and its global
    ones are not, and a chunked layer (Llama 4) at most its chunk; MLA caches its compressed
    latent. Default 2 bytes: bf16/fp16. Equals the buffers `Cache.for_config` allocates.
    """
    tokens = sum(
        min(seq_len, cfg.window(i) or cfg.chunk(i) or seq_len) for i in range(cfg.n_layers)
    )
    return tokens * kv_cache_elements_per_token(cfg) * batch * bytes_per_element


def weight_bytes_per_token(cfg: ModelConfig, bytes_per_element: int = 2) -> int:
    """Bytes of weights one decoding step reads: active parameters minus the embedding table
    (a decode step reads one row of it) plus the output projection even when tied."""
    return matmul_parameters(cfg) * bytes_per_element
