"""Accelerator catalog and roofline: every formula against an explicit count."""

from types import SimpleNamespace

import pytest

from course_lib.hardware import (
    ACCELERATORS,
    attainable_flops,
    attention_decode_intensity,
    attention_prefill_intensity,
    get_accelerator,
    kv_cache_bytes,
    matmul_intensity,
    model_shape,
    published,
    ridge_point,
    step_flops_and_bytes,
    step_roofline,
)

# A Llama-3-8B-shaped model given as plain numbers (Llama 3 paper, Table 3: 32 layers,
# 32 heads, 8 KV heads, width 4096 -> head dim 128).
LLAMA8B = SimpleNamespace(n_params=8e9, n_layers=32, n_heads=32, n_kv_heads=8, head_dim=128)
REQUIRED = {
    "v100",
    "a100-40gb",
    "a100-80gb",
    "h100-sxm",
    "h100-pcie",
    "h200",
    "mi300x",
    "tpu-v4",
    "tpu-v5e",
}


def test_catalog_is_complete_and_sourced():
    assert REQUIRED <= set(ACCELERATORS)
    for acc in ACCELERATORS.values():
        assert acc.source.startswith("https://"), acc.key
        assert acc.memory_bytes > 1e9 and acc.bandwidth > 1e11, acc.key
        assert all(v > 0 for v in acc.peak_tflops.values()), acc.key
        assert set(acc.peak_tflops) <= {"fp32", "tf32", "bf16", "fp16", "fp8", "int8"}, acc.key


def test_catalog_consistency():
    h100, h200 = get_accelerator("h100-sxm"), get_accelerator("h200")
    assert h200.peak_tflops == h100.peak_tflops  # H200 = H100 compute with more, faster HBM
    assert h200.bandwidth > h100.bandwidth and h200.memory_bytes > h100.memory_bytes
    a40, a80 = get_accelerator("a100-40gb"), get_accelerator("a100-80gb")
    assert a40.peak_tflops == a80.peak_tflops and a40.peak_flops("bf16") == 312e12
    # Dense = half the "with sparsity" figure NVIDIA prints (H100 SXM datasheet: 1,979 TFLOPS bf16*).
    assert h100.peak_flops("bf16") == pytest.approx(1979e12 / 2)
    assert h100.peak_flops("fp8") == pytest.approx(2 * h100.peak_flops("bf16"))
    # PaLM's MFU uses 275 TFLOP/s per TPU v4 chip; the Cloud TPU page says the same.
    assert (
        get_accelerator("tpu-v4").peak_flops("bf16")
        == published("palm-540b-mfu")["peak_tflops_per_chip"] * 1e12
    )
    assert get_accelerator("tpu-v4").memory_bytes == 32 * 2**30  # "32 GiB"


def test_lookup_errors_are_explicit():
    with pytest.raises(KeyError, match="h100-sxm"):
        get_accelerator("h100")
    with pytest.raises(KeyError, match="fp8"):
        get_accelerator("a100-80gb").peak_flops("fp8")  # Ampere has no fp8 tensor cores


@pytest.mark.parametrize(
    "m, n, k, b", [(4096, 4096, 4096, 2), (1, 4096, 4096, 2), (512, 14336, 4096, 1), (3, 5, 7, 4)]
)
def test_matmul_intensity(m, n, k, b):
    flops = 2 * m * n * k  # one multiply and one add per (i, j, l)
    moved = (m * k + k * n + m * n) * b  # read A and B, write C, once each
    assert matmul_intensity(m, n, k, b) == pytest.approx(flops / moved)


def test_matrix_vector_is_about_one_flop_per_byte_in_bf16():
    assert matmul_intensity(1, 8192, 8192, 2) == pytest.approx(1.0, rel=1e-3)


