"""Published numbers shown in chapters 8 and 9, computed from configs and compared to the source."""

from __future__ import annotations

import pytest
import torch

from course_lib.grading import decoder_cases
from course_lib.kernels import (
    MultiHeadLatentAttention,
    latent_cache_bytes_per_token,
    rope_cos_sin,
    rope_frequencies,
)
from course_lib.models import PRESETS, count_parameters, kv_cache_bytes


@pytest.mark.parametrize(
    ("d", "multiple_of", "multiplier", "published"),
    [
        (4096, 256, None, 11008),  # Llama 2 7B intermediate_size (Touvron et al. 2023, config)
        (4096, 1024, 1.3, 14336),  # Llama 3 8B (Meta 2024, params.json)
        (8192, 4096, 1.3, 28672),  # Llama 2 70B / Llama 3 70B
        (16384, 4096, 1.2, 53248),  # Llama 3.1 405B (params.json: ffn_dim_multiplier 1.2)
    ],
)
def test_swiglu_hidden_size_rule(d, multiple_of, multiplier, published):
    assert decoder_cases.llama_ffn_hidden(d, multiple_of, multiplier) == published


def test_presets_use_the_rule():
    assert PRESETS["llama2-7b"].d_ff == decoder_cases.llama_ffn_hidden(4096, 256)
    assert PRESETS["llama3-8b"].d_ff == decoder_cases.llama_ffn_hidden(4096, 1024, 1.3)
    assert PRESETS["llama3-405b"].d_ff == decoder_cases.llama_ffn_hidden(16384, 4096, 1.2)


def test_gqa_kv_bytes_per_token_from_first_principles():
    cfg = PRESETS["llama2-7b"]  # MHA: 32 layers, 32 heads of 128
    assert kv_cache_bytes(cfg, 1) == 2 * 32 * 128 * 32 * 2  # K and V, fp16: 512 KiB
    gqa = cfg.replace(n_kv_heads=8)
    assert kv_cache_bytes(gqa, 1) * 4 == kv_cache_bytes(cfg, 1)
    assert kv_cache_bytes(cfg.replace(n_kv_heads=1), 1) * 32 == kv_cache_bytes(cfg, 1)


def test_gemma2_local_layers_cap_the_cache():
    cfg = PRESETS["gemma2-9b"]  # 42 layers, alternating local (window 4096) and global
    per_layer_token = 2 * cfg.n_kv_heads * cfg.head_dim * 2
    n = 32768
    expected = (21 * 4096 + 21 * n) * per_layer_token  # explicit sum over the 42 layers
    assert cfg.n_layers == 42 and cfg.sliding_window == 4096
    assert kv_cache_bytes(cfg, n) == expected


def test_mixtral_total_and_active_parameters():
    # Mixtral 8x7B: 46.7B total, 12.9B active per token (Mistral AI's announcement;
    # Jiang et al. 2024, section 2: "47B" and "13B").
    cfg = PRESETS["mixtral-8x7b"]
    assert round(count_parameters(cfg) / 1e9, 1) == 46.7
    assert round(count_parameters(cfg, active=True) / 1e9, 1) == 12.9


def test_deepseek_v3_total_and_active_parameters():
    # DeepSeek-V3: 671B total, 37B activated per token (DeepSeek-AI 2024, abstract), without
    # the 14B multi-token-prediction module. The paper rounds 37.5B down; allow 2 %.
    cfg = PRESETS["deepseek-v3"]
    assert count_parameters(cfg) / 1e9 == pytest.approx(671, rel=0.005)
    assert count_parameters(cfg, active=True) / 1e9 == pytest.approx(37, rel=0.02)


def test_mla_cache_is_4_5_head_dims():
    # DeepSeek-V2 Table 1: MLA caches (d_c + d_h^R) l = (4 d_h + d_h / 2) l with d_h = 128.
    cfg = PRESETS["deepseek-v3"]
    assert cfg.kv_lora_rank + cfg.qk_rope_head_dim == 576 == 4.5 * 128
    assert kv_cache_bytes(cfg, 1) == latent_cache_bytes_per_token(512, 64, cfg.n_layers)


def test_mla_caches_2_25_times_mqa():
    # DeepSeek-V2 Table 1: MLA's cache is "equivalent to GQA with only 2.25 groups", i.e.
    # 2.25 times MQA's 2 d_h l (chapter 9 once said 4.5 times).
    cfg = PRESETS["deepseek-v3"]
    mqa = cfg.replace(kv_lora_rank=0, qk_rope_head_dim=0, q_lora_rank=0, n_kv_heads=1, head_dim=128)
    assert kv_cache_bytes(mqa, 1) == 2 * 128 * 61 * 2
    assert kv_cache_bytes(cfg, 1) / kv_cache_bytes(mqa, 1) == 2.25


def test_deepseek_v2_kv_cache_reduction_vs_67b():
    # DeepSeek-V2 (section 1): "reduces the KV cache by 93.3%" vs DeepSeek 67B. 67B: 95 layers,
    # GQA with 8 KV heads of 128, 16-bit cache. V2: 60 layers, d_c + d_R = 512 + 64, cache
    # quantised to 6 bits per element on average (section 3.2.3).
    dense_67b = 2 * 8 * 128 * 95 * 2  # bytes per token
    v2 = latent_cache_bytes_per_token(512, 64, n_layers=60, bytes_per_element=1) * 6 / 8
    assert round(100 * (1 - v2 / dense_67b), 1) == 93.3


def test_mla_absorbed_decode_equals_naive():
    torch.manual_seed(0)
    mla = MultiHeadLatentAttention(
        32, 4, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8
    ).double()
    x = torch.randn(2, 7, 32, dtype=torch.float64)
    cos, sin = rope_cos_sin(torch.arange(7), rope_frequencies(4, dtype=torch.float64))
    naive, (c_kv, k_rope) = mla(x, cos, sin)
    absorbed, _ = mla(x, cos, sin, absorbed=True)
    torch.testing.assert_close(absorbed, naive)
    assert c_kv.shape == (2, 7, 16) and k_rope.shape == (2, 7, 4)
