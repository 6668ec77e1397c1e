"""Transformer: one configurable decoder for every architecture of the course.

GPT-2 (Radford et al. 2019) is the starting point: token + learned position embeddings,
pre-norm blocks x + attn(norm(x)), x + mlp(norm(x)), a final norm and an output projection
tied to the embedding. Every later model is a set of switches on it (see `ModelConfig`):
RoPE instead of learned positions (Su et al. 2021), RMSNorm, SwiGLU/GeGLU, GQA/MQA, sliding
windows, Gemma 2's sandwich norms and soft-caps, OLMo 2's norms on the sublayer outputs and
QK-norm (per head in Qwen 3 and Gemma 3), SmolLM3's NoPE layers, gpt-oss's attention sinks,
Llama 4's chunked attention, NoPE temperature tuning and gain-free QK-norm after RoPE,
Mixtral/DeepSeek/Qwen 3/gpt-oss/Llama 4 mixtures of experts and DeepSeek's Multi-head Latent
Attention.
The building blocks are the `course_lib.kernels` references; this module only wires them.

Shapes: B batch, T new tokens, D d_model, H heads, H_kv key/value heads, d head_dim.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from course_lib.device import resolve_device
from course_lib.kernels.activations import MLP, GatedMLP, fuse_linears
from course_lib.kernels.attention import attention, attention_temperature, final_logit_softcap
from course_lib.kernels.mla import MultiHeadLatentAttention, mla_softmax_scale
from course_lib.kernels.moe import DeepSeekMoE, SparseMoE
from course_lib.kernels.norms import LayerNorm, QKNorm, RMSNorm, rms_norm
from course_lib.kernels.rope import (
    apply_rope_tables,
    is_dynamic,
    rope_attention_factor,
    rope_cos_sin,
    rope_frequencies,
    rope_rotation,
)
from course_lib.models.analytics import count_parameters
from course_lib.models.cache import Cache, LayerCache, MLACache
from course_lib.models.config import ModelConfig


def make_norm(cfg: ModelConfig, dim: int) -> nn.Module:
    """LayerNorm (with or without bias) or RMSNorm; Gemma's RMSNorm scales by (1 + w).

    Gemma's and OLMo 2's RMSNorm apply the gain in float32 (`norm_scale_in_fp32`)."""
    if cfg.norm == "layer":
        return LayerNorm(dim, cfg.norm_eps, bias=cfg.norm_bias)
    return RMSNorm(
        dim,
        cfg.norm_eps,
        zero_centered=cfg.norm_unit_offset,
        scale_in_fp32=cfg.norm_unit_offset or cfg.norm_scale_in_fp32,
    )


class Attention(nn.Module):
    """Causal multi-head attention with n_kv_heads key/value heads (MHA, GQA, MQA).

    Optional: q/k/v and output biases (GPT-2, Qwen 2), QK-norm over the whole projection
    (OLMo 2) or per head (Qwen 3), before RoPE; attention sinks (gpt-oss); no RoPE in NoPE
    layers (SmolLM3); RoPE in the half or interleaved layout (`rope_interleave`: Meta's original
    Llama checkpoints, GPT-J, Llama 4), a sliding window (Mistral, Gemma 2 local layers),
    soft-capped scores and a custom scale (Gemma 2). Llama 4: chunked attention
    (`attention_chunk`), a gain-free RMS norm of each q and k head after RoPE in RoPE layers
    (`qk_l2_norm`), queries scaled by a position-dependent temperature in NoPE layers
    (`attn_temperature_tuning`).
    """

    def __init__(self, cfg: ModelConfig, layer: int) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.window, self.scale, self.softcap = cfg.window(layer), cfg.attn_scale, cfg.attn_softcap
        self.use_rope = cfg.uses_rope(layer)  # False: no positions (GPT-2) or a NoPE layer
        self.chunk = cfg.chunk(layer)
        # Llama 4: L2 (gain-free RMS) QK-norm in RoPE layers, temperature in NoPE layers
        self.l2_qk_eps = cfg.norm_eps if cfg.qk_l2_norm and self.use_rope else None
        self.temperature = None
        if cfg.attn_temperature_tuning and not self.use_rope:
            self.temperature = (cfg.floor_scale, cfg.attn_temperature_scale)
        q_dim, kv_dim = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
        self.q_proj = nn.Linear(cfg.d_model, q_dim, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(cfg.d_model, kv_dim, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(cfg.d_model, kv_dim, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(q_dim, cfg.d_model, bias=cfg.out_bias)
        self.qkv_proj: nn.Linear | None = None  # see `fuse`
        self.q_norm = self.k_norm = None
        if cfg.qk_norm:
            kw = dict(
                per_head=cfg.qk_norm_per_head,
                zero_centered=cfg.norm_unit_offset,  # Gemma 3: (1 + w), in float32
                scale_in_fp32=cfg.norm_unit_offset or cfg.norm_scale_in_fp32,
            )
            self.q_norm = QKNorm(cfg.n_heads, cfg.head_dim, cfg.norm_eps, **kw)
            self.k_norm = QKNorm(cfg.n_kv_heads, cfg.head_dim, cfg.norm_eps, **kw)
        self.rope_layout = "interleaved" if cfg.rope_interleave else "half"
        self.rope_dim = cfg.rope_dim if self.use_rope else 0
        self.rope_in_fp32 = cfg.rope_in_fp32
        # gpt-oss: one sink logit per head joins each softmax row (kernels.attention)
        self.sinks = nn.Parameter(torch.zeros(cfg.n_heads)) if cfg.attn_sinks else None

    def project_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q (B, T, H·d), k, v (B, T, H_kv·d): three products, or one if fused (views of it)."""
        if self.qkv_proj is None:
            return self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q_dim, kv_dim = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        return self.qkv_proj(x).split((q_dim, kv_dim, kv_dim), dim=-1)

    def fuse(self) -> None:
        """Replace q_proj, k_proj, v_proj by one `qkv_proj` reading the three matrices (for
        decoding: one kernel call instead of three; the same outputs, state_dict keys change)."""
        if self.qkv_proj is None:
            self.qkv_proj = fuse_linears(self.q_proj, self.k_proj, self.v_proj)
            del self.q_proj, self.k_proj, self.v_proj

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor | None,
        sin: torch.Tensor | None,
        cache: LayerCache | None,
        pos: int,
    ) -> torch.Tensor:
        """x (B, T, D) at positions pos … pos+T-1 -> (B, T, D); cos, sin are the step's
        `rope_rotation` tables (T, rope_dim), built once for all layers (`Transformer.forward`)."""
        B, T, _ = x.shape
        q, k, v = self.project_qkv(x)  # (B, T, H·d), (B, T, H_kv·d), (B, T, H_kv·d)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q = q.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, d)
        k = k.view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, H_kv, T, d)
        v = v.view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, H_kv, T, d)
        if self.use_rope:
            if cos.shape[-1] != self.rope_dim:  # (T, rope_dim / 2) would rotate half the channels
                raise ValueError(
                    f"cos/sin have {cos.shape[-1]} columns, expected rope_dim={self.rope_dim}: "
                    "pass the `Transformer.rope_rotation` tables"
                )
            kw = dict(layout=self.rope_layout, upcast=self.rope_in_fp32)
            q, k = apply_rope_tables(q, cos, sin, **kw), apply_rope_tables(k, cos, sin, **kw)
        if self.l2_qk_eps is not None:  # each head over head_dim, no gain (Llama 4)
            q, k = rms_norm(q, None, self.l2_qk_eps), rms_norm(k, None, self.l2_qk_eps)
        if self.temperature is not None:  # (T,) float32 scale per query position
            scale = attention_temperature(
                torch.arange(pos, pos + T, device=x.device), *self.temperature
            )
            q = (q * scale[:, None]).to(q.dtype)
        if cache is not None:
            k, v = cache.update(k, v, pos)  # (B, H_kv, T_k, d), the new tokens last
        kw = dict(scale=self.scale, softcap=self.softcap, sinks=self.sinks)
        if T == 1:  # one query: the keys given are those it may see
            y = attention(q, k, v, causal=False, **kw)
        else:  # (B, H, T, d); the keys start at a chunk boundary: their indices mask as positions
            y = attention(q, k, v, causal=True, window=self.window, chunk=self.chunk, **kw)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))


