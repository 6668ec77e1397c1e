"""course_lib.kernels.norms against PyTorch's LayerNorm, float64 formulas and HF's RMSNorms."""

import pytest
import torch
from transformers.models.gemma2.modeling_gemma2 import Gemma2RMSNorm
from transformers.models.gemma3.modeling_gemma3 import Gemma3RMSNorm
from transformers.models.llama.modeling_llama import LlamaRMSNorm
from transformers.models.llama4.modeling_llama4 import Llama4TextL2Norm
from transformers.models.olmo2.modeling_olmo2 import Olmo2RMSNorm
from transformers.models.qwen3.modeling_qwen3 import Qwen3RMSNorm

from course_lib.kernels import LayerNorm, QKNorm, RMSNorm, layer_norm, qk_norm, rms_norm


def _rand(*shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).mul(3).add(0.5).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_layer_norm_matches_torch(dtype):
    x, w, b = (
        _rand(2, 5, 16, dtype=dtype),
        _rand(16, dtype=dtype, seed=1),
        _rand(16, dtype=dtype, seed=2),
    )
    expected = torch.nn.functional.layer_norm(x, (16,), w, b, eps=1e-5)
    torch.testing.assert_close(layer_norm(x, w, b, 1e-5), expected)
    torch.testing.assert_close(
        layer_norm(x, eps=1e-5), torch.nn.functional.layer_norm(x, (16,), eps=1e-5)
    )


def test_layer_norm_module_loads_torch_state_dict():
    ref = torch.nn.LayerNorm(16, eps=1e-5)
    with torch.no_grad():
        ref.weight.copy_(_rand(16, dtype=torch.float32))
        ref.bias.copy_(_rand(16, dtype=torch.float32, seed=3))
    mine = LayerNorm(16, eps=1e-5)
    mine.load_state_dict(ref.state_dict())
    x = _rand(3, 16, dtype=torch.float32, seed=4)
    torch.testing.assert_close(mine(x), ref(x))


def test_rms_norm_matches_float64_formula():
    x, w = _rand(2, 7, 32), _rand(32, seed=1)
    eps = 1e-6
    expected = x / torch.sqrt((x * x).sum(-1, keepdim=True) / 32 + eps) * w
    torch.testing.assert_close(rms_norm(x, w, eps), expected, rtol=1e-12, atol=1e-12)
    # Gemma's zero-centred gain (1 + w) is the plain gain 1 + w
    torch.testing.assert_close(rms_norm(x, w, eps, offset=1.0), rms_norm(x, 1 + w, eps))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_matches_hf_variants(dtype):
    """Same weights, same input: Llama, Gemma 2 and OLMo 2 each cast at a different point."""
    x = _rand(2, 6, 32, dtype=dtype)
    w = _rand(32, dtype=dtype, seed=5)
    cases = [
        (LlamaRMSNorm(32, eps=1e-6), RMSNorm(32, eps=1e-6)),
        (Gemma2RMSNorm(32, eps=1e-6), RMSNorm(32, eps=1e-6, zero_centered=True)),
        (Olmo2RMSNorm(32, eps=1e-6), RMSNorm(32, eps=1e-6, scale_in_fp32=True)),
    ]
    for hf, mine in cases:
        hf.to(dtype)
        mine.to(dtype)
        with torch.no_grad():
            hf.weight.copy_(w)
            mine.weight.copy_(w)
            expected, got = hf(x), mine(x)
        assert got.dtype == expected.dtype == dtype
        torch.testing.assert_close(got, expected, rtol=0, atol=0, msg=f"{type(hf).__name__}")


def test_rms_norm_cast_order_matters_in_bf16():
    """The three cast orders are not interchangeable in bf16 (so the test above has teeth)."""
    x, w = _rand(4, 64, dtype=torch.bfloat16), _rand(64, dtype=torch.bfloat16, seed=6)
    assert not torch.equal(rms_norm(x, w), rms_norm(x, w, scale_in_fp32=True))


