"""Parameter counts, FLOPs and KV-cache bytes of the presets, against independent references.

Exact counts are checked against `transformers` models of the same configuration built on
the meta device (no memory); published totals against the papers and model cards cited in
course_lib/data/published_totals.json.
"""

import json
from importlib import resources

import pytest
import torch
import transformers

from course_lib.models import (
    PRESETS,
    ModelConfig,
    Transformer,
    attention_flops_per_token,
    config_from_hf,
    count_parameters,
    flops_per_token,
    kv_cache_bytes,
    matmul_parameters,
    parameter_breakdown,
    to_hf_config,
)

PUBLISHED = {
    k: v
    for k, v in json.loads(
        resources.files("course_lib.data").joinpath("published_totals.json").read_text()
    ).items()
    if not k.startswith("_")
}

REQUIRED = [
    "gpt2", "gpt3-175b", "llama2-7b", "llama2-70b", "llama3-8b", "llama3-70b", "llama3-405b",
    "mistral-7b", "mixtral-8x7b", "gemma2-9b", "gemma2-27b", "qwen2-7b", "olmo2-7b", "deepseek-v3",
]  # fmt: skip

# One preset per transformers family (GPT-3 has GPT-2's layout), the largest where it matters.
HF_COUNTABLE = [
    "gpt2", "gpt3-175b", "llama2-7b", "llama3-405b", "mistral-7b", "mixtral-8x7b",
    "gemma2-27b", "qwen2-7b", "olmo2-7b", "deepseek-v3", "qwen3-8b",
    "qwen3-235b-a22b", "smollm3-3b", "gemma3-27b", "gpt-oss-120b", "llama4-scout",
    "llama4-maverick", "olmo3-7b",
]  # fmt: skip

# The vision tower of both Llama 4 models, whose parameters the published totals include:
# meta-llama/Llama-4-Scout-17B-16E and -Maverick-17B-128E config.json, vision_config (the same
# in both files; recalled and checked against public copies, not downloaded here).
LLAMA4_VISION_CONFIG = dict(
    hidden_size=1408, intermediate_size=5632, num_hidden_layers=34, num_attention_heads=16,
    image_size=336, patch_size=14, pixel_shuffle_ratio=0.5, projector_input_dim=4096,
    projector_output_dim=4096, vision_output_dim=4096, multi_modal_projector_bias=False,
    norm_eps=1e-5, hidden_act="gelu",
)  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread avoids OpenMP start-up costs on a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def hf_meta_count(cfg: ModelConfig) -> int:
    """Parameters of the transformers model of cfg, built on the meta device."""
    if cfg.family in ("gpt3", "mt-nlg"):
        cfg = cfg.replace(family="gpt2")
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(to_hf_config(cfg))
    return sum(p.numel() for p in model.parameters())


def vision_encoder_count(cfg: ModelConfig) -> int:
    """Parameters of Llama 4's vision encoder and projector, outside the text model: the
    transformers Llama4ForConditionalGeneration of cfg, built on the meta device, minus its
    language model."""
    full = transformers.Llama4Config(
        text_config=to_hf_config(cfg).to_dict(), vision_config=LLAMA4_VISION_CONFIG
    )
    with torch.device("meta"):
        model = transformers.Llama4ForConditionalGeneration(full)
    text = sum(p.numel() for n, p in model.named_parameters() if "language_model" in n)
    assert text == count_parameters(cfg)  # the text model is exactly the preset
    return sum(p.numel() for p in model.parameters()) - text


def test_required_presets_exist_with_sources():
    missing = [n for n in REQUIRED if n not in PRESETS]
    assert not missing, f"missing presets: {missing}"
    no_source = [n for n, c in PRESETS.items() if len(c.source) < 10]
    assert not no_source, f"presets without a source: {no_source}"


@pytest.mark.parametrize("name", HF_COUNTABLE)
def test_count_equals_transformers_meta_model(name):
    cfg = PRESETS[name]
    assert count_parameters(cfg) == hf_meta_count(cfg)


@pytest.mark.parametrize("name", HF_COUNTABLE)
def test_config_round_trips_through_transformers(name):
    cfg = PRESETS[name]
    if cfg.family in ("gpt3", "mt-nlg"):
        cfg = cfg.replace(family="gpt2")
    back = config_from_hf(to_hf_config(cfg))
    assert back == cfg.replace(name=back.name, source=back.source)


def test_gpt2_small_is_exactly_the_transformers_default():
    # transformers' GPT2Config() is GPT-2 small (124M), independently of our preset.
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config())
    assert count_parameters(PRESETS["gpt2"]) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_totals(name):
    entry, cfg = PUBLISHED[name], PRESETS[name]
    total = count_parameters(cfg)
    if entry.get("with_vision_encoder"):  # Llama 4: the published total is the whole model
        total += vision_encoder_count(cfg)
    assert total == pytest.approx(entry["total"], rel=entry["rel_tol"]), entry["source"]
    if "active" in entry:
        active = count_parameters(cfg, active=True)
        rel = entry.get("active_rel_tol", entry["rel_tol"])
        assert active == pytest.approx(entry["active"], rel=rel), entry["source"]