class LatentAttention(nn.Module):
    """DeepSeek's Multi-head Latent Attention (the `kernels.mla` module) with an `MLACache`."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.mla = MultiHeadLatentAttention(
            cfg.d_model,
            cfg.n_heads,
            kv_lora_rank=cfg.kv_lora_rank,
            qk_nope_head_dim=cfg.qk_nope_head_dim,
            qk_rope_head_dim=cfg.qk_rope_head_dim,
            v_head_dim=cfg.v_head_dim,
            q_lora_rank=cfg.q_lora_rank or None,
            softmax_scale=mla_softmax_scale(
                cfg.qk_nope_head_dim + cfg.qk_rope_head_dim, cfg.rope_scaling_dict()
            ),
            rope_layout="interleaved" if cfg.rope_interleave else "half",
            norm_eps=cfg.norm_eps,
        )

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: LayerCache | None,
        pos: int,
    ) -> torch.Tensor:
        """x (B, T, D) at positions pos … pos+T-1 -> (B, T, D); decoding uses the absorbed form."""
        if cache is None:
            return self.mla(x, cos, sin)[0]
        assert isinstance(cache, MLACache)
        latent = cache.store(*self.mla.latent(x, cos, sin), pos)  # (B, pos + T, d_c + d_R) view
        return self.mla.attend(x, cos, sin, latent, absorbed=x.shape[1] == 1)


class Block(nn.Module):
    """One decoder layer: attention then feed-forward, each in a residual branch.

    norm_placement "pre": x + f(norm(x)) (GPT-2, Llama); "post": x + norm(f(x)) (OLMo 2);
    "sandwich": x + norm(f(norm(x))) (Gemma 2). parallel_block: x + attn(h) + mlp(h),
    h = norm(x) (GPT-J, PaLM).
    """

    def __init__(self, cfg: ModelConfig, layer: int) -> None:
        super().__init__()
        pre = cfg.norm_placement in ("pre", "sandwich")
        post = cfg.norm_placement in ("post", "sandwich")
        self.parallel = cfg.parallel_block
        self.attn_norm = make_norm(cfg, cfg.d_model) if pre else None
        self.attn = LatentAttention(cfg) if cfg.is_mla else Attention(cfg, layer)
        self.attn_out_norm = make_norm(cfg, cfg.d_model) if post else None
        self.mlp_norm = make_norm(cfg, cfg.d_model) if pre and not self.parallel else None
        self.mlp = make_mlp(cfg, layer)
        self.mlp_out_norm = make_norm(cfg, cfg.d_model) if post else None

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor | None,
        sin: torch.Tensor | None,
        cache: LayerCache | None,
        pos: int,
    ) -> torch.Tensor:
        """x (B, T, D) -> (B, T, D)."""
        h = x if self.attn_norm is None else self.attn_norm(x)
        a = self.attn(h, cos, sin, cache, pos)
        if self.parallel:
            return x + a + self.mlp(h)
        if self.attn_out_norm is not None:
            a = self.attn_out_norm(a)
        x = x + a
        h = x if self.mlp_norm is None else self.mlp_norm(x)
        m = self.mlp(h)
        if self.mlp_out_norm is not None:
            m = self.mlp_out_norm(m)
        return x + m


def make_mlp(cfg: ModelConfig, layer: int) -> nn.Module:
    """Dense MLP (GPT-2) or GLU MLP (SwiGLU/GeGLU), or the MoE layer of Mixtral / DeepSeek."""
    if cfg.is_moe_layer(layer):
        if cfg.router == "sigmoid":
            return DeepSeekMoE(
                cfg.d_model,
                cfg.moe_d_ff,
                cfg.n_experts,
                cfg.n_experts_per_tok,
                n_shared_experts=cfg.n_shared_experts,
                n_group=cfg.n_expert_groups,
                topk_group=cfg.topk_groups,
                norm_topk_prob=cfg.norm_topk_prob,
                routed_scaling_factor=cfg.routed_scaling,
                activation=cfg.activation,
            )
        return SparseMoE(
            cfg.d_model,
            cfg.moe_d_ff,
            cfg.n_experts,
            cfg.n_experts_per_tok,
            order=cfg.router if cfg.router.startswith("topk_") else "softmax_topk",
            renormalize=cfg.norm_topk_prob,
            activation=cfg.activation,
            gate_in_fp32=cfg.moe_gate_in_fp32,
            bias=cfg.moe_bias,
            swiglu_limit=cfg.swiglu_limit,
            swiglu_alpha=cfg.swiglu_alpha,
            gate_on_input=cfg.moe_gate_on_input,
            n_shared_experts=cfg.n_shared_experts,
        )
    if cfg.gated_mlp:
        return GatedMLP(cfg.d_model, cfg.d_ff, cfg.activation, bias=cfg.mlp_bias)
    return MLP(cfg.d_model, cfg.d_ff, cfg.activation, bias=cfg.mlp_bias)


def _check_fits(cfg: ModelConfig, device: torch.device, dtype: torch.dtype) -> None:
    """Refuse a model larger than the device's memory (a full-size preset by mistake)."""
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
    elif device.type == "cpu":
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    else:
        return
    needed = count_parameters(cfg) * dtype.itemsize
    if needed > total:
        raise MemoryError(
            f"{cfg.name} needs {needed / 2**30:.1f} GiB of weights, the {device.type} has "
            f"{total / 2**30:.1f} GiB: use cfg.scaled() for a tiny variant, or device='meta'"
        )