def test_ridge_and_attainable():
    h100 = get_accelerator("h100-sxm")
    peak, bw = h100.peak_flops("bf16"), h100.bandwidth
    ridge = ridge_point(peak, bw)
    assert ridge == pytest.approx(989.5e12 / 3.35e12) == h100.ridge_point("bf16")
    assert attainable_flops(ridge / 4, peak, bw) == pytest.approx(peak / 4)  # memory roof
    assert attainable_flops(ridge * 4, peak, bw) == peak  # compute roof
    assert attainable_flops(ridge, peak, bw) == pytest.approx(peak)


def test_attention_intensities():
    T, D, H, H_kv = 4096, 128, 32, 8
    pairs = T * (T + 1) // 2
    explicit = 4 * H * D * pairs / ((2 * H + 2 * H_kv) * T * D * 2)
    assert attention_prefill_intensity(T, D, H, H_kv, 2) == pytest.approx(explicit)
    full = 4 * H * D * T * T / ((2 * H + 2 * H_kv) * T * D * 2)
    assert attention_prefill_intensity(T, D, H, H_kv, 2, causal=False) == pytest.approx(full)
    S = 8192
    explicit_decode = 4 * H * D * S / ((2 * H_kv * S + 2 * H) * D * 2)
    assert attention_decode_intensity(S, D, H, H_kv, 2) == pytest.approx(explicit_decode)
    # Decode attention tends to 2 * group / bytes: ~1 FLOP/byte for MHA in bf16, ~4 for GQA-4.
    assert attention_decode_intensity(10**6, D, H, H, 2) == pytest.approx(1.0, rel=1e-3)
    assert attention_decode_intensity(10**6, D, H, H_kv, 2) == pytest.approx(4.0, rel=1e-3)


def test_step_counts_for_plain_numbers():
    B, T = 2, 1000
    kv_per_token = 2 * 32 * 8 * 128  # K and V, layers, kv heads, head dim
    flops, moved = step_flops_and_bytes(LLAMA8B, B, T, "prefill")
    assert flops == pytest.approx(2 * 8e9 * B * T + 4 * 32 * 32 * 128 * (T * (T + 1) / 2) * B)
    assert moved == pytest.approx(8e9 * 2 + B * T * kv_per_token * 2)
    flops, moved = step_flops_and_bytes(LLAMA8B, B, T, "decode", "fp8", "bf16")
    assert flops == pytest.approx(2 * 8e9 * B + 4 * 32 * 32 * 128 * T * B)
    assert moved == pytest.approx(8e9 * 1 + B * T * kv_per_token * 2)
    assert kv_cache_bytes(LLAMA8B, T, B) == B * T * kv_per_token * 2


def test_prefill_is_compute_bound_decode_is_memory_bound():
    h100 = get_accelerator("h100-sxm")
    prefill = step_roofline(LLAMA8B, 1, 2048, "prefill", h100)
    decode = step_roofline(LLAMA8B, 1, 2048, "decode", h100)
    assert prefill.bound == "compute" and decode.bound == "memory"
    assert decode.time_s == pytest.approx(decode.bytes / h100.bandwidth)  # memory time dominates
    assert prefill.time_s == pytest.approx(prefill.flops / h100.peak_flops("bf16"))
    # Batching raises decode intensity ~B FLOP/byte (bf16) until it passes the ~295 ridge.
    assert step_roofline(LLAMA8B, 512, 16, "decode", h100).bound == "compute"
    assert step_roofline(LLAMA8B, 64, 16, "decode", h100).bound == "memory"


def test_model_config_from_course_lib_models():
    from course_lib.models import PRESETS, matmul_parameters
    from course_lib.models import kv_cache_bytes as models_kv_cache_bytes

    cfg = PRESETS["llama3-8b"]
    shape = model_shape(cfg)
    assert shape.n_params == matmul_parameters(cfg)
    assert shape.kv_elements_per_token == 2 * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim
    assert kv_cache_bytes(cfg, 8192, 4) == models_kv_cache_bytes(cfg, 8192, 4, 2)
    assert step_roofline(cfg, 1, 4096, "decode", get_accelerator("a100-80gb")).bound == "memory"


def test_unknown_phase():
    with pytest.raises(ValueError, match="phase"):
        step_flops_and_bytes(LLAMA8B, 1, 10, "train")
