"""course_lib.kernels.attention against PyTorch's SDPA, explicit formulas and HF's eager attention."""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from transformers.masking_utils import (
    chunked_causal_mask_function,
    sliding_window_causal_mask_function,
)
from transformers.models.gemma2.modeling_gemma2 import eager_attention_forward as gemma2_eager
from transformers.models.gpt_oss.modeling_gpt_oss import eager_attention_forward as gpt_oss_eager

from course_lib.kernels import (
    attention,
    attention_probs,
    attention_temperature,
    causal_mask,
    final_logit_softcap,
    flash_attention,
    repeat_kv,
)

B, H, T, D = 2, 4, 9, 8


def _qkv(h=H, h_kv=H, t_q=T, t_k=T, d=D, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, h, t_q, d, generator=g, dtype=dtype)
    k = torch.randn(B, h_kv, t_k, d, generator=g, dtype=dtype)
    v = torch.randn(B, h_kv, t_k, d, generator=g, dtype=dtype)
    return q, k, v


def _loop_mask(t_q, t_k, window, q_offset):
    """The mask written out with Python loops, from the definition in DESIGN.md."""
    mask = torch.zeros(t_q, t_k, dtype=torch.bool)
    for i in range(t_q):
        p = q_offset + i
        for j in range(t_k):
            mask[i, j] = j <= p and (window is None or j >= p - window + 1)
    return mask


def test_causal_matches_sdpa():
    q, k, v = _qkv()
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(attention(q, k, v), expected)


def test_non_causal_with_explicit_scale_matches_sdpa():
    q, k, v = _qkv(t_q=5, t_k=11)
    expected = F.scaled_dot_product_attention(q, k, v, scale=0.05)
    torch.testing.assert_close(attention(q, k, v, causal=False, scale=0.05), expected)


