"""Every published number chapters 6 and 7 show, recomputed from the presets and course_lib.

Each test names the source of the published figure; the tolerance is the rounding of that
figure (or stated otherwise).
"""

from __future__ import annotations

import pytest

from course_lib.hardware import GB, get_accelerator, mfu, published, training_memory, weight_bytes
from course_lib.models import PRESETS, count_parameters, flops_per_token, kv_cache_bytes
from course_lib.models import parameter_breakdown as breakdown
from course_lib.models.catalog import get_entry, gopher_family_sizes
from course_lib.scaling import chinchilla_optimal, published_runs, training_flops

# ---------------------------------------------------------------------------- chapter 6


def test_gpt3_175b_from_hyper_parameters():
    """Brown et al. 2020, Table 2.1: 175.0B for 96 layers, d_model 12288, 96 heads."""
    cfg = PRESETS["gpt3-175b"]
    assert count_parameters(cfg) == pytest.approx(175.0e9, rel=0.005)
    # The 12 L d^2 approximation: attention 4 d^2 + MLP 8 d^2 per layer.
    assert 12 * cfg.n_layers * cfg.d_model**2 == pytest.approx(count_parameters(cfg), rel=0.01)


def test_glam_sparsity_and_energy():
    """Du et al. 2022 (GLaM): 1.2T total, 96.6B activated (8%); 456 MWh, 'one third' of
    GPT-3's 1287 MWh (Patterson et al. 2021, Table 4); 96.6B is about half of GPT-3."""
    glam, gpt3 = get_entry("GLaM"), get_entry("GPT-3")
    assert glam.active_params / glam.params == pytest.approx(0.08, abs=0.001)
    assert glam.energy_mwh / gpt3.energy_mwh == pytest.approx(1 / 3, abs=0.03)
    assert glam.active_params / count_parameters(PRESETS["gpt3-175b"]) == pytest.approx(
        0.55, abs=0.01
    )


def test_mt_nlg_530b_and_its_parallel_memory():
    """Smith et al. 2022: 530B parameters; 8-way tensor x 35-way pipeline on 2240 A100 80GB.
    Model state with mixed-precision Adam is 16 bytes per parameter (ZeRO, Sec. 3.1)."""
    n = count_parameters(PRESETS["mt-nlg-530b"])
    assert n == pytest.approx(530e9, rel=0.005)
    state = training_memory(n, "full")["total"]
    assert state == pytest.approx(16 * n)
    per_gpu = state / (8 * 35)
    a100 = get_accelerator("a100-80gb")
    assert state > 100 * a100.memory_bytes  # does not fit on fewer than 100 GPUs
    assert per_gpu < a100.memory_bytes / 2  # one 280-GPU replica leaves room for activations
    assert 2240 // (8 * 35) == 8


@pytest.mark.parametrize("name", list(gopher_family_sizes()))
def test_gopher_family_sizes(name):
    """Rae et al. 2021, Table 1. The named sizes match the count without the 32,000 x d_model
    embedding table within 2% (the 1.4B model is the farthest: 1.37B)."""
    cfg = PRESETS[name]
    non_embedding = count_parameters(cfg) - breakdown(cfg)["embedding"]
    assert non_embedding == pytest.approx(gopher_family_sizes()[name], rel=0.02)


def test_chinchilla_70b_on_1_4t_tokens_from_gophers_budget():
    """Hoffmann et al. 2022: at Gopher's 5.76e23 FLOPs, 70B on 1.4T tokens (Table 3 gives
    67B / 1.5T for this budget from their fit; 20 tokens per parameter gives 69B / 1.39T)."""
    budget = published_runs()["Gopher 280B"].flops
    n, d = chinchilla_optimal(budget)
    assert n == pytest.approx(70e9, rel=0.02)
    assert d == pytest.approx(1.4e12, rel=0.02)
    assert count_parameters(PRESETS["chinchilla-70b"]) == pytest.approx(70e9, rel=0.01)
    assert training_flops(70e9, 1.4e12) == pytest.approx(budget, rel=0.03)


def test_palm_540b_and_46_2_percent_mfu():
    """Chowdhery et al. 2022: 540.35B parameters (Sec. 2); 238.3K tokens/s on 6144 TPU v4 at
    275 TFLOP/s give 46.2% MFU with attention (App. B), 3.28 TFLOPs per token (Table 22)."""
    palm = PRESETS["palm-540b"]
    assert count_parameters(palm) == pytest.approx(540.35e9, rel=1e-4)
    run = published("palm-540b-mfu")
    per_token = flops_per_token(palm, seq_len=2048)
    assert per_token / 1e12 == pytest.approx(3.28, abs=0.005)
    value = mfu(run["tokens_per_second"], per_token, 6144, get_accelerator("tpu-v4").peak_flops())
    assert value == pytest.approx(0.462, abs=0.001)


def test_mt_nlg_mfu_29_7_percent():
    """Chowdhery et al. 2022, App. B: MT-NLG at 65.43K tokens/s on 2240 A100: 29.7%."""
    run = published("mt-nlg-530b-mfu")
    peak = get_accelerator("a100-40gb").peak_flops("bf16")
    value = mfu(run["tokens_per_second"], 6 * run["n_params"], run["n_chips"], peak)
    assert value == pytest.approx(0.297, abs=0.001)


