"""Scaled dot-product attention, the reference: causal, GQA/MQA, sliding window, soft-cap, sinks.

API
- `attention(q, k, v, *, causal=True, window=None, scale=None, softcap=None, sinks=None,
  attn_mask=None, q_offset=None, chunk=None) -> (B, H, T_q, D_v)`
- `attention_probs(q, k, *, same keyword arguments) -> (B, H, T_q, T_k)` the softmax weights
- `causal_mask(t_q, t_k, window=None, q_offset=None, device=None, chunk=None) -> bool (t_q, t_k)`
- `visible(q_pos, k_pos, causal=True, window=None, chunk=None) -> bool`: the mask rule, on
  positions
- `check_attention_inputs(q, k, v, causal, window, q_offset, chunk=None)`: the validation
  every attention kernel (this one, `flash`, `decode`, Triton) runs
- `attention_temperature(positions, floor_scale, attn_scale) -> (T,)` Llama 4's query
  scaling in its NoPE layers
- `repeat_kv(x, n_rep) -> (B, H_kv * n_rep, T, D)`
- `final_logit_softcap(logits, cap) -> cap * tanh(logits / cap)`

softmax(q k^T * scale + mask) v (Vaswani et al. 2017), with q (B, H, T_q, D) and k, v
(B, H_kv, T_k, D) / (B, H_kv, T_k, D_v), H % H_kv == 0: query head h reads key/value head
h // (H / H_kv). H_kv = H is multi-head attention, 1 < H_kv < H grouped-query attention
(Ainslie et al. 2023, arXiv:2305.13245), H_kv = 1 multi-query attention (Shazeer 2019).

Positions: key j sits at position j; query i at position q_offset + i. The default
q_offset=None means T_k - T_q: the queries are the last T_q tokens, as in decoding with a
KV cache or chunked prefill (and as in `course_lib.kernels.flash`); T_q == T_k is ordinary
self-attention. Pass an explicit q_offset when the keys are not the whole prefix.

Masks (True = may attend), combined with `attn_mask` (bool, True = keep, or additive float,
broadcastable to (B, H, T_q, T_k), e.g. for padding):
- causal: query at position p sees keys j <= p;
- window=w (requires causal): also j >= p - w + 1, i.e. the last w keys including itself
  (sliding-window attention, Mistral 7B, Jiang et al. 2023; Gemma 2's local layers).
  Hugging Face's `sliding_window` has the same meaning in transformers 5.x (the mask is
  kv_idx > q_idx - sliding_window), so pass it through unchanged; flash-attn's
  `window_size=(w - 1, 0)` counts the keys to the left of the query and is w - 1.
- chunk=c (requires causal): also j // c == p // c, i.e. the keys of the query's own block
  of c positions (chunked attention, Llama 4's RoPE layers, Meta 2025; transformers'
  `chunked_overlay`). Unlike a window, the first query of each chunk sees only itself.

Attention temperature (Llama 4's NoPE layers, `attn_temperature_tuning`): the queries at
position p are multiplied by 1 + attn_scale * log(1 + floor((p + 1) / floor_scale)), so that
the scores sharpen as the context grows (Meta 2025, Llama 4 release; transformers cites
Nakanishi 2025, Scalable-Softmax, arXiv:2501.19399, for the idea).

Order of operations, as in Hugging Face's eager attention so that logits agree: scores =
(q @ k^T) * scale in the inputs' dtype; then Gemma 2's soft-capping cap * tanh(s / cap); then
the masks; softmax in float32 (float64 for float64 inputs), cast back; weights @ v.
Attention sinks (gpt-oss, OpenAI 2025; cf. Xiao et al. 2023, arXiv:2309.17453): one learned
logit per head joins every softmax row as an extra column that takes probability mass but
has no value, so a head can attend to "nothing"; the rows then sum to less than one.
"""

from __future__ import annotations

