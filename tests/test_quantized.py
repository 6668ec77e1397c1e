"""Quantized decoding (course_lib.models.quantized): PyTorch's packed int8/int4 CPU kernels
checked against plain dequantized matmuls, then whole models against kernels.quant's float32
simulation, and the real SmolLM2's perplexity per format."""

from __future__ import annotations

import copy
import math
import pydoc_data.topics

import numpy as np
import pytest
import torch
from gguf.quants import GGMLQuantizationType
from gguf.quants import dequantize as gguf_dequantize
from gguf.quants import quantize as gguf_quantize

from course_lib.evaluation.perplexity import perplexity
from course_lib.kernels.quant import quantize, quantized_matmul
from course_lib.models import ModelConfig, Transformer, from_gguf, generate, smollm2
from course_lib.models.quantized import (
    Int4Linear,
    Int8Linear,
    decode_step_profile,
    decode_step_times,
    decode_weight_bytes,
    dequantized_model,
    quantize_for_decode,
)

Q4_1 = GGMLQuantizationType.Q4_1


def test_int4pack_kernel_layout() -> None:
    """_weight_int4pack_mm_for_cpu computes x W^T with W = (u - 8) * scale + zero, scale and
    zero per (group of `g` inputs, output row), stored as sz (in / g, out, 2)."""
    torch.manual_seed(0)
    n_out, n_in, g = 96, 256, 64
    u = torch.randint(0, 16, (n_out, n_in), dtype=torch.int32)
    scale, zero = torch.rand(n_in // g, n_out) + 0.1, torch.randn(n_in // g, n_out)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(u, 1)
    x = torch.randn(3, n_in)
    y = torch.ops.aten._weight_int4pack_mm_for_cpu(x, packed, g, torch.stack((scale, zero), -1))
    w = (u.float() - 8) * scale.T.repeat_interleave(g, 1) + zero.T.repeat_interleave(g, 1)
    torch.testing.assert_close(y, x @ w.T, rtol=1e-5, atol=1e-4)


def test_int8pack_kernel_layout() -> None:
    """torch._weight_int8pack_mm(x, q, s) = x (q * s[:, None])^T, one scale per output row."""
    torch.manual_seed(0)
    q = torch.randint(-127, 128, (80, 64), dtype=torch.int8)
    s, x = torch.rand(80) + 0.01, torch.randn(5, 64)
    torch.testing.assert_close(
        torch._weight_int8pack_mm(x, q, s), x @ (q.float() * s[:, None]).T, rtol=1e-5, atol=1e-4
    )


@pytest.mark.parametrize("scheme", ["int8", "int4"])
def test_packed_linear_equals_quant_reference(scheme: str) -> None:
    """In float32 the packed layer computes kernels.quant's dequantized matmul (same codes)."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(192, 80, bias=False)
    layer = (
        Int8Linear(linear, dtype=torch.float32)
        if scheme == "int8"
        else Int4Linear(linear, group_size=64, symmetric=True, dtype=torch.float32)
    )
    x = torch.randn(2, 3, 192)
    expected = quantized_matmul(x, quantize(linear.weight, scheme, group_size=64))
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-4)


def test_int4_min_max_groups_hold_q4_1_weights() -> None:
    """Weights on llama.cpp's Q4_1 grid (gguf's own quantizer) come back from the min-max int4
    kernel unchanged, up to float32 rounding of the recovered scale and zero point."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 128)).astype(np.float32)
    w = torch.from_numpy(gguf_dequantize(gguf_quantize(x, Q4_1), Q4_1).copy())
    linear = torch.nn.Linear(128, 32, bias=False)
    linear.weight.data = w
    layer = Int4Linear(linear, group_size=32, dtype=torch.float32)
    torch.testing.assert_close(layer.dequantized_weight(), w, rtol=1e-6, atol=1e-6)
    inputs = torch.randn(4, 128)
    torch.testing.assert_close(layer(inputs), inputs @ w.T, rtol=1e-5, atol=1e-5)


def tiny_llama() -> Transformer:
    cfg = ModelConfig(
        vocab_size=256, d_model=128, n_layers=3, n_heads=4, n_kv_heads=2, d_ff=256, max_seq_len=64
    )
    torch.manual_seed(0)
    return Transformer(cfg, device="cpu").eval()