def test_mt_nlg_mfu_30_2_percent_with_attention():
    """Chowdhery et al. 2022, Table 3 prints 30.2% for MT-NLG: App. B's 29.7% plus the
    12 L H Q T attention FLOPs (105 layers, 128 heads of 160, T = 2048)."""
    run = published("mt-nlg-530b-mfu")
    peak = get_accelerator("a100-40gb").peak_flops("bf16")
    per_token = flops_per_token(PRESETS["mt-nlg-530b"], seq_len=2048)
    value = mfu(run["tokens_per_second"], per_token, run["n_chips"], peak)
    assert round(100 * value, 1) == 30.2


# ---------------------------------------------------------------------------- chapter 7


def test_mistral_rolling_buffer_saves_8x_at_32k():
    """Jiang et al. 2023 (Mistral 7B), Section 2: a 4096-token window 'reduces the cache
    memory usage by 8x' on a 32k-token sequence. The full cache counted independently."""
    mistral = PRESETS["mistral-7b"]
    full = 2 * 32 * 8 * 128 * 32768 * 2  # K and V, layers, kv heads, head_dim, tokens, bf16
    assert (
        kv_cache_bytes(mistral.replace(sliding_window=None, layer_pattern=("global",)), 32768)
        == full
    )
    assert full / kv_cache_bytes(mistral, 32768) == 8.0


def test_gemma2_local_layers_save_a_quarter_at_8k():
    """Gemma Team 2024 (Gemma 2): local layers with a 4096 window alternate with global
    layers; at the 8192 context half the layers hold half the tokens: 25% saved."""
    gemma = PRESETS["gemma2-27b"]
    local_global = kv_cache_bytes(gemma, 8192)
    all_global = kv_cache_bytes(gemma.replace(layer_pattern=("global",)), 8192)
    assert 1 - local_global / all_global == pytest.approx(0.25)


def test_mixtral_46_7b_total_12_9b_active():
    """Mistral AI 2023 release post: 46.7B total, 12.9B used per token."""
    mixtral = PRESETS["mixtral-8x7b"]
    assert count_parameters(mixtral) == pytest.approx(46.7e9, rel=0.002)
    assert count_parameters(mixtral, active=True) == pytest.approx(12.9e9, rel=0.002)


def test_llama3_405b_is_dense_with_128k_vocab_and_context():
    """Llama Team 2024, Table 3 and Section 1: 405B dense, 128K vocabulary, 128K context,
    15.6T tokens; GQA with 8 key/value heads."""
    cfg = PRESETS["llama3-405b"]
    assert count_parameters(cfg) == pytest.approx(405e9, rel=0.005)
    assert not cfg.is_moe and count_parameters(cfg, active=True) == count_parameters(cfg)
    assert cfg.vocab_size == 128256 and cfg.max_seq_len == 131072 and cfg.n_kv_heads == 8
    assert get_entry("Llama 3.1 405B").tokens == 15.6e12


@pytest.mark.parametrize(
    "name,key", [("8B", "llama3.1-8b"), ("70B", "llama3.1-70b"), ("405B", "llama3-405b")]
)
def test_llama31_inference_memory_table(name, key):
    """Hugging Face's Llama 3.1 post prints the weights' memory in GB for nominal sizes,
    rounded to whole GB; the exact preset counts are within 1% of it."""
    table = published("llama31-inference-memory-gb")[name]
    n = count_parameters(PRESETS[key])
    for dtype, per_param in (("fp16", 2), ("fp8", 1), ("int4", 0.5)):
        assert weight_bytes(n, dtype) == n * per_param
        assert weight_bytes(n, dtype) / GB == pytest.approx(table[dtype], rel=0.01)


def test_fine_tuning_memory_assumptions():
    """Chapter 7's fine-tuning table: 16 bytes per trained parameter (ZeRO, Sec. 3.1), LoRA
    rank r adds r (d_in + d_out) per adapted matrix (Hu et al. 2021), QLoRA stores the base in
    4.127 bits (Dettmers et al. 2023, Sec. 3)."""
    n, adapters = 8e9, 40e6
    assert training_memory(n, "full")["total"] == 16 * n
    assert training_memory(n, "lora", adapters)["total"] == 2 * n + 16 * adapters
    assert training_memory(n, "qlora", adapters)["total"] == pytest.approx(
        n * 4.127 / 8 + 16 * adapters
    )


@pytest.mark.parametrize(
    "name,key", [("8B", "llama3.1-8b"), ("70B", "llama3.1-70b"), ("405B", "llama3-405b")]
)
def test_published_fine_tuning_table_implies_half_of_16_bytes(name, key):
    """Hugging Face's Llama 3.1 post (60/16/6 GB for 8B) states no assumptions; its full
    fine-tuning figures are 7-8 bytes per parameter (bf16 weights, gradients and Adam moments,
    no fp32 master copy), half of the 16 that chapter 7 assumes; LoRA sits above the bf16
    base and QLoRA above our count of a 4-bit base plus adapters."""
    table = published("llama31-finetuning-memory-gb")[name]
    n = count_parameters(PRESETS[key])
    assert 7 <= table["full"] * GB / n <= 8.1
    assert table["full"] * GB < training_memory(n, "full")["total"]
    assert table["lora"] * GB >= 0.99 * weight_bytes(n, "fp16")
    assert table["qlora"] * GB > training_memory(n, "qlora")["total"]


def test_tokens_per_parameter_of_llama3_8b_and_phi3():
    """Llama 3 8B: over 15T tokens (Meta 2024); Phi-3-mini: 3.3T tokens for 3.8B parameters
    (Abdin et al. 2024): both far beyond Chinchilla's ~20 tokens per parameter."""
    assert published_runs()["Llama 3 8B"].tokens_per_param == pytest.approx(1875)
    assert get_entry("Phi-3-mini").tokens_per_param == pytest.approx(3.3e12 / 3.8e9)
