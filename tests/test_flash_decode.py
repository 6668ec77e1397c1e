"""Decode attention over a padded KV cache against the reference, one sequence at a time."""

import math

import pytest
import torch

from course_lib.kernels import decode_attention, flash_attention_torch
from course_lib.kernels.attention import attention


def make_cache(B, H, H_kv, S, D, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, 1, D, generator=g).to(dtype)
    k = torch.randn(B, H_kv, S, D, generator=g).to(dtype)
    v = torch.randn(B, H_kv, S, D, generator=g).to(dtype)
    return q, k, v


def per_sequence_reference(q, k, v, lengths, window=None):
    """Each sequence alone, unpadded, through the float64 reference attention."""
    outs = [
        attention(
            q[b : b + 1].double(),
            k[b : b + 1, :, :n].double(),
            v[b : b + 1, :, :n].double(),
            window=window,
        )
        for b, n in enumerate(lengths)
    ]
    return torch.cat(outs)


@pytest.mark.parametrize(
    "H, H_kv, window, block_k", [(4, 4, None, 8), (8, 2, None, 16), (6, 1, None, 5), (4, 2, 6, 8)]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_matches_reference_with_ragged_lengths(H, H_kv, window, block_k, dtype):
    lengths = [1, 17, 40, 23]
    q, k, v = make_cache(4, H, H_kv, 40, 16, dtype)
    expected = per_sequence_reference(q, k, v, lengths, window)
    for b, n in enumerate(lengths):  # stale cache slots: must never be read into the result
        k[b, :, n:], v[b, :, n:] = math.nan, math.nan
    out, lse = decode_attention(
        q, k, v, torch.tensor(lengths), window=window, block_k=block_k, return_lse=True
    )
    assert out.shape == (4, H, 1, 16) and out.dtype == dtype and lse.shape == (4, H, 1)
    tol = dict(atol=2e-6, rtol=2e-5) if dtype == torch.float32 else dict(atol=4e-3, rtol=1.6e-2)
    torch.testing.assert_close(out.double(), expected, **tol)
    assert torch.isfinite(lse).all()


def test_decode_equals_last_row_of_full_attention():
    """A KV-cache decode step equals the last query of a full causal forward."""
    g = torch.Generator().manual_seed(1)
    q_all = torch.randn(2, 4, 25, 16, generator=g)
    k, v = torch.randn(2, 2, 25, 16, generator=g), torch.randn(2, 2, 25, 16, generator=g)
    full, full_lse = flash_attention_torch(q_all, k, v, block_q=8, block_k=8, return_lse=True)
    out, lse = decode_attention(q_all[:, :, -1:], k, v, [25, 25], block_k=8, return_lse=True)
    torch.testing.assert_close(out, full[:, :, -1:], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(lse, full_lse[:, :, -1:], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "q_shape, lengths, message",
    [((2, 4, 3, 16), [5, 5], "one query"), ((2, 4, 1, 16), [0, 5], "lengths"), ((2, 4, 1, 16), [5, 41], "lengths"),
     ((2, 3, 1, 16), [5, 5], "multiple of n_kv_heads")],
)  # fmt: skip
def test_errors(q_shape, lengths, message):
    k = torch.zeros(2, 2, 40, 16)
    with pytest.raises(ValueError, match=message):
        decode_attention(torch.zeros(q_shape), k, k, lengths)


def test_float64_is_computed_in_float64():
    q, k, v = make_cache(3, 4, 2, 20, 8, torch.float64, seed=5)
    lengths = [20, 7, 13]
    out = decode_attention(q, k, v, lengths, block_k=8)
    assert out.dtype == torch.float64
    expected = per_sequence_reference(q, k, v, lengths)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)
