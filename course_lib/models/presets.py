"""PRESETS: the published models of the course as ModelConfig, each with its source.

Shapes come from the papers' architecture tables and, for open models, from the released
`config.json` on the model card. Only the tiny `cfg.scaled()` variants are meant to be
instantiated; the full-size presets feed the analytics (parameter counts, FLOPs, KV cache).
Published totals live in `course_lib/data/published_totals.json` and the tests recompute them.
"""

from __future__ import annotations

from course_lib.models.config import ModelConfig, RopeScaling

_LLAMA3_SCALING = RopeScaling(
    kind="llama3",
    factor=8.0,
    original_max_seq_len=8192,
    low_freq_factor=1.0,
    high_freq_factor=4.0,
)

_GPT = dict(
    family="gpt3",
    position="learned",
    norm="layer",
    activation="gelu_new",
    gated_mlp=False,
    qkv_bias=True,
    out_bias=True,
    mlp_bias=True,
    tie_embeddings=True,
    max_seq_len=2048,
)


def _gpt3(name: str, d_model: int, n_layers: int, n_heads: int, source: str) -> ModelConfig:
    return ModelConfig(
        name=name,
        vocab_size=50257,
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        d_ff=4 * d_model,
        source=source,
        **_GPT,
    )


def _llama(name: str, source: str, **kw) -> ModelConfig:
    return ModelConfig(name=name, family="llama", source=source, **kw)


GPT3_SOURCE = "Brown et al. 2020, Language Models are Few-Shot Learners, Table 2.1"
LLAMA2_SOURCE = "Touvron et al. 2023, Llama 2, Table 1; meta-llama/Llama-2-*-hf config.json"
LLAMA3_SOURCE = (
    "Llama Team 2024, The Llama 3 Herd of Models, Table 3; meta-llama/Meta-Llama-3-* config.json"
)
LLAMA31_SOURCE = (
    "Llama Team 2024, The Llama 3 Herd of Models, Table 3; meta-llama/Llama-3.1-* config.json"
)
GEMMA2_SOURCE = "Gemma Team 2024, Gemma 2, Table 1; google/gemma-2-* config.json"

QWEN3_SOURCE = "Qwen Team 2025, Qwen3 Technical Report, Tables 1-2; Qwen/{} config.json"

# gpt-oss (OpenAI 2025, gpt-oss-120b & gpt-oss-20b Model Card, arXiv:2508.10925, Table 1);
# openai/gpt-oss-20b and openai/gpt-oss-120b config.json: vocab_size 201088, hidden_size 2880,
# intermediate_size 2880 (each expert), head_dim 64, num_attention_heads 64,
# num_key_value_heads 8, attention_bias true, sliding_window 128, layer_types alternating
# sliding/full (sliding first), experts_per_token 4, swiglu_limit 7.0 (alpha 1.702 in the
# modelling code), rope_theta 150000, rope_scaling yarn factor 32, beta_fast 32, beta_slow 1,
# truncate false, original_max_position_embeddings 4096, max_position_embeddings 131072,
# rms_norm_eps 1e-5, tie_word_embeddings false; 20b: 24 layers, 32 experts; 120b: 36 layers,
# 128 experts. Every layer is MoE; attention sinks in every layer (modeling_gpt_oss.py).
_GPT_OSS = dict(
    family="gpt_oss",
    vocab_size=201088,
    d_model=2880,
    n_heads=64,
    n_kv_heads=8,
    head_dim=64,
    d_ff=2880,
    qkv_bias=True,
    out_bias=True,
    attn_sinks=True,
    norm_scale_in_fp32=True,
    sliding_window=128,
    layer_pattern=("local", "global"),
    rope_theta=150000.0,
    rope_scaling=RopeScaling(kind="yarn", factor=32.0, original_max_seq_len=4096, truncate=False),
    n_experts_per_tok=4,
    router="topk_softmax",
    moe_bias=True,
    moe_gate_in_fp32=False,
    swiglu_limit=7.0,
    max_seq_len=131072,
)
GPT_OSS_SOURCE = (
    "OpenAI 2025, gpt-oss-120b & gpt-oss-20b Model Card, Table 1; openai/{} config.json"
)