@pytest.mark.parametrize("h_kv", [1, 2, 4])
def test_gqa_matches_sdpa_on_repeated_heads(h_kv):
    q, k, v = _qkv(h_kv=h_kv)
    k_rep, v_rep = (x.repeat_interleave(H // h_kv, dim=1) for x in (k, v))
    expected = F.scaled_dot_product_attention(q, k_rep, v_rep, is_causal=True)
    torch.testing.assert_close(attention(q, k, v), expected)
    torch.testing.assert_close(repeat_kv(k, H // h_kv), k_rep)


def test_mqa_every_head_reads_the_single_kv_head():
    q, k, v = _qkv(h_kv=1)
    out = attention(q, k, v)
    for h in range(H):
        torch.testing.assert_close(out[:, h : h + 1], attention(q[:, h : h + 1], k, v))


def test_gqa_with_n_kv_equal_n_heads_is_mha():
    q, k, v = _qkv()
    for h in range(H):  # MHA: head h uses only its own k, v
        torch.testing.assert_close(
            attention(q, k, v)[:, h : h + 1],
            attention(q[:, h : h + 1], k[:, h : h + 1], v[:, h : h + 1]),
        )


@pytest.mark.parametrize("window", [1, 3, 5])
@pytest.mark.parametrize("q_offset", [None, 4])
def test_causal_mask_matches_definition_and_hf_sliding_window(window, q_offset):
    t_q, t_k = 5, 9
    offset = t_k - t_q if q_offset is None else q_offset
    expected = _loop_mask(t_q, t_k, window, offset)
    torch.testing.assert_close(causal_mask(t_q, t_k, window, q_offset), expected)
    hf = sliding_window_causal_mask_function(window)  # HF's sliding_window: the same w
    idx = torch.tensor
    hf_mask = torch.tensor(
        [
            [bool(hf(idx(0), idx(0), idx(i + offset), idx(j))) for j in range(t_k)]
            for i in range(t_q)
        ]
    )
    torch.testing.assert_close(hf_mask, expected)


@pytest.mark.parametrize("chunk", [1, 3, 4])
@pytest.mark.parametrize("q_offset", [None, 2])
def test_chunked_mask_matches_definition_and_hf_chunked_causal_mask(chunk, q_offset):
    # Llama 4's RoPE layers: query at p sees keys j <= p in its own block of `chunk` positions.
    t_q, t_k = 6, 11
    offset = t_k - t_q if q_offset is None else q_offset
    expected = torch.tensor(
        [[j <= i + offset and j // chunk == (i + offset) // chunk for j in range(t_k)]
         for i in range(t_q)]
    )  # fmt: skip
    torch.testing.assert_close(causal_mask(t_q, t_k, q_offset=q_offset, chunk=chunk), expected)
    hf = chunked_causal_mask_function(chunk, torch.zeros(1, dtype=torch.long))  # no padding
    idx = torch.tensor
    hf_mask = torch.tensor(
        [[bool(hf(idx(0), idx(0), idx(i + offset), idx(j))) for j in range(t_k)]
         for i in range(t_q)]
    )  # fmt: skip
    torch.testing.assert_close(hf_mask, expected)


def test_chunked_attention_is_independent_attention_per_chunk():
    # Chunks of 4 over 9 positions: [0, 4), [4, 8), [8, 9) attend only within themselves.
    q, k, v = _qkv(seed=3)
    out = attention(q, k, v, chunk=4)
    for a, b in ((0, 4), (4, 8), (8, 9)):
        torch.testing.assert_close(
            out[:, :, a:b], attention(q[:, :, a:b], k[:, :, a:b], v[:, :, a:b])
        )
    assert not torch.allclose(out, attention(q, k, v))
    with pytest.raises(ValueError, match="chunked attention is causal"):
        attention(q, k, v, causal=False, chunk=4)


def test_attention_temperature_of_llama4():
    # 1 + a * log(1 + floor((p + 1) / f)): 1 below position f - 1, 1 + a ln 2 from f - 1 to
    # 2f - 2, 1 + a ln 3 from 2f - 1 (transformers' Llama4TextAttention, float32).
    scales = attention_temperature(torch.arange(12), floor_scale=4, attn_scale=0.1)
    assert scales.dtype == torch.float32
    expected = [1.0] * 3 + [1 + 0.1 * math.log(2)] * 4 + [1 + 0.1 * math.log(3)] * 4
    expected += [1 + 0.1 * math.log(4)]
    torch.testing.assert_close(scales, torch.tensor(expected))


def test_sliding_window_matches_sdpa_with_explicit_mask():
    q, k, v = _qkv(seed=1)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=_loop_mask(T, T, 3, 0))
    torch.testing.assert_close(attention(q, k, v, window=3), expected)


def test_window_at_least_t_is_causal_and_window_one_is_identity():
    q, k, v = _qkv(seed=2)
    torch.testing.assert_close(attention(q, k, v, window=T), attention(q, k, v))
    torch.testing.assert_close(attention(q, k, v, window=T + 7), attention(q, k, v))
    torch.testing.assert_close(attention(q, k, v, window=1), v)  # each query sees only itself


def test_softcap_matches_explicit_formula():
    q, k, v = _qkv(seed=3)
    q = q * 4  # large scores so that the cap bites
    cap, scale = 5.0, 0.3
    scores = q @ k.transpose(-1, -2) * scale
    scores = cap * torch.tanh(scores / cap)
    scores = scores.masked_fill(~_loop_mask(T, T, None, 0), float("-inf"))
    expected = torch.softmax(scores, -1) @ v
    torch.testing.assert_close(attention(q, k, v, scale=scale, softcap=cap), expected)
    assert not torch.allclose(attention(q, k, v, scale=scale), expected)


def test_gemma2_eager_attention_with_softcap_window_and_gqa():
    q, k, v = _qkv(h_kv=2, dtype=torch.float32, seed=4)
    module = SimpleNamespace(num_key_value_groups=H // 2, head_dim=D, training=False)
    min_value = torch.finfo(torch.float32).min
    additive = torch.zeros(T, T).masked_fill(~_loop_mask(T, T, 4, 0), min_value)
    expected, _ = gemma2_eager(module, q, k, v, additive[None, None], scaling=0.2, softcap=3.0)
    got = attention(q, k, v, window=4, scale=0.2, softcap=3.0)
    torch.testing.assert_close(got.transpose(1, 2), expected)


def test_sinks_match_explicit_extra_column_and_gpt_oss():
    q, k, v = _qkv(seed=5)
    sinks = torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=torch.float64)
    scores = (q @ k.transpose(-1, -2) * D**-0.5).masked_fill(
        ~_loop_mask(T, T, None, 0), float("-inf")
    )
    weights = scores.exp() / (scores.exp().sum(-1, keepdim=True) + sinks.exp()[None, :, None, None])
    torch.testing.assert_close(attention(q, k, v, sinks=sinks), weights @ v)
    # the rows no longer sum to one: the sink took the rest
    torch.testing.assert_close(attention_probs(q, k, sinks=sinks).sum(-1), weights.sum(-1))
    assert (weights.sum(-1) < 1).all()
    module = SimpleNamespace(num_key_value_groups=1, training=False, sinks=sinks)
    additive = torch.zeros(T, T, dtype=torch.float64).masked_fill(
        ~_loop_mask(T, T, None, 0), -1e300
    )
    expected, _ = gpt_oss_eager(module, q, k, v, additive[None, None], scaling=D**-0.5)
    torch.testing.assert_close(attention(q, k, v, sinks=sinks).transpose(1, 2), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sinks_equal_gpt_oss_eager_bit_for_bit_with_gqa_and_window(dtype):
    # transformers' gpt-oss eager attention: additive mask, sink column, row max subtracted in
    # the scores' dtype, softmax; our kernel must agree exactly in float32 and bfloat16.
    q, k, v = _qkv(h_kv=2, dtype=dtype, seed=8)
    q = q * 3  # large scores, so that rounding x - max in bf16 matters (fails without it)
    sinks = torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=dtype)
    module = SimpleNamespace(num_key_value_groups=2, training=False, sinks=sinks)
    additive = torch.zeros(T, T, dtype=dtype).masked_fill(
        ~_loop_mask(T, T, 4, 0), torch.finfo(dtype).min
    )
    expected, _ = gpt_oss_eager(module, q, k, v, additive[None, None], scaling=D**-0.5)
    got = attention(q, k, v, window=4, sinks=sinks).transpose(1, 2)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_sink_at_minus_infinity_changes_nothing():
    q, k, v = _qkv(seed=6)
    sinks = torch.full((H,), float("-inf"), dtype=torch.float64)
    torch.testing.assert_close(attention(q, k, v, sinks=sinks), attention(q, k, v))


@pytest.mark.parametrize("window", [None, 4])
def test_decode_equals_last_rows_of_full_attention(window):
    q, k, v = _qkv(h_kv=2, t_q=T, t_k=T, seed=7)
    full = attention(q, k, v, window=window)
    for n_new in (1, 3):
        last = attention(q[:, :, -n_new:], k, v, window=window)  # default q_offset = T - n_new
        torch.testing.assert_close(last, full[:, :, -n_new:])
        explicit = attention(q[:, :, -n_new:], k, v, window=window, q_offset=T - n_new)
        torch.testing.assert_close(explicit, last)
    # a query at an explicit earlier position sees only the keys up to it
    torch.testing.assert_close(attention(q[:, :, 2:3], k, v, q_offset=2), full[:, :, 2:3])


def test_padding_mask_matches_sdpa():
    q, k, v = _qkv(seed=8)
    keep = torch.ones(B, 1, 1, T, dtype=torch.bool)
    keep[0, ..., :3] = False  # left padding in the first sequence
    mask = keep & _loop_mask(T, T, None, 0)
    rows = slice(3, None)  # padded query rows see nothing; compare the real ones
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    got = attention(q, k, v, attn_mask=keep)
    torch.testing.assert_close(got[1], expected[1])
    torch.testing.assert_close(got[0, :, rows], expected[0, :, rows])


def test_low_precision_keeps_dtype_and_follows_float64():
    q, k, v = _qkv(h_kv=2, seed=9)
    out = attention(*(x.to(torch.bfloat16) for x in (q, k, v)), window=5, softcap=10.0)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(
        out.double(), attention(q, k, v, window=5, softcap=10.0), rtol=0.03, atol=0.03
    )


def test_final_logit_softcap():
    logits = torch.linspace(-500, 500, 101, dtype=torch.float64)
    capped = final_logit_softcap(logits, 30.0)
    torch.testing.assert_close(capped, 30.0 * torch.tanh(logits / 30.0))
    assert capped.abs().max() < 30.0
    small = torch.tensor([0.01, -0.02], dtype=torch.float64)
    torch.testing.assert_close(final_logit_softcap(small, 30.0), small, rtol=1e-6, atol=0)


def test_shape_errors_name_the_expected_shape():
    q, k, v = _qkv(h_kv=3, h=4)
    with pytest.raises(ValueError, match="multiple"):
        attention(q, k, v)
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="expected"):
        attention(q, k[..., :4], v)
    with pytest.raises(ValueError, match="causal"):
        attention(q, k, v, causal=False, window=2)


@pytest.mark.parametrize("kernel", ["attention", "flash_attention"])
def test_causal_queries_without_a_visible_key_are_refused(kernel):
    # T_q > T_k with causal: the first queries would precede every key; once a uniform row
    q, k, v = torch.randn(1, 2, 6, 8), torch.randn(1, 2, 4, 8), torch.randn(1, 2, 4, 8)
    fn = {"attention": attention, "flash_attention": flash_attention}[kernel]
    with pytest.raises(ValueError, match="no visible key"):
        fn(q, k, v, causal=True)
    with pytest.raises(ValueError, match="no visible key"):
        attention(q[:, :, :2], k, v, window=2, q_offset=6)  # window ends left of every key
    fn(q, k, v, causal=False)  # cross-attention has no positions: allowed
