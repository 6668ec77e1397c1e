"""Every differentiable kernel of course_lib passes torch.autograd.gradcheck in float64.

gradcheck compares the analytical gradient (autograd, or FlashAttention's own backward)
with central finite differences of the forward. The list, one test each:

| kernel                                   | inputs checked              |
|------------------------------------------|-----------------------------|
| attention (causal, window, GQA, softcap, sinks, T_q < T_k) | q, k, v, sinks |
| flash_attention_torch (FlashAttention-2 backward)         | q, k, v, and the lse output |
| flash_attention (dispatcher, torch backend on the CPU)    | q, k, v        |
| decode_attention (ragged lengths, window)                 | q, k_cache, v_cache |
| rms_norm (Llama, Gemma's 1 + w, OLMo's fp32 gain), layer_norm, qk_norm | x, weight, bias |
| apply_rope (half, interleaved, partial, upcast)           | x              |
| activations gelu_new, gelu_tanh, gelu, silu, relu; final_logit_softcap | x   |
| MLP, GatedMLP                                             | x              |
| SparseMoE (Mixtral), DeepSeekMoE (shared + routed)        | x              |
| MultiHeadLatentAttention (naive and absorbed, with a cache) | x            |

The Triton forward shares flash_attention's backward; its gradients are compared with the
PyTorch path in tests/test_triton_kernels.py (Triton has no float64).
"""

import pytest
import torch
from torch.autograd import gradcheck as _gradcheck

from course_lib.kernels import (
    MLP,
    DeepSeekMoE,
    GatedMLP,
    MultiHeadLatentAttention,
    SparseMoE,
    apply_rope,
    attention,
    decode_attention,
    final_logit_softcap,
    flash_attention,
    flash_attention_torch,
    gelu,
    gelu_new,
    gelu_tanh,
    layer_norm,
    qk_norm,
    relu,
    rms_norm,
    rope_cos_sin,
    rope_frequencies,
    silu,
)

F64 = torch.float64


def gradcheck(fn, inputs):
    """gradcheck in fast mode: the Jacobian along random directions, not in full."""
    return _gradcheck(fn, inputs, fast_mode=True)


def rand(*shape, seed=0, requires_grad=True):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=F64).requires_grad_(requires_grad)


def qkv(B, H, H_kv, T_q, T_k, D, D_v=None):
    return rand(B, H, T_q, D), rand(B, H_kv, T_k, D, seed=1), rand(B, H_kv, T_k, D_v or D, seed=2)


ATTENTION_CASES = {  # name: (B, H, H_kv, T_q, T_k, D, kwargs)
    "causal": (1, 2, 2, 5, 5, 4, {}),
    "gqa_window": (1, 4, 2, 6, 6, 4, {"window": 3}),
    "chunked_prefill": (2, 2, 1, 3, 7, 4, {}),
    "bidirectional_cross": (1, 2, 2, 6, 4, 4, {"causal": False}),
    "softcap_scale": (1, 2, 1, 5, 5, 4, {"softcap": 2.0, "scale": 0.7}),
}


@pytest.mark.parametrize("case", ATTENTION_CASES.values(), ids=ATTENTION_CASES)
def test_attention(case):
    *shape, kw = case
    assert gradcheck(lambda q, k, v: attention(q, k, v, **kw), qkv(*shape))


def test_attention_sinks():
    q, k, v = qkv(1, 2, 1, 4, 4, 4)
    sinks = rand(2, seed=3)
    assert gradcheck(lambda q, k, v, s: attention(q, k, v, sinks=s), (q, k, v, sinks))


FLASH_CASES = {  # name: (B, H, H_kv, T_q, T_k, D, D_v, causal, window)
    "causal": (1, 2, 2, 7, 7, 4, 4, True, None),
    "gqa_window": (1, 4, 2, 7, 7, 4, 3, True, 3),
    "chunked_prefill": (2, 2, 1, 4, 9, 4, 4, True, None),
    "bidirectional_cross": (1, 2, 1, 7, 5, 4, 4, False, None),
}