import torch


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, H_kv, T, D) -> (B, H_kv * n_rep, T, D), each head repeated n_rep times in place."""
    if n_rep == 1:
        return x
    b, h_kv, t, d = x.shape
    return x[:, :, None].expand(b, h_kv, n_rep, t, d).reshape(b, h_kv * n_rep, t, d)


def final_logit_softcap(logits: torch.Tensor, cap: float) -> torch.Tensor:
    """cap * tanh(logits / cap): squashes logits into (-cap, cap) (Gemma 2, Gemma Team 2024)."""
    return torch.tanh(logits / cap) * cap


def visible(
    q_pos: torch.Tensor,
    k_pos: torch.Tensor,
    causal: bool = True,
    window: int | None = None,
    chunk: int | None = None,
) -> torch.Tensor:
    """Bool mask, True where a query at position q_pos may see the key at k_pos.

    The one mask rule of every attention kernel in course_lib: causal, key <= query; window w,
    also key > query - w; chunk c, also key // c == query // c (same block of c positions).
    q_pos and k_pos broadcast against each other, e.g. (T_q, 1) and (1, T_k), or (B, 1) and
    (1, block) for decoding.
    """
    shape = torch.broadcast_shapes(q_pos.shape, k_pos.shape)
    ok = torch.ones(shape, dtype=torch.bool, device=q_pos.device)
    if causal:
        ok = ok & (k_pos <= q_pos)
    if window is not None:
        ok = ok & (k_pos > q_pos - window)
    if chunk is not None:
        ok = ok & (k_pos // chunk == q_pos // chunk)
    return ok


def attention_temperature(
    positions: torch.Tensor, floor_scale: float, attn_scale: float
) -> torch.Tensor:
    """Llama 4's query scale 1 + attn_scale * log1p(floor((p + 1) / floor_scale)), float32.

    positions (T,) int -> (T,); 1 for the first floor_scale - 1 positions, then growing with
    the log of the context length (transformers' Llama4TextAttention, in float32).
    """
    p = positions.to(torch.float32)
    return torch.log1p(torch.floor((p + 1.0) / floor_scale)) * attn_scale + 1.0


def causal_mask(
    t_q: int,
    t_k: int,
    window: int | None = None,
    q_offset: int | None = None,
    device: torch.device | str | None = None,
    chunk: int | None = None,
) -> torch.Tensor:
    """Bool (t_q, t_k): True where query i (at position q_offset + i) may see key j.

    j <= q_offset + i, and with a window w also j >= q_offset + i - w + 1, with a chunk c
    also j // c == (q_offset + i) // c. q_offset=None means t_k - t_q (queries are the last
    t_q positions).
    """
    if window is not None and window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    offset = t_k - t_q if q_offset is None else q_offset
    pos_q = torch.arange(t_q, device=device)[:, None] + offset  # (t_q, 1)
    pos_k = torch.arange(t_k, device=device)[None, :]  # (1, t_k)
    return visible(pos_q, pos_k, True, window, chunk)


def check_attention_inputs(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor | None,
    causal: bool = True,
    window: int | None = None,
    q_offset: int | None = None,
    chunk: int | None = None,
) -> None:
    """The one validation of every attention path: a ValueError naming the expected shape.

    q (B, H, T_q, D), k (B, H_kv, T_k, D), v (B, H_kv, T_k, D_v) (v may be None), H % H_kv
    == 0, one dtype; a window or a chunk needs causal and a size >= 1; with causal, every
    query must see at
    least one key (T_q > T_k with the default q_offset would leave the first rows empty).
    """
    if q.dim() != 4 or k.dim() != 4 or (v is not None and v.dim() != 4):
        shapes = [tuple(t.shape) for t in (q, k, v) if t is not None]
        raise ValueError(f"expected q (B, H, T_q, D), k/v (B, H_kv, T_k, D); got {shapes}")
    b, h, t_q, d = q.shape
    t_k = k.shape[2]
    if k.shape[0] != b or k.shape[3] != d:
        raise ValueError(
            f"k has shape {tuple(k.shape)}; expected ({b}, H_kv, T_k, {d}): its head dim must "
            "equal q's"
        )
    if h % k.shape[1]:
        raise ValueError(f"n_heads={h} is not a multiple of n_kv_heads={k.shape[1]}")
    if v is not None and v.shape[:3] != k.shape[:3]:
        raise ValueError(f"v has shape {tuple(v.shape)}; expected {tuple(k.shape[:3])} + (D_v,)")
    if any(t is not None and t.dtype != q.dtype for t in (k, v)):
        dtypes = [t.dtype for t in (q, k, v) if t is not None]
        raise ValueError(f"q, k, v dtypes differ: {dtypes}; cast them to one dtype")
    if window is not None:
        if not causal:
            raise ValueError("a sliding window is causal: pass causal=True with window")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
    if chunk is not None:
        if not causal:
            raise ValueError("chunked attention is causal: pass causal=True with chunk")
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
    if causal:
        offset = t_k - t_q if q_offset is None else q_offset
        last = offset + t_q - 1  # position of the last query
        if offset < 0 or (window is not None and last - window + 1 > t_k - 1):
            raise ValueError(
                f"causal attention of T_q={t_q} queries from position {offset} over T_k={t_k} "
                f"keys (window {window}) leaves queries with no visible key; pass the queries' "
                "position as q_offset, or causal=False for cross-attention"
            )


def attention_probs(
    q: torch.Tensor,
    k: torch.Tensor,
    *,
    causal: bool = True,
    window: int | None = None,
    scale: float | None = None,
    softcap: float | None = None,
    sinks: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    q_offset: int | None = None,
    chunk: int | None = None,
) -> torch.Tensor:
    """Attention weights (B, H, T_q, T_k) in q's dtype; see `attention` for the arguments.

    With sinks the sink column is dropped, so rows sum to 1 - (mass on the sink).
    """
    check_attention_inputs(q, k, None, causal, window, q_offset, chunk)
    t_q, t_k = q.shape[2], k.shape[2]
    k = repeat_kv(k, q.shape[1] // k.shape[1])  # (B, H, T_k, D)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale  # (B, H, T_q, T_k)
    if softcap is not None:
        scores = final_logit_softcap(scores, softcap)
    if causal:
        allowed = causal_mask(t_q, t_k, window, q_offset, device=q.device, chunk=chunk)
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attn_mask
    softmax_dtype = torch.float64 if scores.dtype == torch.float64 else torch.float32
    if sinks is None:
        probs = torch.softmax(scores, dim=-1, dtype=softmax_dtype)
        return probs if probs.dtype == q.dtype else probs.to(q.dtype)  # a no-op cast costs a call
    sink_col = sinks.to(scores.dtype).reshape(1, -1, 1, 1).expand(*scores.shape[:3], 1)
    logits = torch.cat((scores, sink_col), dim=-1)  # (B, H, T_q, T_k + 1)
    # gpt-oss (transformers' eager attention) subtracts the row max in the scores' dtype first
    logits = logits - logits.max(dim=-1, keepdim=True).values
    probs = torch.softmax(logits, dim=-1, dtype=softmax_dtype)
    return probs[..., :-1].to(q.dtype)  # drop the sink: it has no value vector


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = True,
    window: int | None = None,
    scale: float | None = None,
    softcap: float | None = None,
    sinks: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    q_offset: int | None = None,
    chunk: int | None = None,
) -> torch.Tensor:
    """softmax(q k^T * scale + mask) v: q (B, H, T_q, D), k (B, H_kv, T_k, D), v (B, H_kv, T_k, D_v).

    causal: mask future keys; window: sliding window of w keys (needs causal); scale:
    default 1/sqrt(D); softcap: Gemma 2's cap on the scores; sinks: (H,) sink logits;
    attn_mask: bool (True = keep) or additive, broadcastable to (B, H, T_q, T_k);
    q_offset: position of the first query (default T_k - T_q); chunk: chunked attention in
    blocks of that many positions (needs causal). Returns (B, H, T_q, D_v).
    """
    check_attention_inputs(q, k, v, causal, window, q_offset, chunk)
    probs = attention_probs(
        q,
        k,
        causal=causal,
        window=window,
        scale=scale,
        softcap=softcap,
        sinks=sinks,
        attn_mask=attn_mask,
        q_offset=q_offset,
        chunk=chunk,
    )  # (B, H, T_q, T_k)
    return torch.matmul(probs, repeat_kv(v, q.shape[1] // v.shape[1]))
