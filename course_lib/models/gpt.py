"""GPT: one small decoder-only language model in one file, read top to bottom.

In the style of nanoGPT's `model.py` (Karpathy 2023). Two flavours of the same block:

- "gpt2" (Radford et al. 2019): learned position embeddings, LayerNorm, a GELU MLP with
  4x width, biases everywhere, the output projection tied to the token embedding;
- "llama" (Touvron et al. 2023): rotary positions (Su et al. 2021) on q and k, RMSNorm
  (Zhang & Sennrich 2019), a SwiGLU MLP (Shazeer 2020), no biases, an untied output.

Both are pre-norm: x + attn(norm(x)), then x + mlp(norm(x)). Initialisation is GPT-2's:
weights ~ N(0, 0.02²), biases 0, and the two projections that write into the residual
stream (attention out and MLP out) scaled by 1/sqrt(2 L), so the residual's variance does
not grow with depth. `to_transformer` copies the weights into the configurable
`course_lib.models.Transformer`, which gives the same logits (tests/test_models_gpt.py).

Shapes: B batch, T tokens, C n_embd, nh heads, hs head size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.models.config import ModelConfig


@dataclass(frozen=True)
class GPTConfig:
    """nanoGPT's hyper-parameters; d_ff = 0 means 4 C (gpt2) or 8/3 C rounded to 8 (llama)."""

    vocab_size: int = 256
    block_size: int = 128  # longest context
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    arch: str = "gpt2"  # "gpt2" | "llama"
    d_ff: int = 0
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    def __post_init__(self) -> None:
        if self.arch not in ("gpt2", "llama"):
            raise ValueError(f"arch must be 'gpt2' or 'llama', got {self.arch!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not a multiple of n_head={self.n_head}")
        if self.d_ff == 0:
            d_ff = 4 * self.n_embd if self.arch == "gpt2" else 8 * math.ceil(self.n_embd / 3)
            object.__setattr__(self, "d_ff", d_ff)

    def to_model_config(self) -> ModelConfig:
        """The same model as a `ModelConfig` for `Transformer` and the analytics."""
        gpt2 = self.arch == "gpt2"
        return ModelConfig(
            vocab_size=self.vocab_size,
            d_model=self.n_embd,
            n_layers=self.n_layer,
            n_heads=self.n_head,
            d_ff=self.d_ff,
            max_seq_len=self.block_size,
            name=f"gpt-{self.arch}",
            family="gpt2" if gpt2 else "llama",
            position="learned" if gpt2 else "rope",
            tie_embeddings=gpt2,
            norm="layer" if gpt2 else "rms",
            norm_eps=self.norm_eps,
            qkv_bias=gpt2,
            out_bias=gpt2,
            rope_theta=self.rope_theta,
            activation="gelu_tanh" if gpt2 else "silu",
            gated_mlp=not gpt2,
            mlp_bias=gpt2,
        )


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) * g, computed in float32."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (x32 * self.weight.float()).to(x.dtype)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the pairs (x_i, x_{i+hs/2}) of x (B, nh, T, hs) by angles m θ_i (Su et al. 2021)."""
    x1, x2 = x.float().chunk(2, dim=-1)  # (B, nh, T, hs/2) each
    out = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    return out.to(x.dtype)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with one fused q, k, v projection (c_attn)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        bias = config.arch == "gpt2"
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=bias)

    def forward(self, x: torch.Tensor, rope_cos_sin: tuple | None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # (B, T, C) each
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        if rope_cos_sin is not None:
            q, k = rope(q, *rope_cos_sin), rope(k, *rope_cos_sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    """gpt2: c_proj(gelu(c_fc(x))); llama: c_proj(silu(c_fc(x)) * c_up(x)) (SwiGLU)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.gated = config.arch == "llama"
        bias = not self.gated
        self.c_fc = nn.Linear(config.n_embd, config.d_ff, bias=bias)
        self.c_up = nn.Linear(config.n_embd, config.d_ff, bias=bias) if self.gated else None
        self.c_proj = nn.Linear(config.d_ff, config.n_embd, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gated:
            return self.c_proj(F.silu(self.c_fc(x)) * self.c_up(x))  # (B, T, C)
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))  # (B, T, C)


class Block(nn.Module):
    """Pre-norm decoder block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = _norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = _norm(config)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, rope_cos_sin: tuple | None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rope_cos_sin)
        return x + self.mlp(self.ln_2(x))


def _norm(config: GPTConfig) -> nn.Module:
    if config.arch == "gpt2":
        return nn.LayerNorm(config.n_embd, eps=config.norm_eps)
    return RMSNorm(config.n_embd, config.norm_eps)


class GPT(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, vocab_size)."""

    def __init__(self, config: GPTConfig, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.config = config
        self.cfg = config.to_model_config()  # for the analytics (FLOPs per token, MFU)
        with torch.device(device or "cpu"):
            self.wte = nn.Embedding(config.vocab_size, config.n_embd)
            self.wpe = (
                nn.Embedding(config.block_size, config.n_embd) if config.arch == "gpt2" else None
            )
            self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
            self.ln_f = _norm(config)
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.arch == "gpt2":
            self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """N(0, 0.02²) weights, zero biases, residual projections / sqrt(2 L) (GPT-2 §2.3)."""
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                p.normal_(0.0, 0.02 / math.sqrt(2 * self.config.n_layer))
            elif p.dim() >= 2:
                p.normal_(0.0, 0.02)
            elif name.endswith("bias"):
                p.zero_()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"{T} tokens, but the model's block_size is {self.config.block_size}")
        x = self.wte(idx)  # (B, T, C)
        rope_cos_sin = None
        pos = torch.arange(T, device=idx.device)  # (T,)
        if self.wpe is not None:
            x = x + self.wpe(pos)
        else:
            hs = self.config.n_embd // self.config.n_head
            inv_freq = self.config.rope_theta ** (
                -torch.arange(0, hs, 2, device=idx.device, dtype=torch.float32) / hs
            )  # (hs/2,)
            angles = pos.float()[:, None] * inv_freq  # (T, hs/2)
            rope_cos_sin = (angles.cos(), angles.sin())
        for block in self.h:
            x = block(x, rope_cos_sin)
        return self.lm_head(self.ln_f(x))  # (B, T, vocab_size)


@torch.no_grad()
def to_transformer(model: GPT):  # noqa: ANN201 (Transformer, imported lazily)
    """The configurable `Transformer` with `model`'s weights (same logits)."""
    from course_lib.models.transformer import Transformer

    c = model.config
    out = Transformer(c.to_model_config(), device=model.wte.weight.device)
    out.embed.weight.copy_(model.wte.weight)
    if model.wpe is not None:
        out.pos_embed.weight.copy_(model.wpe.weight)
    out.norm.load_state_dict(model.ln_f.state_dict())
    out.lm_head.weight.copy_(model.lm_head.weight)
    for ours, theirs in zip(model.h, out.layers, strict=True):
        theirs.attn_norm.load_state_dict(ours.ln_1.state_dict())
        theirs.mlp_norm.load_state_dict(ours.ln_2.state_dict())
        a, b = ours.attn, theirs.attn
        for name, w in zip("qkv", a.c_attn.weight.split(c.n_embd), strict=True):
            getattr(b, f"{name}_proj").weight.copy_(w)
        if a.c_attn.bias is not None:
            for name, w in zip("qkv", a.c_attn.bias.split(c.n_embd), strict=True):
                getattr(b, f"{name}_proj").bias.copy_(w)
        b.o_proj.load_state_dict(a.c_proj.state_dict())
        m, n = ours.mlp, theirs.mlp
        if m.gated:
            n.gate_proj.load_state_dict(m.c_fc.state_dict())
            n.up_proj.load_state_dict(m.c_up.state_dict())
            n.down_proj.load_state_dict(m.c_proj.state_dict())
        else:
            n.c_fc.load_state_dict(m.c_fc.state_dict())
            n.c_proj.load_state_dict(m.c_proj.state_dict())
    return out
