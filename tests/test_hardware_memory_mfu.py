"""Memory tables, MFU/MBU and training time: formulas vs explicit arithmetic and papers."""

from types import SimpleNamespace

import pytest

from course_lib.hardware import (
    GB,
    activation_bytes,
    decode_bytes_per_step,
    expected_experts_touched,
    get_accelerator,
    inference_memory_table,
    lora_parameters,
    mbu,
    mfu,
    palm_flops_per_token,
    published,
    training_cost,
    training_memory,
    training_seconds,
    weight_bytes,
)


def test_lecture_inference_memory_table():
    """Weights of Llama 3.1 8B/70B/405B in FP16/FP8/INT4 (decimal GB, nominal sizes)."""
    table = inference_memory_table({"8B": 8e9, "70B": 70e9, "405B": 405e9})
    cited = published("llama31-inference-memory-gb")
    for size in ("8B", "70B", "405B"):
        for dtype in ("fp16", "fp8", "int4"):
            assert abs(table[size][dtype] - cited[size][dtype]) <= 0.5, (
                size,
                dtype,
            )  # printed rounded
    assert table["405B"]["int4"] == pytest.approx(405e9 * 0.5 / 1e9)  # 202.5, printed as 203


def test_weight_bytes():
    assert weight_bytes(7e9, "fp32") == 28e9
    assert weight_bytes(7e9, "bf16") == 14e9
    assert weight_bytes(7e9, "int8") == 7e9
    assert weight_bytes(7e9, "int4") == 3.5e9


def test_full_finetune_is_16_bytes_per_param_plus_activations():
    acts = 5 * GB
    mem = training_memory(8e9, "full", activations=acts)
    # bf16 weights 2 + bf16 grads 2 + fp32 master 4 + Adam m and v 4 + 4 (ZeRO, Sec. 3.1)
    assert mem["total"] == pytest.approx(8e9 * (2 + 2 + 4 + 4 + 4) + acts)
    assert mem["activations"] == acts


def test_lora_and_qlora():
    # Llama-3-8B-shaped adapters on q and v: 32 layers, q 4096 -> 4096, v 4096 -> 1024, rank 16.
    r = lora_parameters([(4096, 4096), (4096, 1024)] * 32, rank=16)
    assert r == 32 * (16 * (4096 + 4096) + 16 * (4096 + 1024))
    lora = training_memory(8e9, "lora", trainable_params=r)
    assert lora["total"] == pytest.approx(8e9 * 2 + r * 16)
    qlora = training_memory(8e9, "qlora", trainable_params=r)
    assert qlora["frozen_weights"] == pytest.approx(8e9 * 4.127 / 8)  # NF4 + double quantization
    assert qlora["total"] < lora["total"] < training_memory(8e9)["total"]
    with pytest.raises(ValueError, match="method"):
        training_memory(1e9, "adapters")


def test_activation_memory_korthikanti():
    s, b, h, L, a = 2048, 1, 4096, 32, 32
    assert activation_bytes(s, b, h, L, a, flash=False) == pytest.approx(
        L * s * b * h * (34 + 5 * a * s / h)
    )
    assert activation_bytes(s, b, h, L, a, flash=True) == pytest.approx(L * s * b * h * 34)


def test_palm_mfu_reproduced():
    """PaLM App. B: 46.2% MFU with self-attention, 45.7% without; 3.28 TFLOPs/token (Table 22)."""
    p = published("palm-540b-mfu")
    peak = get_accelerator("tpu-v4").peak_flops("bf16")
    per_token = palm_flops_per_token(
        p["n_params"], p["n_layers"], p["n_heads"], p["head_dim"], p["seq_len"]
    )
    assert per_token == 6 * 540.35e9 + 12 * 118 * 48 * 256 * 2048
    assert per_token / 1e12 == pytest.approx(p["tflops_per_token"], abs=0.005)
    with_attention = mfu(p["tokens_per_second"], per_token, p["n_chips"], peak)
    assert abs(with_attention - p["mfu_with_attention"]) < 0.001  # within 0.1 percentage point
    without = mfu(
        p["tokens_per_second"], palm_flops_per_token(p["n_params_nominal"]), p["n_chips"], peak
    )
    assert abs(without - p["mfu_without_attention"]) < 0.001


def test_mt_nlg_mfu_reproduced():
    p = published("mt-nlg-530b-mfu")
    value = mfu(
        p["tokens_per_second"],
        6 * p["n_params"],
        p["n_chips"],
        get_accelerator("a100-80gb").peak_flops("bf16"),
    )
    assert abs(value - p["mfu_without_attention"]) < 0.001


def test_llama_65b_training_time():
    """LLaMA Sec. 2.4: 380 tokens/s/GPU on 2048 A100s, 1.4T tokens -> about 21 days."""
    p = published("llama-65b-training")
    a100 = get_accelerator("a100-80gb")
    per_token = 6 * p["n_params"]
    achieved = mfu(
        p["tokens_per_second_per_chip"] * p["n_chips"],
        per_token,
        p["n_chips"],
        a100.peak_flops("bf16"),
    )
    assert 0.4 < achieved < 0.55
    seconds = training_seconds(
        p["n_tokens"], per_token, p["n_chips"], a100.peak_flops("bf16"), achieved
    )
    assert seconds == pytest.approx(
        p["n_tokens"] / (p["tokens_per_second_per_chip"] * p["n_chips"])
    )
    assert abs(seconds / 86400 - p["days"]) < 0.5


def test_training_time_and_cost():
    # Chinchilla-style budget: 70B params, 1.4T tokens, 6ND FLOPs on 1024 H100 at 40% MFU.
    peak = get_accelerator("h100-sxm").peak_flops("bf16")
    seconds = training_seconds(1.4e12, 6 * 70e9, 1024, peak, 0.4)
    assert seconds == pytest.approx(6 * 70e9 * 1.4e12 / (1024 * peak * 0.4))
    assert training_cost(seconds, 1024, 2.5) == pytest.approx(seconds / 3600 * 1024 * 2.5)


def test_mbu_of_decoding():
    h100 = get_accelerator("h100-sxm")
    cfg = SimpleNamespace(n_params=8e9, n_layers=32, n_heads=32, n_kv_heads=8, head_dim=128)
    step = decode_bytes_per_step(cfg, batch=4, context_len=1000)
    assert step == pytest.approx(8e9 * 2 + 4 * 1000 * 2 * 32 * 8 * 128 * 2)
    # 4 sequences at 30 tokens/s each: 30 steps/s.
    assert mbu(step, 30, 1, h100.bandwidth) == pytest.approx(step * 30 / 3.35e12)


@pytest.mark.parametrize(("n_experts", "k"), [(8, 2), (256, 8)])
@pytest.mark.parametrize("batch", [1, 3, 16])
def test_expected_experts_touched_matches_simulated_routing(n_experts, k, batch):
    import torch

    g = torch.Generator().manual_seed(0)
    picks = torch.rand(4000, batch, n_experts, generator=g).topk(k, dim=-1).indices
    simulated = sum(len(set(p.flatten().tolist())) for p in picks) / len(picks)
    assert expected_experts_touched(batch, n_experts, k) == pytest.approx(simulated, rel=0.02)
    assert expected_experts_touched(1, n_experts, k) == pytest.approx(k)


def test_expected_experts_touched_rejects_bad_k():
    with pytest.raises(ValueError, match="k <= n_experts"):
        expected_experts_touched(4, 8, 9)