@pytest.mark.parametrize(
    ("name", "published"), [("llama4-scout", 109e9), ("llama4-maverick", 400e9)]
)
def test_llama4_text_model_alone(name, published):
    # Without its 0.87B vision encoder and projector, Scout's text model (107.77B) is 1.1%
    # below the published 109B, outside the rounding of "109B"; Maverick's (400.71B) is not
    # told apart from its whole model (401.58B) by "400B".
    cfg, vision = PRESETS[name], vision_encoder_count(PRESETS[name])
    assert vision == pytest.approx(0.87e9, rel=0.01)
    text_error = abs(count_parameters(cfg) / published - 1)
    assert (text_error > 0.005) == (name == "llama4-scout")


def test_llama4_chunked_layers_cap_the_attention_flops():
    # 36 chunked layers see at most 8192 keys, the 12 NoPE layers the whole sequence.
    cfg, t = PRESETS["llama4-scout"], 32768
    per_key = 2.0 * 2 * cfg.n_heads * cfg.head_dim
    assert attention_flops_per_token(cfg, t) == per_key * (36 * 8192 + 12 * t)
    assert attention_flops_per_token(cfg, 4096) == per_key * 48 * 4096


def test_llama4_layers():
    # Scout: every layer MoE with QK-norm; Maverick: dense and MoE layers alternate, no
    # QK-norm; both: every 4th layer NoPE with full attention, the others chunked.
    scout, maverick = PRESETS["llama4-scout"], PRESETS["llama4-maverick"]
    assert all(scout.is_moe_layer(i) for i in range(48)) and scout.qk_l2_norm
    assert [i for i in range(48) if maverick.is_moe_layer(i)] == list(range(1, 48, 2))
    assert not maverick.qk_l2_norm and maverick.rope_scaling is None
    for cfg in (scout, maverick):
        assert [i for i in range(48) if not cfg.uses_rope(i)] == list(range(3, 48, 4))
        assert all((cfg.chunk(i) is None) == (not cfg.uses_rope(i)) for i in range(48))


@pytest.mark.parametrize(("name", "published"), [("qwen3-8b", 6.95e9), ("qwen3-235b-a22b", 234e9)])
def test_qwen3_non_embedding_parameters(name, published):
    # Qwen3 model cards: "Number of Parameters (Non-Embedding)": 6.95B (8B), 234B (235B-A22B).
    b = parameter_breakdown(PRESETS[name])
    non_embedding = count_parameters(PRESETS[name]) - b["embedding"] - b["lm_head"]
    assert non_embedding == pytest.approx(published, rel=0.005)


def test_gemma3_non_embedding_parameters():
    # Gemma 3 Technical Report, Table 1: the 27B model has 25,600M non-embedding parameters.
    b = parameter_breakdown(PRESETS["gemma3-27b"])
    non_embedding = count_parameters(PRESETS["gemma3-27b"]) - b["embedding"] - b["lm_head"]
    assert non_embedding == pytest.approx(25_600e6, rel=0.0005)


@pytest.mark.parametrize(("name", "active"), [("gpt-oss-20b", 3.61e9), ("gpt-oss-120b", 5.13e9)])
def test_gpt_oss_active_parameters(name, active):
    # gpt-oss model card, Table 1: active parameters per token, counted without the embedding
    # table (a look-up) but with the unembedding: 3.61B (20b), 5.13B (120b).
    cfg = PRESETS[name]
    ours = count_parameters(cfg, active=True) - parameter_breakdown(cfg)["embedding"]
    assert ours == pytest.approx(active, rel=0.002)


def test_mixtral_active_parameters_from_expert_shapes():
    # Independent of parameter_breakdown: drop (E - k)/E of the expert weights of the HF model.
    cfg = PRESETS["mixtral-8x7b"]
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(to_hf_config(cfg))
    total = sum(p.numel() for p in model.parameters())
    experts = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
    unused = experts * (cfg.n_experts - cfg.n_experts_per_tok) // cfg.n_experts
    assert count_parameters(cfg, active=True) == total - unused


@pytest.mark.parametrize("name", [n for n, c in PRESETS.items() if c.position != "relative"])
def test_tiny_transformer_count(name):
    cfg = PRESETS[name].scaled()
    model = Transformer(cfg, device="meta")
    assert sum(p.numel() for p in model.parameters()) == count_parameters(cfg)
    assert sum(parameter_breakdown(cfg).values()) == count_parameters(cfg)


def test_breakdown_splits_deepseek_v3():
    b = parameter_breakdown(PRESETS["deepseek-v3"])
    cfg = PRESETS["deepseek-v3"]
    # 58 MoE layers x 256 experts x 3 matrices of 7168 x 2048 (DeepSeek-V3 report, Section 4.2)
    assert b["experts"] == 58 * 256 * 3 * 7168 * 2048
    assert b["router"] == 58 * 256 * 7168
    assert b["mlp"] == 3 * 3 * 7168 * 18432
    assert b["lm_head"] == b["embedding"] == 129280 * 7168
    assert count_parameters(cfg, active=True) - count_parameters(cfg) == -58 * 248 * 3 * 7168 * 2048


