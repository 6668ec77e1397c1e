"""The tiled PyTorch FlashAttention against the reference attention and torch SDPA.

Expected values: `course_lib.kernels.attention.attention` run in float64 (an independent,
untiled softmax(q k^T) v), and torch.nn.functional.scaled_dot_product_attention.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from course_lib.kernels import flash_attention, flash_attention_torch, which_backend
from course_lib.kernels.attention import attention, causal_mask

TOL = {torch.float32: dict(atol=2e-6, rtol=2e-5), torch.bfloat16: dict(atol=4e-3, rtol=1.6e-2)}


def make_qkv(B, H, H_kv, T_q, T_k, D, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, T_q, D, generator=g).to(dtype)
    k = torch.randn(B, H_kv, T_k, D, generator=g).to(dtype)
    v = torch.randn(B, H_kv, T_k, D, generator=g).to(dtype)
    return q, k, v


def reference(q, k, v, causal=True, window=None, scale=None):
    """The untiled reference in float64: (out, log-sum-exp of the scaled masked scores)."""
    q64, k64, v64 = q.double(), k.double(), v.double()
    out = attention(q64, k64, v64, causal=causal, window=window, scale=scale)
    G = q.shape[1] // k.shape[1]
    s = q64 @ k64.repeat_interleave(G, 1).transpose(-1, -2) * (scale or q.shape[-1] ** -0.5)
    if causal:
        s = s.masked_fill(~causal_mask(q.shape[2], k.shape[2], window), -math.inf)
    return out, torch.logsumexp(s, dim=-1)


CASES = [  # B, H, H_kv, T_q, T_k, D, causal, window, block_q, block_k
    (2, 4, 4, 37, 37, 16, True, None, 16, 16),  # odd length, ragged last tiles
    (1, 4, 2, 50, 50, 8, True, None, 16, 32),  # GQA, block_q != block_k
    (2, 3, 1, 29, 29, 16, True, None, 8, 8),  # MQA
    (1, 4, 2, 45, 45, 16, True, 7, 16, 16),  # sliding window
    (1, 2, 2, 33, 33, 24, False, None, 16, 8),  # bidirectional, head dim not a power of two
    (2, 4, 2, 13, 40, 16, True, None, 8, 16),  # queries are the last 13 of 40 tokens
    (1, 4, 1, 19, 61, 16, True, 9, 8, 8),  # chunked prefill with a window
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("case", CASES)
def test_matches_reference(case, dtype):
    B, H, H_kv, T_q, T_k, D, causal, window, bq, bk = case
    q, k, v = make_qkv(B, H, H_kv, T_q, T_k, D, dtype)
    out, lse = flash_attention_torch(
        q, k, v, causal, window, block_q=bq, block_k=bk, return_lse=True
    )
    ref_out, ref_lse = reference(q, k, v, causal, window)
    assert out.shape == (B, H, T_q, D) and out.dtype == dtype
    torch.testing.assert_close(out.double(), ref_out, **TOL[dtype])
    torch.testing.assert_close(lse.double(), ref_lse, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("window", [None, 5])
def test_matches_torch_sdpa(dtype, window):
    q, k, v = make_qkv(2, 8, 2, 41, 41, 16, dtype, seed=1)
    mask = causal_mask(41, 41, window)  # True = attend
    expected = F.scaled_dot_product_attention(
        q.float(), k.float(), v.float(), attn_mask=mask, enable_gqa=True
    )
    out = flash_attention(q, k, v, causal=True, window=window, block_q=16, block_k=16)
    torch.testing.assert_close(out.float(), expected, **TOL[dtype])


def test_custom_scale():
    q, k, v = make_qkv(1, 2, 2, 21, 21, 16, seed=2)
    out = flash_attention_torch(q, k, v, scale=0.3, block_q=8, block_k=8)
    torch.testing.assert_close(out.double(), reference(q, k, v, scale=0.3)[0], **TOL[torch.float32])


def test_invariants():
    """A window >= T is plain causal attention; GQA with n_kv == n_heads is MHA."""
    q, k, v = make_qkv(1, 4, 4, 30, 30, 16, seed=3)
    causal = flash_attention_torch(q, k, v, block_q=8, block_k=8)
    wide = flash_attention_torch(q, k, v, window=30, block_q=8, block_k=8)
    torch.testing.assert_close(wide, causal, atol=0, rtol=0)
    kv1 = k[:, :1].expand(-1, 4, -1, -1), v[:, :1].expand(-1, 4, -1, -1)
    mqa = flash_attention_torch(q, k[:, :1], v[:, :1], block_q=8, block_k=8)
    mha = flash_attention_torch(q, *kv1, block_q=8, block_k=8)
    torch.testing.assert_close(mqa, mha, atol=1e-6, rtol=1e-6)


def test_tiles_outside_the_band_are_never_read():
    """NaN in key tiles that no query can see must not reach the output (tile skipping)."""
    q, k, v = make_qkv(1, 2, 1, 16, 64, 8, seed=4)  # queries at positions 48 ... 63
    expected = reference(q, k, v, window=8)[0]
    k[:, :, :32], v[:, :, :32] = math.nan, math.nan  # keys 0-31: two whole tiles of 16
    out = flash_attention_torch(q, k, v, window=8, block_q=8, block_k=16)
    torch.testing.assert_close(out.double(), expected, **TOL[torch.float32])


class LargestTensor(TorchFunctionMode):
    """Records the largest tensor any torch function returns inside the block."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if isinstance(result, torch.Tensor):
            self.largest = max(self.largest, result.numel())
        return result