class Transformer(nn.Module):
    """Decoder-only language model built from a `ModelConfig`: `forward(input_ids) -> logits`.

    input_ids (B, T) int64 -> logits (B, T, vocab). With a `Cache` (see `new_cache`) the
    tokens continue the cached sequence and the cache is extended in place.
    """

    def __init__(
        self,
        cfg: ModelConfig,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        if cfg.position == "relative":
            raise NotImplementedError(
                f"{cfg.name}: Transformer-XL relative positions (Gopher, Chinchilla) are counted "
                "by course_lib.models.analytics but not implemented in Transformer"
            )
        self.cfg = cfg
        device = resolve_device(device)
        _check_fits(cfg, device, dtype)
        with torch.device(device):
            self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
            self.pos_embed = (
                nn.Embedding(cfg.max_seq_len, cfg.d_model) if cfg.position == "learned" else None
            )
            self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
            self.norm = make_norm(cfg, cfg.d_model)
            self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        # RoPE frequencies stay float32 whatever the weights' dtype: kept per device, not as a buffer
        self._inv_freq: dict[tuple[torch.device, bool], torch.Tensor] = {}
        self._rope_factor = rope_attention_factor(cfg.rope_scaling_dict())
        self._rope_kinds = sorted({cfg.rope_local(i) for i in range(cfg.n_layers)})
        self.reset_parameters(init_std)
        self.to(dtype)

    @torch.no_grad()
    def reset_parameters(self, std: float = 0.02) -> None:
        """Weights (matrices, embeddings, experts) ~ N(0, std²) as GPT-2; biases 0; norm gains
        as built (1, or 0 for Gemma's 1 + w)."""
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, std)
            elif name.endswith("bias"):
                p.zero_()

    def fuse_projections(self) -> Transformer:
        """Fuse each layer's q/k/v and gate/up projections into one matrix product each
        (`Attention.fuse`, `GatedMLP.fuse`): fewer, larger kernel calls per decoding step,
        the same logits. Changes the state_dict keys, so it is a step before decoding
        (`quantize_for_decode`), not for loading or fine-tuning. Returns the model."""
        for block in self.layers:
            for module in (block.attn, block.mlp):
                if isinstance(module, Attention | GatedMLP):
                    module.fuse()
        return self

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    def new_cache(self, batch: int, max_len: int) -> Cache:
        """Pre-allocated KV caches for `batch` sequences of up to `max_len` tokens."""
        return Cache.for_config(
            self.cfg, batch, max_len, device=self.device, dtype=self.embed.weight.dtype
        )

    def rope_tables(
        self, positions: torch.Tensor, local: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (T, rope_dim / 2) in float32 for positions (T,) (Su et al. 2021).

        local=True: the local layers' tables (base `local_rope_theta`, no scaling)."""
        cfg = self.cfg
        if local:
            theta, scaling, factor = cfg.local_rope_theta, None, 1.0
        else:
            theta, scaling, factor = cfg.rope_theta, cfg.rope_scaling_dict(), self._rope_factor
        if is_dynamic(scaling):  # dynamic NTK: frequencies for the current length
            seq_len = int(positions.max()) + 1
            inv_freq = rope_frequencies(
                cfg.rope_dim, theta, scaling, seq_len=seq_len, device=positions.device
            )
            return rope_cos_sin(positions, inv_freq, factor)
        inv_freq = self._inv_freq.get((positions.device, local))
        if inv_freq is None:
            inv_freq = rope_frequencies(cfg.rope_dim, theta, scaling, device=positions.device)
            self._inv_freq[(positions.device, local)] = inv_freq
        return rope_cos_sin(positions, inv_freq, factor)

    def rope_rotation(
        self, cos: torch.Tensor, sin: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`rope_rotation` tables (T, rope_dim) of cos, sin (T, rope_dim / 2) for `Attention`, in
        the dtype the rotation runs in: the activations' dtype, float32 with rope_in_fp32."""
        if self.cfg.rope_in_fp32:
            dtype = torch.promote_types(dtype, cos.dtype)
        layout = "interleaved" if self.cfg.rope_interleave else "half"
        return rope_rotation(cos, sin, layout, dtype)

    def forward(
        self, input_ids: torch.Tensor, cache: Cache | None = None, *, last_only: bool = False
    ) -> torch.Tensor:
        """input_ids (B, T) -> logits (B, T, vocab), or (B, 1, vocab) with last_only."""
        B, T = input_ids.shape
        pos = 0 if cache is None else cache.seq_len
        x = self.embed(input_ids)  # (B, T, D)
        if self.cfg.embed_scale:  # Gemma: sqrt(d_model), rounded to the weights' dtype
            x = x * torch.tensor(self.cfg.d_model**0.5, dtype=x.dtype)
        tables: dict[bool, tuple[torch.Tensor, torch.Tensor]] = {}
        positions = torch.arange(pos, pos + T, device=input_ids.device)  # (T,)
        if self.pos_embed is not None:
            if pos + T > self.cfg.max_seq_len:
                raise ValueError(
                    f"{pos + T} positions, but learned position embeddings stop at "
                    f"max_seq_len={self.cfg.max_seq_len}"
                )
            x = x + self.pos_embed(positions)
        if self.cfg.position == "rope":  # (T, rope_dim / 2) each, global (and local) layers'
            tables = {local: self.rope_tables(positions, local) for local in self._rope_kinds}
            if not self.cfg.is_mla:  # expanded once per step for every layer: (T, rope_dim)
                tables = {local: self.rope_rotation(*t, x.dtype) for local, t in tables.items()}
        for i, layer in enumerate(self.layers):
            cos, sin = tables.get(self.cfg.rope_local(i), (None, None))
            x = layer(x, cos, sin, None if cache is None else cache.layers[i], pos)
        if cache is not None:
            cache.seq_len = pos + T
        if last_only:
            x = x[:, -1:]
        logits = self.lm_head(self.norm(x))  # (B, T, vocab)
        if self.cfg.final_softcap is not None:
            logits = final_logit_softcap(logits, self.cfg.final_softcap)
        return logits
