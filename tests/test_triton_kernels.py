"""The Triton kernels under the CPU interpreter (conftest sets TRITON_INTERPRET=1 first).

Inputs sit inside NaN-filled guard buffers, so an unmasked load past any edge poisons the
result, and outputs are written into NaN-filled buffers whose guard must stay NaN, so an
unmasked store is caught too. fp32 and fp16 only: bf16 is broken in the interpreter.
Expected values: float64 formulas and the course_lib reference attention.
"""

import math

import pytest
import torch

from course_lib.kernels.attention import attention
from course_lib.kernels.dispatch import attention_backend, resolve_backend, which_backend
from course_lib.kernels.flash import flash_attention
from course_lib.kernels.triton import flash_attention_triton, rms_norm_triton, softmax_triton

PAD = 5
TOL = {torch.float32: dict(atol=2e-6, rtol=2e-5), torch.float16: dict(atol=2e-3, rtol=2e-3)}


def guarded(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(buffer, view): x copied into the middle of a NaN buffer padded on its last two dims."""
    shape = (*x.shape[:-2], x.shape[-2] + 2 * PAD, x.shape[-1] + 2 * PAD)
    buffer = torch.full(shape, math.nan, dtype=x.dtype)
    view = buffer[..., PAD : PAD + x.shape[-2], PAD : PAD + x.shape[-1]]
    view.copy_(x)
    return buffer, view


def assert_guard_intact(buffer: torch.Tensor, rows: int, cols: int) -> None:
    inside = torch.zeros(buffer.shape[-2:], dtype=torch.bool)
    inside[PAD : PAD + rows, PAD : PAD + cols] = True
    assert torch.isnan(buffer[..., ~inside]).all(), "a kernel wrote outside its output"


def randn(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


FLASH_CASES = [  # B, H, H_kv, T_q, T_k, D, causal, window
    (1, 2, 2, 37, 37, 16, True, None),  # ragged tiles
    (2, 4, 2, 21, 21, 24, True, None),  # GQA, head dim not a power of two
    (1, 3, 1, 30, 30, 16, True, 7),  # MQA, sliding window
    (1, 2, 1, 11, 35, 16, True, None),  # queries are the last 11 of 35 tokens
    (1, 2, 2, 19, 19, 16, False, None),  # bidirectional
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("case", FLASH_CASES)
def test_flash_attention_triton(case, dtype):
    B, H, H_kv, T_q, T_k, D, causal, window = case
    q, k, v = (
        randn(B, H, T_q, D, dtype=dtype),
        randn(B, H_kv, T_k, D, dtype=dtype, seed=1),
        randn(B, H_kv, T_k, D, dtype=dtype, seed=2),
    )
    expected = attention(q.double(), k.double(), v.double(), causal=causal, window=window)
    (_, qg), (_, kg), (_, vg) = guarded(q), guarded(k), guarded(v)
    out_buffer, out = guarded(torch.empty(B, H, T_q, D, dtype=dtype))
    out, lse = flash_attention_triton(
        qg, kg, vg, causal, window, block_q=16, block_k=16, return_lse=True, out=out
    )
    torch.testing.assert_close(out.double(), expected, **TOL[dtype])
    assert_guard_intact(out_buffer, T_q, D)
    assert lse.shape == (B, H, T_q) and torch.isfinite(lse).all()


def test_flash_triton_lse_matches_logsumexp():
    q, k, v = randn(1, 2, 23, 16), randn(1, 2, 23, 16, seed=1), randn(1, 2, 23, 16, seed=2)
    _, lse = flash_attention_triton(q, k, v, block_q=16, block_k=16, return_lse=True)
    s = (q.double() @ k.double().transpose(-1, -2)) / 4.0
    s = s.masked_fill(torch.ones(23, 23, dtype=torch.bool).triu(1), -math.inf)
    torch.testing.assert_close(lse.double(), torch.logsumexp(s, -1), atol=1e-5, rtol=1e-5)


def test_explicit_triton_backend_runs_the_triton_kernel():
    q, k, v = randn(1, 2, 9, 16), randn(1, 2, 9, 16, seed=1), randn(1, 2, 9, 16, seed=2)
    out = flash_attention(q, k, v, backend="triton", block_q=16, block_k=16)
    assert which_backend() == "triton"
    torch.testing.assert_close(
        out.double(), attention(q.double(), k.double(), v.double()), **TOL[torch.float32]
    )


def test_dispatch_rules(monkeypatch):
    assert attention_backend("cuda") == "triton"  # a decision only: no GPU is touched
    assert attention_backend("cpu") == "torch"
    assert attention_backend("mps") == "torch"
    assert attention_backend("cuda", torch.float64) == "torch"  # not a Triton dtype here
    assert attention_backend("cuda", torch.float16, head_dim=512) == "torch"
    assert resolve_backend("auto", "cpu") == "torch"
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("cuda", "cpu")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        resolve_backend("triton", "cpu")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("rows, n", [(7, 33), (4, 64), (1, 5)])
def test_rms_norm_triton(rows, n, dtype):
    x, w = randn(rows, n, dtype=dtype), randn(n, dtype=dtype, seed=1)
    x64 = x.double()
    expected = x64 / torch.sqrt(x64.pow(2).mean(-1, keepdim=True) + 1e-6) * w.double()
    _, xg = guarded(x)
    out_buffer, out = guarded(torch.empty(rows, n, dtype=dtype))
    rms_norm_triton(xg, w, eps=1e-6, out=out)
    torch.testing.assert_close(out.double(), expected, **TOL[dtype])
    assert_guard_intact(out_buffer, rows, n)
    torch.testing.assert_close(
        rms_norm_triton(x, w), torch.nn.functional.rms_norm(x, (n,), w, 1e-6), **TOL[dtype]
    )


def test_rms_norm_triton_keeps_leading_dims():
    x, w = randn(2, 3, 10), randn(10, seed=1)
    y = rms_norm_triton(x, w)
    assert y.shape == (2, 3, 10)
    torch.testing.assert_close(
        y, torch.nn.functional.rms_norm(x, (10,), w, 1e-6), **TOL[torch.float32]
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("rows, n", [(6, 37), (3, 128), (2, 1)])
def test_softmax_triton(rows, n, dtype):
    x = randn(rows, n, dtype=dtype) * 10
    x[0, 0] = 60.0  # exp(60) overflows float32 without the max subtraction
    expected = torch.softmax(x.double(), dim=-1)
    _, xg = guarded(x)
    out_buffer, out = guarded(torch.empty(rows, n, dtype=dtype))
    softmax_triton(xg, out=out)
    torch.testing.assert_close(out.double(), expected, **TOL[dtype])
    assert_guard_intact(out_buffer, rows, n)
    torch.testing.assert_close(
        out.double().sum(-1), torch.ones(rows, dtype=torch.float64), **TOL[dtype]
    )


@pytest.mark.parametrize("window", [None, 5])
def test_triton_gradients_equal_the_torch_backward(window):
    # the Triton forward once wrote into torch.empty with no autograd: q, k, v got no gradient
    q, k, v = (randn(1, 4, 21, 16, seed=s) for s in (0, 1, 2))
    k, v = k[:, :2], v[:, :2]  # GQA
    grad_out = randn(1, 4, 21, 16, seed=3)
    grads = {}
    for backend in ("triton", "torch"):
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        out = flash_attention(*leaves, window=window, backend=backend, block_q=16, block_k=16)
        out.backward(grad_out)
        grads[backend] = [t.grad for t in leaves]
    for ours, ref in zip(grads["triton"], grads["torch"], strict=True):
        assert ours is not None
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel", ["rms_norm", "softmax"])
def test_forward_only_kernels_refuse_to_drop_gradients(kernel):
    x = randn(3, 8).requires_grad_()
    with pytest.raises(RuntimeError, match="no backward"):
        if kernel == "rms_norm":
            rms_norm_triton(x, torch.ones(8))
        else:
            softmax_triton(x)
    with torch.no_grad():  # inference is fine
        softmax_triton(x)