def test_flops_six_n_reproduces_gpt3_training_compute():
    # Brown et al. 2020, Table D.1: GPT-3 175B, 300B tokens, 3.14e23 training FLOPs.
    assert flops_per_token(PRESETS["gpt3-175b"]) * 300e9 == pytest.approx(3.14e23, rel=0.01)


def test_flops_palm_form_reproduces_palm_mfu():
    # Chowdhery et al. 2022, Section 4.1 / Appendix B: 238.3K tokens/s on 6144 TPU v4 chips
    # (275 TFLOP/s bf16 peak each), sequence length 2048, gives 46.2% model FLOPs utilisation.
    cfg = PRESETS["palm-540b"]
    mfu = flops_per_token(cfg, seq_len=2048) * 238.3e3 / (6144 * 275e12)
    assert mfu == pytest.approx(0.462, abs=0.0005)
    attention = flops_per_token(cfg, 2048) - flops_per_token(cfg)
    assert attention == 12 * 118 * 48 * 256 * 2048  # 12·L·H·Q·T
    assert flops_per_token(cfg, 2048, training=False) * 3 == flops_per_token(cfg, 2048)


def test_matmul_parameters_drop_lookup_tables_only():
    cfg = PRESETS["gpt2"]  # tied: the output matmul still costs vocab x d_model
    assert matmul_parameters(cfg) == count_parameters(cfg) - 1024 * 768


def test_kv_cache_bytes_explicit_formulas():
    L = 32_768
    # Llama 3 8B: 32 layers x (K and V) x 8 kv heads x 128 dims x 2 bytes per token.
    assert kv_cache_bytes(PRESETS["llama3-8b"], L) == 32 * 2 * 8 * 128 * 2 * L
    # Llama 2 7B is multi-head: 32 kv heads.
    assert kv_cache_bytes(PRESETS["llama2-7b"], L, batch=3) == 3 * 32 * 2 * 32 * 128 * 2 * L
    # Mistral 7B: every layer is a 4096-token rolling buffer.
    assert kv_cache_bytes(PRESETS["mistral-7b"], L) == 32 * 2 * 8 * 128 * 2 * 4096
    # Gemma 2 9B: 21 local layers capped at 4096, 21 global layers hold all L tokens.
    g = PRESETS["gemma2-9b"]
    assert kv_cache_bytes(g, L) == (21 * 4096 + 21 * L) * 2 * 8 * 256 * 2
    assert kv_cache_bytes(g, 1000) == 42 * 1000 * 2 * 8 * 256 * 2
    # DeepSeek-V3 MLA: 61 layers x (512 latent + 64 rope) per token.
    assert kv_cache_bytes(PRESETS["deepseek-v3"], L, bytes_per_element=1) == 61 * 576 * L
    # MQA (PaLM): one kv head.
    assert kv_cache_bytes(PRESETS["palm-540b"], 2048) == 118 * 2 * 1 * 256 * 2 * 2048


@pytest.mark.parametrize(
    "name", ["llama3-8b", "mistral-7b", "gemma2-9b", "deepseek-v3", "gpt2", "llama4-scout"]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kv_cache_bytes_equals_allocated_cache(name, dtype):
    cfg = PRESETS[name].scaled(max_seq_len=64)
    model = Transformer(cfg, device="cpu", dtype=dtype)
    for max_len in (3, 40):  # below and above the tiny sliding window or chunk (16)
        cache = model.new_cache(batch=2, max_len=max_len)
        expected = kv_cache_bytes(cfg, max_len, batch=2, bytes_per_element=dtype.itemsize)
        assert cache.nbytes() == expected


def test_scaled_keeps_the_architecture():
    cfg = PRESETS["gemma2-27b"].scaled(d_model=64, n_heads=4)
    assert (cfg.n_heads // cfg.n_kv_heads, cfg.layer_pattern) == (2, ("local", "global"))
    assert cfg.attn_softcap == 50.0 and cfg.norm_placement == "sandwich"
    assert cfg.d_ff == 64 * 36864 // 4608
    ds = PRESETS["deepseek-v3"].scaled()
    assert ds.is_mla and ds.router == "sigmoid" and ds.n_experts % ds.n_expert_groups == 0


def test_config_validation_errors():
    with pytest.raises(ValueError, match="multiple of n_kv_heads"):
        ModelConfig(vocab_size=10, d_model=64, n_layers=1, n_heads=4, n_kv_heads=3, d_ff=64)
    with pytest.raises(ValueError, match="sliding_window"):
        ModelConfig(
            vocab_size=10, d_model=64, n_layers=1, n_heads=4, d_ff=64, layer_pattern=("local",)
        )
    with pytest.raises(NotImplementedError, match="relative positions"):
        Transformer(PRESETS["gopher-280b"].scaled(), device="meta")