def test_never_materialises_the_score_matrix():
    B, H, T, D = 1, 2, 256, 8
    q, k, v = make_qkv(B, H, H, T, T, D, seed=5)
    with LargestTensor() as spy:
        flash_attention_torch(q, k, v, block_q=32, block_k=32)
    assert spy.largest <= max(B * H * T * D, B * H * 32 * 32)  # the output, or one tile per head
    assert spy.largest < B * H * T * T // 16
    with LargestTensor() as naive_spy:
        reference(q, k, v)
    assert naive_spy.largest >= B * H * T * T  # the spy does see a full score matrix


def test_dispatch_on_cpu_is_torch_and_visible():
    q, k, v = make_qkv(1, 2, 2, 9, 9, 8, seed=6)
    out = flash_attention(q, k, v)
    assert which_backend() == "torch"
    torch.testing.assert_close(out, flash_attention_torch(q, k, v), atol=0, rtol=0)


@pytest.mark.parametrize(
    "shapes, kwargs, message",
    [
        (((1, 3, 4, 8), (1, 2, 4, 8), (1, 2, 4, 8)), {}, "multiple of n_kv_heads"),
        (((1, 2, 4, 8), (1, 2, 4, 4), (1, 2, 4, 4)), {}, "head dim"),
        (((1, 2, 5, 8), (1, 2, 4, 8), (1, 2, 4, 8)), {}, "T_q=5"),
        (((1, 2, 4, 8), (1, 2, 4, 8), (1, 2, 4, 8)), {"causal": False, "window": 2}, "causal"),
        (((2, 4, 8), (1, 2, 4, 8), (1, 2, 4, 8)), {}, r"\(B, H, T_q, D\)"),
    ],
)
def test_shape_errors_name_the_expected_shape(shapes, kwargs, message):
    q, k, v = (torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=message):
        flash_attention(q, k, v, **kwargs)


@pytest.mark.parametrize("window", [None, 5])
def test_float64_matches_sdpa_to_float64_precision(window):
    # tiles accumulate in float64 for float64 inputs (float32 tiles erred by ~1e-6)
    q, k, v = make_qkv(2, 4, 2, 23, 23, 16, torch.float64, seed=7)
    expected = F.scaled_dot_product_attention(
        q, k, v, attn_mask=causal_mask(23, 23, window), enable_gqa=True
    )
    out, lse = flash_attention(q, k, v, window=window, block_q=8, block_k=8, return_lse=True)
    assert out.dtype == lse.dtype == torch.float64
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(lse, reference(q, k, v, window=window)[1], atol=1e-12, rtol=1e-12)


def test_non_causal_cross_attention_may_have_more_queries_than_keys():
    q, k, v = make_qkv(1, 2, 1, 9, 4, 8, seed=8)
    out = flash_attention_torch(q, k, v, causal=False, block_q=4, block_k=2)
    torch.testing.assert_close(
        out.double(), reference(q, k, v, causal=False)[0], **TOL[torch.float32]
    )


def test_gradients_flow_to_q_k_v_and_match_the_reference():
    q, k, v = (t.requires_grad_() for t in make_qkv(1, 4, 2, 19, 19, 8, seed=9))
    grad_out = torch.randn(1, 4, 19, 8, generator=torch.Generator().manual_seed(10))
    flash_attention(q, k, v, window=6, block_q=8, block_k=4).backward(grad_out)
    flash_grads = [t.grad for t in (q, k, v)]
    refs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    attention(*refs, window=6).backward(grad_out.double())
    for ours, ref in zip(flash_grads, refs, strict=True):
        torch.testing.assert_close(ours.double(), ref.grad, atol=1e-5, rtol=1e-5)


def test_dispatch_checks_the_value_head_dim_too(monkeypatch):
    import course_lib.kernels.flash as flash

    seen = []

    def spy(backend, device, dtype=None, head_dim=None):
        seen.append(head_dim)
        return "torch"

    monkeypatch.setattr(flash, "resolve_backend", spy)
    q, k, _ = make_qkv(1, 2, 2, 5, 5, 8, seed=11)
    flash_attention(q, k, torch.zeros(1, 2, 5, 300))
    assert seen == [300]  # the on-chip limit applies to the widest of D and D_v
