"""The attention weights of every head of a `Transformer`, and scores that name head patterns.

API
- `attention_maps(model, input_ids) -> (L, H, T, T)`: each layer's softmax weights on one
  sequence (B = 1), recomputed from the layer's input and checked against its output
- `previous_token_score(maps) -> (L, H)`: mean weight on the token just before the query
- `first_token_score(maps, skip=4) -> (L, H)`: mean weight on position 0, queries t >= skip

A forward hook records the input of every attention layer (the normalised residual stream,
with the rotary cos/sin). The weights are recomputed from that layer's own W_Q, W_K, QK-norm,
RoPE, scale, soft-cap, window and sinks, exactly as `transformer.Attention` computes them; the
weights times the values, projected by W_O, must give back the layer's real output, so a
model this module does not follow fails loudly instead of drawing wrong maps.

Previous-token heads (Olsson et al. 2022, "In-context learning and induction heads") put
their weight on t - 1; attention sinks (Xiao et al. 2024, arXiv:2309.17453) park it on the
first token when nothing else is relevant.
"""

from __future__ import annotations

import torch

from course_lib.kernels.attention import attention_probs, repeat_kv
from course_lib.kernels.rope import apply_rope_tables
from course_lib.models.transformer import Attention, Transformer


def _layer_weights(attn: Attention, args: tuple, output: torch.Tensor) -> torch.Tensor:
    """(H, T, T) weights of one `Attention` from its recorded call (x, cos, sin, cache, pos),
    cos and sin being the model's `rope_rotation` tables."""
    x, cos, sin = args[:3]
    b, t, _ = x.shape
    q, k, v = attn.project_qkv(x)  # (1, T, H·d), (1, T, H_kv·d), (1, T, H_kv·d)
    if attn.q_norm is not None:
        q, k = attn.q_norm(q), attn.k_norm(k)
    q = q.view(b, t, attn.n_heads, attn.head_dim).transpose(1, 2)  # (1, H, T, d)
    k = k.view(b, t, attn.n_kv_heads, attn.head_dim).transpose(1, 2)  # (1, H_kv, T, d)
    v = v.view(b, t, attn.n_kv_heads, attn.head_dim).transpose(1, 2)
    if attn.use_rope:
        kw = dict(layout=attn.rope_layout, upcast=attn.rope_in_fp32)
        q, k = apply_rope_tables(q, cos, sin, **kw), apply_rope_tables(k, cos, sin, **kw)
    p = attention_probs(q, k, causal=True, window=attn.window, scale=attn.scale,
                        softcap=attn.softcap, sinks=attn.sinks)  # (1, H, T, T)  # fmt: skip
    y = p @ repeat_kv(v, attn.n_heads // attn.n_kv_heads)  # (1, H, T, d)
    rebuilt = attn.o_proj(y.transpose(1, 2).reshape(b, t, attn.n_heads * attn.head_dim))
    torch.testing.assert_close(rebuilt, output)  # the recomputed weights are the layer's
    return p[0]


@torch.no_grad()
def attention_maps(model: Transformer, input_ids: torch.Tensor) -> torch.Tensor:
    """Attention weights (L, H, T, T) of every layer and head on input_ids (1, T)."""
    if input_ids.shape[0] != 1:
        raise ValueError("attention_maps takes one sequence: input_ids of shape (1, T)")
    calls: dict[int, tuple] = {}
    hooks = []
    for i, block in enumerate(model.layers):
        if not isinstance(block.attn, Attention):
            raise ValueError(f"layer {i} is not a `transformer.Attention` (MLA?)")

        def record(module, args, out, i=i):
            calls[i] = (args, out)

        hooks.append(block.attn.register_forward_hook(record))
    try:
        model(input_ids)
    finally:
        for h in hooks:
            h.remove()
    maps = [_layer_weights(b.attn, *calls[i]) for i, b in enumerate(model.layers)]
    return torch.stack(maps)


def previous_token_score(maps: torch.Tensor) -> torch.Tensor:
    """Mean weight each head puts on the previous token: maps (..., T, T) -> (...)."""
    return maps.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1)


def first_token_score(maps: torch.Tensor, skip: int = 4) -> torch.Tensor:
    """Mean weight on position 0 of the queries t >= skip (early queries have few choices)."""
    return maps[..., skip:, 0].mean(-1)
