"""Numbers that chapters 10 and 11 print, computed by course_lib and checked against their sources."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from course_lib.hardware import (
    get_accelerator,
    inference_memory_table,
    mfu,
    palm_flops_per_token,
    published,
    step_roofline,
)
from course_lib.models import PRESETS, count_parameters, kv_cache_bytes, parameter_breakdown

BOOK = Path(__file__).resolve().parents[1] / "book"


def test_llama31_weight_memory_table_matches_the_release() -> None:
    # Hugging Face's Llama 3.1 release post, "Inference Memory Requirements" (weights only, GB)
    pub = published("llama31-inference-memory-gb")
    computed = inference_memory_table({"8B": 8e9, "70B": 70e9, "405B": 405e9})
    for model, row in computed.items():
        for dtype, gb in row.items():
            assert abs(gb - pub[model][dtype]) <= 0.5, (model, dtype)  # the post rounds 202.5 up


def test_llama3_8b_kv_cache_per_token() -> None:
    # Llama 3 paper (Dubey et al. 2024), Table 3: 32 layers, 8 KV heads, d_model 4096 / 32 heads
    per_token = 2 * 32 * 8 * (4096 // 32) * 2  # K and V, bf16
    assert kv_cache_bytes(PRESETS["llama3-8b"], 1) == per_token == 131_072
    assert kv_cache_bytes(PRESETS["llama3-8b"], 131_072) == per_token * 131_072
    # 128k tokens is Llama 3.1's context (Llama 3 8B: 8k); the cache per token is the same.
    assert (
        PRESETS["llama3-8b"].max_seq_len == 8192 and PRESETS["llama3.1-8b"].max_seq_len == 131_072
    )
    assert kv_cache_bytes(PRESETS["llama3.1-8b"], 1) == per_token


def test_llama3_70b_share_kept_in_16_bits() -> None:
    # Chapter 10: Llama 3's FP8 keeps attention and the first and last layers in 16 bits
    # (Dubey et al. 2024, Sec. 6.2). From the config: attention 80 x (2 d^2 + 2 d * 8 * 128).
    cfg = PRESETS["llama3-70b"]
    d, layers = 8192, 80
    attention = layers * (2 * d * d + 2 * d * 8 * 128)
    assert parameter_breakdown(cfg)["attention"] == attention
    total = count_parameters(cfg)
    assert round(attention / 1e9, 1) == 12.1 and round(total / 1e9, 1) == 70.6
    kept = attention + 2 * 3 * d * 28672 + 2 * 128256 * d + parameter_breakdown(cfg)["norms"]
    assert 0.21 < kept / total < 0.23


def test_h100_ridge_point() -> None:
    # NVIDIA H100 SXM datasheet: 1979 TFLOP/s bf16 with sparsity (989.5 dense), 3.35 TB/s
    assert math.isclose(
        get_accelerator("h100-sxm").ridge_point("bf16"), 989.5 / 3.35, rel_tol=1e-12
    )


def test_batch1_decode_does_about_one_flop_per_byte() -> None:
    # Pope et al. 2022: a decode step multiplies each 2-byte weight once (2 FLOPs), so I ~ 1;
    # the KV cache read adds bytes and attention FLOPs at the same low ratio.
    point = step_roofline(PRESETS["llama3-8b"], 1, 2048, "decode", get_accelerator("h100-sxm"))
    assert 1.0 <= point.intensity < 1.2 and point.bound == "memory"
    prefill = step_roofline(PRESETS["llama3-8b"], 1, 2048, "prefill", get_accelerator("h100-sxm"))
    assert prefill.bound == "compute"


def test_mixtral_total_and_active_parameters() -> None:
    # Jiang et al. 2024 (Mixtral of Experts): 46.7B parameters, 12.9B active per token
    cfg = PRESETS["mixtral-8x7b"]
    assert round(count_parameters(cfg) / 1e9, 1) == 46.7
    assert round(count_parameters(cfg, active=True) / 1e9, 1) == 12.9


def test_palm_mfu_from_its_throughput() -> None:
    # Chowdhery et al. 2022, App. B: 238.3K tokens/s on 6144 TPU v4 chips -> 46.2% MFU
    p = published("palm-540b-mfu")
    flops = palm_flops_per_token(
        p["n_params"], p["n_layers"], p["n_heads"], p["head_dim"], p["seq_len"]
    )
    value = mfu(p["tokens_per_second"], flops, p["n_chips"], p["peak_tflops_per_chip"] * 1e12)
    assert round(value, 3) == 0.462


@pytest.mark.parametrize("chapter", ["10_inference_hardware.md", "11_decoding_capstone.md"])
def test_every_glued_name_in_the_prose_is_defined(chapter: str) -> None:
    text = (BOOK / chapter).read_text()
    used = set(re.findall(r"\{glue:text\}`([A-Za-z0-9_]+)", text))
    defined = set(re.findall(r'glue\(\s*f?"([A-Za-z0-9_{}]+)"', text))
    patterns = [re.compile("^" + re.sub(r"\{[^}]*\}", "[A-Za-z0-9]+", d) + "$") for d in defined]
    missing = {name for name in used if not any(p.match(name) for p in patterns)}
    assert used and not missing, missing