@pytest.mark.parametrize("scheme", ["int8", "int4"])
def test_quantized_model_logits_match_float32_simulation(scheme: str, one_thread) -> None:
    """Against the float32 model its codes stand for (`dequantized_model`), the kernels
    differ only by their bf16 inputs and scales (the rest runs in float32): the logits agree
    within the error that casting the float model to bf16 makes (stated tolerance), decoding
    with the cache included."""
    model = tiny_llama()
    bf16 = copy.deepcopy(model)
    quantize_for_decode(bf16, "bf16")
    report = quantize_for_decode(model, scheme)
    reference = dequantized_model(model)
    assert set(report.values()) == {scheme} and "lm_head" in report
    assert isinstance(
        model.layers[0].mlp.gate_up_proj, Int8Linear if scheme == "int8" else Int4Linear
    )
    ids = torch.randint(0, 256, (2, 12))
    with torch.no_grad():
        expected = reference(ids)
        tol = (bf16(ids).float() - tiny_llama()(ids)).abs().max().item()
    with torch.no_grad():
        torch.testing.assert_close(model(ids).float(), expected, rtol=0, atol=tol)
        cache = model.new_cache(2, 12)  # decoding token by token, as generate does
        steps = [model(ids[:, :4], cache)] + [model(ids[:, t : t + 1], cache) for t in range(4, 12)]
    torch.testing.assert_close(torch.cat(steps, 1).float(), expected, rtol=0, atol=tol)
    _, first = generate(model, ids[:, :4], 1, return_logits=True)
    torch.testing.assert_close(first[:, 0], expected[:, 3], rtol=0, atol=tol)


def test_llama3_recipe_keeps_first_last_and_attention() -> None:
    model = tiny_llama()
    report = quantize_for_decode(model, "int4", keep_first_last=True, keep_attention=True)
    assert report["layers.0.mlp.up_proj"] == report["layers.2.mlp.down_proj"] == "fp32"
    assert report["layers.1.attn.q_proj"] == "fp32" and report["layers.1.mlp.up_proj"] == "int4"
    assert report["layers.1.attn.v_proj"] == "fp32" and report["layers.1.mlp.gate_proj"] == "int4"
    assert isinstance(model.layers[1].attn.qkv_proj, torch.nn.Linear)  # q, k, v fused
    assert model.layers[1].attn.qkv_proj.weight.dtype == torch.float32
    assert isinstance(model.layers[1].mlp.gate_up_proj, Int4Linear)


def test_decode_weight_bytes_per_format() -> None:
    """fp32 -> bf16 halves the bytes; int8 and int4 approach 1/4 and 1/8 of fp32 (+ scales)."""
    sizes = {}
    for fmt in ("fp32", "bf16", "int8", "int4"):
        model = tiny_llama()
        quantize_for_decode(model, fmt)
        sizes[fmt] = decode_weight_bytes(model)
    cfg = tiny_llama().cfg
    linear = sum(m.weight.numel() for m in tiny_llama().modules() if type(m) is torch.nn.Linear)
    assert sizes["fp32"] == 4 * (linear + cfg.d_model * (2 * cfg.n_layers + 2))  # + norms, 1 row
    assert sizes["bf16"] * 2 == sizes["fp32"]
    assert sizes["int8"] < 0.3 * sizes["fp32"] and sizes["int4"] < 0.17 * sizes["fp32"]
    with pytest.raises(ValueError, match="fmt must be one of"):
        quantize_for_decode(tiny_llama(), "int3")


def test_smollm2_perplexity_per_format(one_thread) -> None:
    """Held-out English (Python's language reference): bf16 and int8 cost < 3% perplexity, int4
    (min-max groups of 32, output layer included) < 10%; all far below a uniform guess."""
    model, tokenizer = from_gguf(smollm2(), device="cpu")
    text = pydoc_data.topics.topics["assignment"][:1200]
    ids = torch.tensor(tokenizer.encode(text)[:160])
    ppl = {}
    for fmt in ("fp32", "bf16", "int8", "int4"):
        m = copy.deepcopy(model)
        quantize_for_decode(m, fmt)
        ppl[fmt] = perplexity(m, ids, window=160)
    assert ppl["fp32"] < math.sqrt(model.cfg.vocab_size), ppl
    assert ppl["bf16"] < 1.03 * ppl["fp32"] and ppl["int8"] < 1.03 * ppl["fp32"], ppl
    assert ppl["int4"] < 1.10 * ppl["fp32"], ppl


@pytest.mark.parametrize("fmt", ["fp32", "bf16", "int8", "int4"])
def test_decode_step_profile_counts_every_weight_layer(fmt: str, one_thread) -> None:
    """The profile times every weight-reading layer once per step (the fused q/k/v, o, the
    fused gate/up and down per block, and the output layer), counts the ATen calls of a step,
    and splits the step."""
    model = tiny_llama()
    quantize_for_decode(model, fmt)
    prompt = torch.randint(0, 256, (1, 5))
    times = decode_step_times(model, prompt, 3)
    assert len(times) == 3 and min(times) > 0
    p = decode_step_profile(model, prompt, steps=3)
    assert p["weight layer calls"] == 4 * model.cfg.n_layers + 1
    assert p["operator calls"] > 3 * p["weight layer calls"]  # norms, RoPE, attention, casts...
    assert sum(p["operators"].values()) == p["operator calls"]
    kernel = {"fp32": "linear", "bf16": "linear", "int8": "_weight_int8pack_mm"}
    name = kernel.get(fmt, "_weight_int4pack_mm_for_cpu")
    assert p["operators"][name] == p["weight layer calls"]  # one kernel call per weight layer
    assert p["weight layers"] > 0 and p["step"] > 0
    assert p["everything else"] == pytest.approx(max(p["step"] - p["weight layers"], 0.0))