# Llama 4 (Meta 2025, "The Llama 4 herd" release post; model cards of
# meta-llama/Llama-4-Scout-17B-16E and meta-llama/Llama-4-Maverick-17B-128E: 17B active, 109B
# and 400B total parameters, vision encoder included). Their config.json, text_config (read
# by transformers' Llama4TextConfig): vocab_size 202048, hidden_size 5120, num_hidden_layers
# 48, num_attention_heads 40, num_key_value_heads 8, head_dim 128, intermediate_size 8192 (each
# routed expert and the shared expert), intermediate_size_mlp 16384 (dense layers),
# num_experts_per_tok 1, rms_norm_eps 1e-5, rope_theta 5e5, attention_bias false,
# tie_word_embeddings false, attention_chunk_size 8192, no_rope_layers every 4th layer 0
# (NoPE, full attention; the RoPE layers are chunked: Llama4TextConfig's layer_types),
# attn_temperature_tuning 4 (truthy: on), floor_scale 8192, attn_scale 0.1. Scout: 16 experts,
# interleave_moe_layer_step 1 (every layer MoE), use_qk_norm true, rope_scaling llama3 factor 8,
# low_freq_factor 1, high_freq_factor 4, original_max_position_embeddings 8192; 10M-token
# context (model card; the file's max_position_embeddings was later lowered to 262144, which
# changes no weight). Maverick: 128 experts, interleave_moe_layer_step 2 (moe_layers 1, 3, ...,
# 47), use_qk_norm false, rope_scaling null, max_position_embeddings 1048576. The values were
# not downloaded here: they are the released files' as recalled and checked against public
# copies of them, and the parameter counts below reproduce the published totals
# (tests/test_models_analytics.py).
_LLAMA4 = dict(
    family="llama4_text",
    vocab_size=202048,
    d_model=5120,
    n_layers=48,
    n_heads=40,
    n_kv_heads=8,
    head_dim=128,
    d_ff=16384,
    moe_d_ff=8192,
    n_experts_per_tok=1,
    n_shared_experts=1,
    router="topk_sigmoid",
    norm_topk_prob=False,
    moe_gate_on_input=True,
    moe_gate_in_fp32=False,
    rope_theta=500000.0,
    rope_interleave=True,
    rope_in_fp32=True,
    rope_layers=(True, True, True, False),
    layer_pattern=("chunked", "chunked", "chunked", "global"),
    attention_chunk=8192,
    attn_temperature_tuning=True,
    floor_scale=8192,
    attn_temperature_scale=0.1,
)
LLAMA4_SOURCE = "Meta 2025, The Llama 4 herd (release post); meta-llama/{} config.json"

_GEMMA2 = dict(
    family="gemma2",
    vocab_size=256000,
    head_dim=256,
    norm_eps=1e-6,
    norm_unit_offset=True,
    norm_placement="sandwich",
    embed_scale=True,
    tie_embeddings=True,
    activation="gelu_tanh",
    sliding_window=4096,
    layer_pattern=("local", "global"),
    attn_softcap=50.0,
    final_softcap=30.0,
    max_seq_len=8192,
    source=GEMMA2_SOURCE,
)