def test_qk_norm_full_projection_matches_olmo2():
    n_heads, head_dim = 4, 8
    x = _rand(2, 5, n_heads * head_dim, dtype=torch.float32)
    hf = Olmo2RMSNorm(n_heads * head_dim, eps=1e-6)
    mine = QKNorm(n_heads, head_dim, eps=1e-6, scale_in_fp32=True)
    with torch.no_grad():
        hf.weight.copy_(_rand(n_heads * head_dim, dtype=torch.float32, seed=7))
        mine.load_state_dict(hf.state_dict())
        torch.testing.assert_close(mine(x), hf(x), rtol=0, atol=0)


def test_qk_norm_per_head_equals_a_loop_over_heads():
    n_heads, head_dim = 3, 8
    x, w = _rand(2, 5, n_heads * head_dim), _rand(head_dim, seed=8)
    got = qk_norm(x, w, n_heads, 1e-6, per_head=True)
    for h in range(n_heads):
        part = x[..., h * head_dim : (h + 1) * head_dim]
        expected = part / torch.sqrt(part.pow(2).mean(-1, keepdim=True) + 1e-6) * w
        torch.testing.assert_close(got[..., h * head_dim : (h + 1) * head_dim], expected)
    # per-head and full-projection norms differ: each head is brought to unit RMS separately
    assert not torch.allclose(got, qk_norm(x, w.repeat(n_heads), n_heads, 1e-6))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_qk_norm_per_head_equals_qwen3(dtype):
    # Qwen3Attention: q_norm(q_proj(x).view(..., n_heads, head_dim)) with a (head_dim,) gain.
    n_heads, head_dim = 4, 8
    x = _rand(2, 5, n_heads * head_dim, dtype=dtype)
    hf = Qwen3RMSNorm(head_dim, eps=1e-6).to(dtype)
    with torch.no_grad():
        hf.weight.copy_(_rand(head_dim, seed=9, dtype=dtype))
    mine = QKNorm(n_heads, head_dim, 1e-6, per_head=True).to(dtype)
    mine.load_state_dict(hf.state_dict())
    with torch.no_grad():
        expected = hf(x.view(2, 5, n_heads, head_dim)).flatten(-2)
        torch.testing.assert_close(mine(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gain_free_rms_norm_equals_llama4_l2_qk_norm(dtype):
    # Llama 4's use_qk_norm: Llama4TextL2Norm on each (..., head_dim) head, no weight at all.
    x = _rand(2, 5, 4, 8, dtype=dtype)
    hf = Llama4TextL2Norm(eps=1e-5)
    assert not list(hf.parameters())
    torch.testing.assert_close(rms_norm(x, None, 1e-5), hf(x), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_qk_norm_per_head_zero_centred_equals_gemma3(dtype):
    # Gemma3Attention: q_norm on the (..., n_heads, head_dim) view, gain (1 + w) in float32.
    n_heads, head_dim = 4, 8
    x = _rand(2, 5, n_heads * head_dim, dtype=dtype)
    hf = Gemma3RMSNorm(head_dim, eps=1e-6).to(dtype)
    with torch.no_grad():
        hf.weight.copy_(0.1 * _rand(head_dim, seed=9, dtype=dtype))
    kw = dict(per_head=True, zero_centered=True, scale_in_fp32=True)
    mine = QKNorm(n_heads, head_dim, 1e-6, **kw).to(dtype)
    mine.load_state_dict(hf.state_dict())
    with torch.no_grad():
        expected = hf(x.view(2, 5, n_heads, head_dim)).flatten(-2)
        torch.testing.assert_close(mine(x), expected, rtol=0, atol=0)
        # the unit offset matters: a plain gain w differs
        assert not torch.allclose(qk_norm(x, mine.weight, n_heads, 1e-6, per_head=True), expected)


def test_norms_keep_dtype_and_device():
    x = _rand(3, 16, dtype=torch.bfloat16)
    assert rms_norm(x, torch.ones(16, dtype=torch.bfloat16)).dtype == torch.bfloat16
    assert layer_norm(x).dtype == torch.bfloat16
    assert RMSNorm(16, zero_centered=True).weight.abs().sum() == 0  # Gemma: (1 + 0) at init