@pytest.mark.parametrize("case", FLASH_CASES.values(), ids=FLASH_CASES)
def test_flash_attention_torch(case):
    B, H, H_kv, T_q, T_k, D, D_v, causal, window = case

    def f(q, k, v):  # blocks of 2 and 3: several tiles, ragged edges, skipped tiles
        return flash_attention_torch(q, k, v, causal, window, block_q=2, block_k=3)

    assert gradcheck(f, qkv(B, H, H_kv, T_q, T_k, D, D_v))


def test_flash_attention_lse_output():
    def f(q, k, v):
        out, lse = flash_attention_torch(q, k, v, block_q=2, block_k=2, return_lse=True)
        return out, lse

    assert gradcheck(f, qkv(1, 2, 1, 5, 5, 4))


def test_flash_attention_dispatcher():
    assert gradcheck(lambda q, k, v: flash_attention(q, k, v, window=2), qkv(1, 2, 2, 5, 5, 4))


def test_decode_attention():
    q, k, v = qkv(3, 4, 2, 1, 6, 4)
    lengths = torch.tensor([6, 2, 4])
    assert gradcheck(lambda q, k, v: decode_attention(q, k, v, lengths, block_k=4), (q, k, v))
    assert gradcheck(lambda q, k, v: decode_attention(q, k, v, lengths, window=3), (q, k, v))


@pytest.mark.parametrize(
    "kw", [{}, {"offset": 1.0, "scale_in_fp32": True}, {"scale_in_fp32": True}]
)
def test_rms_norm(kw):
    x, w = rand(3, 6), rand(6, seed=1)
    assert gradcheck(lambda x, w: rms_norm(x, w, **kw), (x, w))


def test_layer_norm_and_qk_norm():
    x, w, b = rand(3, 8), rand(8, seed=1), rand(8, seed=2)
    assert gradcheck(layer_norm, (x, w, b))
    assert gradcheck(lambda x, w: qk_norm(x, w, 2), (x, w))
    assert gradcheck(lambda x, w: qk_norm(x, w, 2, per_head=True), (x, rand(4, seed=3)))


@pytest.mark.parametrize(
    "rot, kw", [(8, {}), (8, {"layout": "interleaved"}), (4, {}), (8, {"upcast": True})]
)
def test_apply_rope(rot, kw):
    cos, sin = rope_cos_sin(torch.arange(5), rope_frequencies(rot, dtype=F64))
    assert gradcheck(lambda x: apply_rope(x, cos, sin, **kw), (rand(1, 2, 5, 8),))


@pytest.mark.parametrize("fn", [gelu_new, gelu_tanh, gelu, silu, relu])
def test_activations(fn):
    x = rand(20)
    if fn is relu:  # not differentiable at 0: keep away from it
        x = (x + 0.1 * x.sign()).detach().requires_grad_()
    assert gradcheck(fn, (x,))


def test_final_logit_softcap():
    assert gradcheck(lambda x: final_logit_softcap(x, 3.0), (rand(10) * 4,))


@pytest.mark.parametrize("module", [MLP(6, 10), GatedMLP(6, 10, "gelu_pytorch_tanh")])
def test_mlps(module):
    assert gradcheck(module.to(F64), (rand(2, 3, 6),))


def test_moe():
    torch.manual_seed(0)
    sparse = SparseMoE(6, 8, n_experts=4, k=2).to(F64)
    deepseek = DeepSeekMoE(6, 8, 8, 2, n_shared_experts=1, n_group=2, topk_group=1).to(F64)
    for moe in (sparse, deepseek):  # routing is piecewise constant: gradcheck sees no tie here
        assert gradcheck(moe, (rand(2, 3, 6),))


@pytest.mark.parametrize("absorbed", [False, True])
def test_multi_head_latent_attention(absorbed):
    torch.manual_seed(0)
    mla = MultiHeadLatentAttention(
        8, 2, kv_lora_rank=4, qk_nope_head_dim=4, qk_rope_head_dim=2, v_head_dim=3, q_lora_rank=5
    ).to(F64)
    cos, sin = rope_cos_sin(torch.arange(3, 5), rope_frequencies(2, dtype=F64))
    cache = (rand(1, 3, 4, seed=5), rand(1, 3, 2, seed=6))

    def f(x, c_kv, k_rope):
        return mla(x, cos, sin, cache=(c_kv, k_rope), absorbed=absorbed)[0]

    assert gradcheck(f, (rand(1, 2, 8), *cache))