PRESETS: dict[str, ModelConfig] = {
    "gpt2": ModelConfig(
        name="gpt2",
        vocab_size=50257,
        d_model=768,
        n_layers=12,
        n_heads=12,
        d_ff=3072,
        source="Radford et al. 2019, Language Models are Unsupervised Multitask Learners; openai-community/gpt2 config.json",
        **{**_GPT, "family": "gpt2", "max_seq_len": 1024},
    ),
    "gpt3-175b": _gpt3("gpt3-175b", 12288, 96, 96, GPT3_SOURCE),
    "mt-nlg-530b": ModelConfig(
        name="mt-nlg-530b",
        vocab_size=51200,
        d_model=20480,
        n_layers=105,
        n_heads=128,
        d_ff=4 * 20480,
        source="Smith et al. 2022, Using DeepSpeed and Megatron to Train Megatron-Turing NLG 530B, Section 3.1",
        **{**_GPT, "family": "mt-nlg"},
    ),
    # Gopher and Chinchilla use Transformer-XL relative positions (Rae et al. 2021, Section 3):
    # one extra d_model x d_model projection of the position encodings per layer.
    "gopher-280b": ModelConfig(
        name="gopher-280b",
        family="gopher",
        vocab_size=32000,
        d_model=16384,
        n_layers=80,
        n_heads=128,
        d_ff=4 * 16384,
        position="relative",
        activation="gelu",
        gated_mlp=False,
        source="Rae et al. 2021, Scaling Language Models: Methods, Analysis & Insights from Training Gopher, Table 1",
    ),
    "chinchilla-70b": ModelConfig(
        name="chinchilla-70b",
        family="gopher",
        vocab_size=32000,
        d_model=8192,
        n_layers=80,
        n_heads=64,
        d_ff=4 * 8192,
        position="relative",
        activation="gelu",
        gated_mlp=False,
        source="Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, Table 4",
    ),
    "palm-540b": ModelConfig(
        name="palm-540b",
        family="palm",
        vocab_size=256000,
        d_model=18432,
        n_layers=118,
        n_heads=48,
        n_kv_heads=1,
        head_dim=256,
        d_ff=4 * 18432,
        tie_embeddings=True,
        parallel_block=True,
        norm="layer",
        norm_bias=False,  # "No biases were used in any of the dense kernels or layer norms"
        source="Chowdhery et al. 2022, PaLM: Scaling Language Modeling with Pathways, Table 1 and Section 2",
    ),
    "llama2-7b": _llama(
        "llama2-7b",
        LLAMA2_SOURCE,
        vocab_size=32000,
        d_model=4096,
        n_layers=32,
        n_heads=32,
        d_ff=11008,
        max_seq_len=4096,
    ),
    "llama2-70b": _llama(
        "llama2-70b",
        LLAMA2_SOURCE,
        vocab_size=32000,
        d_model=8192,
        n_layers=80,
        n_heads=64,
        n_kv_heads=8,
        d_ff=28672,
        max_seq_len=4096,
    ),
    "llama3-8b": _llama(
        "llama3-8b",
        LLAMA3_SOURCE,
        vocab_size=128256,
        d_model=4096,
        n_layers=32,
        n_heads=32,
        n_kv_heads=8,
        d_ff=14336,
        rope_theta=500000.0,
        max_seq_len=8192,
    ),
    "llama3-70b": _llama(
        "llama3-70b",
        LLAMA3_SOURCE,
        vocab_size=128256,
        d_model=8192,
        n_layers=80,
        n_heads=64,
        n_kv_heads=8,
        d_ff=28672,
        rope_theta=500000.0,
        max_seq_len=8192,
    ),
    "llama3.1-8b": _llama(
        "llama3.1-8b",
        LLAMA31_SOURCE,
        vocab_size=128256,
        d_model=4096,
        n_layers=32,
        n_heads=32,
        n_kv_heads=8,
        d_ff=14336,
        rope_theta=500000.0,
        rope_scaling=_LLAMA3_SCALING,
        max_seq_len=131072,
    ),
    "llama3.1-70b": _llama(
        "llama3.1-70b",
        LLAMA31_SOURCE,
        vocab_size=128256,
        d_model=8192,
        n_layers=80,
        n_heads=64,
        n_kv_heads=8,
        d_ff=28672,
        rope_theta=500000.0,
        rope_scaling=_LLAMA3_SCALING,
        max_seq_len=131072,
    ),
    # Llama 3 405B was only released as Llama 3.1, with the 128K-context RoPE scaling.
    "llama3-405b": _llama(
        "llama3-405b",
        LLAMA31_SOURCE,
        vocab_size=128256,
        d_model=16384,
        n_layers=126,
        n_heads=128,
        n_kv_heads=8,
        d_ff=53248,
        rope_theta=500000.0,
        rope_scaling=_LLAMA3_SCALING,
        max_seq_len=131072,
    ),
    "mistral-7b": ModelConfig(
        name="mistral-7b",
        family="mistral",
        vocab_size=32000,
        d_model=4096,
        n_layers=32,
        n_heads=32,
        n_kv_heads=8,
        d_ff=14336,
        sliding_window=4096,
        layer_pattern=("local",),
        max_seq_len=32768,
        source="Jiang et al. 2023, Mistral 7B, Table 1; mistralai/Mistral-7B-v0.1 config.json",
    ),
    # The released Mixtral attends over the full 32K context (config.json: sliding_window null).
    "mixtral-8x7b": ModelConfig(
        name="mixtral-8x7b",
        family="mixtral",
        vocab_size=32000,
        d_model=4096,
        n_layers=32,
        n_heads=32,
        n_kv_heads=8,
        d_ff=14336,
        n_experts=8,
        n_experts_per_tok=2,
        rope_theta=1e6,
        max_seq_len=32768,
        source="Jiang et al. 2024, Mixtral of Experts, Table 1; mistralai/Mixtral-8x7B-v0.1 config.json",
    ),
    "gemma2-2b": ModelConfig(
        name="gemma2-2b",
        d_model=2304,
        n_layers=26,
        n_heads=8,
        n_kv_heads=4,
        d_ff=9216,
        query_pre_attn_scalar=256.0,
        **_GEMMA2,
    ),
    "gemma2-9b": ModelConfig(
        name="gemma2-9b",
        d_model=3584,
        n_layers=42,
        n_heads=16,
        n_kv_heads=8,
        d_ff=14336,
        query_pre_attn_scalar=256.0,
        **_GEMMA2,
    ),
    # 27B scales queries by (d_model / n_heads)**-0.5 = 144**-0.5 instead of head_dim**-0.5.
    "gemma2-27b": ModelConfig(
        name="gemma2-27b",
        d_model=4608,
        n_layers=46,
        n_heads=32,
        n_kv_heads=16,
        d_ff=36864,
        query_pre_attn_scalar=144.0,
        **{**_GEMMA2, "head_dim": 128},
    ),
    "qwen2-7b": ModelConfig(
        name="qwen2-7b",
        family="qwen2",
        vocab_size=152064,
        d_model=3584,
        n_layers=28,
        n_heads=28,
        n_kv_heads=4,
        d_ff=18944,
        qkv_bias=True,
        norm_eps=1e-6,
        rope_theta=1e6,
        max_seq_len=131072,
        source="Yang et al. 2024, Qwen2 Technical Report, Table 1; Qwen/Qwen2-7B config.json",
    ),
    "olmo2-7b": ModelConfig(
        name="olmo2-7b",
        family="olmo2",
        vocab_size=100352,
        d_model=4096,
        n_layers=32,
        n_heads=32,
        d_ff=11008,
        norm_eps=1e-6,
        norm_placement="post",
        qk_norm=True,
        norm_scale_in_fp32=True,
        rope_in_fp32=True,
        rope_theta=500000.0,
        max_seq_len=4096,
        source="OLMo Team 2024, 2 OLMo 2 Furious, Table 2; allenai/OLMo-2-1124-7B config.json",
    ),
    "deepseek-v3": ModelConfig(
        name="deepseek-v3",
        family="deepseek_v3",
        vocab_size=129280,
        d_model=7168,
        n_layers=61,
        n_heads=128,
        d_ff=18432,
        norm_eps=1e-6,
        q_lora_rank=1536,
        kv_lora_rank=512,
        qk_nope_head_dim=128,
        qk_rope_head_dim=64,
        v_head_dim=128,
        rope_interleave=True,
        rope_scaling=RopeScaling(
            kind="yarn",
            factor=40.0,
            original_max_seq_len=4096,
            beta_fast=32.0,
            beta_slow=1.0,
            mscale=1.0,
            mscale_all_dim=1.0,
        ),
        n_experts=256,
        n_experts_per_tok=8,
        n_shared_experts=1,
        moe_d_ff=2048,
        first_dense_layers=3,
        router="sigmoid",
        n_expert_groups=8,
        topk_groups=4,
        routed_scaling=2.5,
        n_mtp_modules=1,
        max_seq_len=163840,
        source="DeepSeek-AI 2024, DeepSeek-V3 Technical Report, Section 4.2; deepseek-ai/DeepSeek-V3 config.json",
    ),
    # 2025. Qwen 3 (Qwen Team 2025, Qwen3 Technical Report, arXiv:2505.09388, Table 1):
    # Qwen/Qwen3-8B config.json: vocab_size 151936, hidden_size 4096, intermediate_size 12288,
    # num_hidden_layers 36, num_attention_heads 32, num_key_value_heads 8, head_dim 128,
    # rms_norm_eps 1e-6, rope_theta 1e6, max_position_embeddings 40960, attention_bias false,
    # tie_word_embeddings false; QK-norm per head (modeling_qwen3.py).
    "qwen3-8b": ModelConfig(
        name="qwen3-8b",
        family="qwen3",
        vocab_size=151936,
        d_model=4096,
        n_layers=36,
        n_heads=32,
        n_kv_heads=8,
        head_dim=128,
        d_ff=12288,
        norm_eps=1e-6,
        qk_norm=True,
        qk_norm_per_head=True,
        rope_theta=1e6,
        max_seq_len=40960,
        source=QWEN3_SOURCE.format("Qwen3-8B"),
    ),
    # Qwen/Qwen3-235B-A22B config.json: hidden_size 4096, num_hidden_layers 94,
    # num_attention_heads 64, num_key_value_heads 4, head_dim 128, num_experts 128,
    # num_experts_per_tok 8, moe_intermediate_size 1536, norm_topk_prob true,
    # decoder_sparse_step 1, mlp_only_layers [] (every layer MoE, no shared expert),
    # intermediate_size 12288 (unused), vocab_size 151936, rope_theta 1e6,
    # max_position_embeddings 40960, tie_word_embeddings false.
    "qwen3-235b-a22b": ModelConfig(
        name="qwen3-235b-a22b",
        family="qwen3_moe",
        vocab_size=151936,
        d_model=4096,
        n_layers=94,
        n_heads=64,
        n_kv_heads=4,
        head_dim=128,
        d_ff=12288,
        norm_eps=1e-6,
        qk_norm=True,
        qk_norm_per_head=True,
        rope_theta=1e6,
        n_experts=128,
        n_experts_per_tok=8,
        moe_d_ff=1536,
        norm_topk_prob=True,
        moe_gate_in_fp32=False,
        max_seq_len=40960,
        source=QWEN3_SOURCE.format("Qwen3-235B-A22B"),
    ),
    # SmolLM3 (Hugging Face 2025, blog "SmolLM3: smol, multilingual, long-context reasoner");
    # HuggingFaceTB/SmolLM3-3B config.json: vocab_size 128256, hidden_size 2048,
    # intermediate_size 11008, num_hidden_layers 36, num_attention_heads 16,
    # num_key_value_heads 4, tie_word_embeddings true, no_rope_layer_interval 4 (layers 3, 7,
    # ..., 35 are NoPE), use_sliding_window false, rope_theta 5e6, max_position_embeddings 65536.
    "smollm3-3b": ModelConfig(
        name="smollm3-3b",
        family="smollm3",
        vocab_size=128256,
        d_model=2048,
        n_layers=36,
        n_heads=16,
        n_kv_heads=4,
        d_ff=11008,
        norm_eps=1e-6,
        tie_embeddings=True,
        rope_layers=(True, True, True, False),
        rope_theta=5e6,
        max_seq_len=65536,
        source="Hugging Face 2025, SmolLM3 blog post; HuggingFaceTB/SmolLM3-3B config.json",
    ),
    # Gemma 3 (Gemma Team 2025, Gemma 3 Technical Report, arXiv:2503.19786, Table 1: 27B has
    # 1,416M embedding and 25,600M non-embedding parameters, plus a 417M vision encoder that
    # is not part of this text decoder). google/gemma-3-27b-it config.json, text_config:
    # hidden_size 5376, intermediate_size 21504, num_hidden_layers 62, num_attention_heads 32,
    # num_key_value_heads 16, head_dim 128, query_pre_attn_scalar 168, sliding_window 1024,
    # sliding_window_pattern 6 (5 local : 1 global), rope_scaling linear factor 8 (global
    # layers), rope_local_base_freq 1e4; transformers' Gemma3TextConfig defaults for the keys the
    # file leaves out: vocab_size 262208, rope_theta 1e6, max_position_embeddings 131072,
    # rms_norm_eps 1e-6, gelu_pytorch_tanh, tied embeddings, no soft-capping.
    "gemma3-27b": ModelConfig(
        name="gemma3-27b",
        family="gemma3_text",
        vocab_size=262208,
        d_model=5376,
        n_layers=62,
        n_heads=32,
        n_kv_heads=16,
        head_dim=128,
        d_ff=21504,
        query_pre_attn_scalar=168.0,
        norm_eps=1e-6,
        norm_unit_offset=True,
        norm_placement="sandwich",
        embed_scale=True,
        tie_embeddings=True,
        activation="gelu_tanh",
        qk_norm=True,
        qk_norm_per_head=True,
        sliding_window=1024,
        layer_pattern=("local",) * 5 + ("global",),
        rope_theta=1e6,
        local_rope_theta=1e4,
        rope_scaling=RopeScaling(kind="linear", factor=8.0),
        max_seq_len=131072,
        source="Gemma Team 2025, Gemma 3 Technical Report, Table 1; google/gemma-3-27b-it config.json",
    ),
    "gpt-oss-20b": ModelConfig(
        name="gpt-oss-20b",
        n_layers=24,
        n_experts=32,
        source=GPT_OSS_SOURCE.format("gpt-oss-20b"),
        **_GPT_OSS,
    ),
    "gpt-oss-120b": ModelConfig(
        name="gpt-oss-120b",
        n_layers=36,
        n_experts=128,
        source=GPT_OSS_SOURCE.format("gpt-oss-120b"),
        **_GPT_OSS,
    ),
    "llama4-scout": ModelConfig(
        name="llama4-scout",
        n_experts=16,
        qk_l2_norm=True,
        rope_scaling=RopeScaling(
            kind="llama3",
            factor=8.0,
            original_max_seq_len=8192,
            low_freq_factor=1.0,
            high_freq_factor=4.0,
        ),
        max_seq_len=10485760,
        source=LLAMA4_SOURCE.format("Llama-4-Scout-17B-16E"),
        **_LLAMA4,
    ),
    "llama4-maverick": ModelConfig(
        name="llama4-maverick",
        n_experts=128,
        moe_layer_step=2,
        max_seq_len=1048576,
        source=LLAMA4_SOURCE.format("Llama-4-Maverick-17B-128E"),
        **_LLAMA4,
    ),
    # OLMo 3 (Olmo Team 2025, OLMo 3 release; allenai/Olmo-3-1025-7B). transformers'
    # Olmo3Config, documented as the "Olmo3 7B style configuration", gives the shapes and
    # layer plan: hidden_size 4096, intermediate_size 11008, num_hidden_layers 32,
    # num_attention_heads 32 (num_key_value_heads = heads: no GQA), sliding_window 4096 on three
    # layers in four (layer i full when (i + 1) % 4 == 0), rope_theta 5e5 in both kinds of
    # layer, attention_bias false, untied embeddings; OLMo 2's norms on the sublayer outputs
    # and QK-norm (modeling_olmo3.py). The released config.json adds vocab_size 100278 (its
    # default 50304 is OLMo 1's), rms_norm_eps 1e-6 and, on the full-attention layers only,
    # YaRN factor 8 from original_max_position_embeddings 8192 (beta_fast 32, beta_slow 1,
    # attention_factor 0.1 ln 8 + 1, YaRN's default) to max_position_embeddings 65536: recalled
    # and checked against public copies of the file, not downloaded here. With vocab_size
    # 100278 the count is 7,298,011,136, exactly the total the Hugging Face Hub lists for
    # fine-tunes of allenai/Olmo-3-1025-7B (same shapes); the model page rounds it to 7.3B.
    "olmo3-7b": ModelConfig(
        name="olmo3-7b",
        family="olmo3",
        vocab_size=100278,
        d_model=4096,
        n_layers=32,
        n_heads=32,
        d_ff=11008,
        norm_eps=1e-6,
        norm_placement="post",
        qk_norm=True,
        norm_scale_in_fp32=True,
        rope_in_fp32=True,
        sliding_window=4096,
        layer_pattern=("local", "local", "local", "global"),
        rope_theta=500000.0,
        local_rope_theta=500000.0,
        rope_scaling=RopeScaling(
            kind="yarn", factor=8.0, original_max_seq_len=8192, beta_fast=32.0, beta_slow=1.0
        ),
        max_seq_len=65536,
        source=(
            "Olmo Team 2025, OLMo 3; transformers' Olmo3Config; allenai/Olmo-3-1025-7B config.json"
        ),
    ),
}
