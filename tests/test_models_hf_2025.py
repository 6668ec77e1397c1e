"""from_hf parity for the 2025 families, in float32 (bfloat16: tests/test_models_hf_bf16.py).

Qwen 3: QK-norm of each head over head_dim before RoPE, biases on q/k/v/o (attention_bias),
head_dim != d_model / n_heads, sliding layers from max_window_layers, YaRN RoPE.
Qwen 3 MoE: the same attention (every layer sliding), top-3 of 8 softmax-routed experts with
renormalised gates (norm_topk_prob), dense MLP layers from mlp_only_layers and, in a variant,
from decoder_sparse_step; norm_topk_prob=False in another.
SmolLM3: NoPE layers (every 2nd layer rotates nothing: no_rope_layer_interval 2), sliding
windows on those layers, q/k/v/o and MLP biases, tied embeddings, head_dim != d_model / n_heads.
OLMo 3: OLMo 2's norms on the sublayer outputs and QK-norm over the whole projection, three
sliding-window layers in four whose RoPE has its own base (10^4) while the full-attention
layers use another (5 x 10^5) with YaRN scaling, attention biases.
Gemma 3: Gemma 2's sandwich norms, (1 + w) RMSNorm, embedding scaling, query_pre_attn_scalar
and final soft-cap, plus per-head QK-norm with the (1 + w) gain, two sliding layers in three
rotating with their own base (10^4) and the global layer with linear RoPE scaling, biases;
attn_logit_softcapping, which Gemma 3's attention ignores, is read as absent.
gpt-oss: attention sinks, sliding and full layers alternating, q/k/v/o biases, every layer a
top-3-of-8 MoE routed by a softmax over the top logits of a biased router, experts with
biases and the clamped SwiGLU (limit 1.5, low enough that the clamps bite), YaRN without
truncation.
Llama 4 (llama4_text): dense and MoE layers interleaved (interleave_moe_layer_step 2: layers 1
and 3 MoE, and an explicit moe_layers list in a variant), top-2 of 4 experts gated by the
sigmoid of their router logits, the gate scaling each expert's input, plus a shared expert;
chunked attention (chunks of 4 positions, shorter than the 12-token test sequence) in the
RoPE layers and full attention in the NoPE layer (no_rope_layers [1, 1, 0, 1]), whose queries
get the attention temperature from position 2 on (floor_scale 3); the gain-free L2 QK-norm
after RoPE in the RoPE layers; interleaved RoPE computed in float32 with Llama 3 scaling;
q/k/v/o biases, GQA, head_dim != d_model / n_heads.
The reference is the transformers model on the same random weights; each feature is shown to
matter by switching it off in our model (the logits then move far beyond the tolerance).
"""

import pytest
import torch

from course_lib.kernels.moe import SparseMoE
from course_lib.models import config_from_hf, from_hf, to_hf_config
from course_lib.models.hf_tiny import (
    assert_logits_match,
    tiny_hf_model,
    tiny_input_ids,
    variant_logits,
)

pytestmark = pytest.mark.usefixtures("one_thread")

FAMILIES_2025 = (
    "qwen3", "qwen3_moe", "smollm3", "olmo3", "gemma3_text", "gpt_oss", "llama4_text",
)  # fmt: skip


@pytest.fixture(scope="module", params=FAMILIES_2025)
def pair(request):
    hf = tiny_hf_model(request.param)
    return hf, from_hf(hf)


@pytest.mark.parametrize("batch,seq_len", [(2, 12), (1, 1)])
def test_logits_equal_transformers(pair, batch, seq_len):
    hf, ours = pair
    assert_logits_match(ours, hf, tiny_input_ids(batch, seq_len))


@pytest.mark.parametrize("family", FAMILIES_2025)
def test_tiny_config_round_trips_through_transformers(family):
    cfg = from_hf(tiny_hf_model(family)).cfg
    assert config_from_hf(to_hf_config(cfg)) == cfg


def test_qwen3_config_read_from_transformers():
    cfg = from_hf(tiny_hf_model("qwen3")).cfg
    assert cfg.qk_norm and cfg.qk_norm_per_head and cfg.qkv_bias and cfg.out_bias
    assert cfg.head_dim == 24 != cfg.d_model // cfg.n_heads
    assert cfg.layer_pattern == ("global", "local") and cfg.rope_scaling.kind == "yarn"


def test_qwen3_qk_norm_has_one_gain_per_head_dim():
    attn = from_hf(tiny_hf_model("qwen3")).layers[0].attn
    assert attn.q_norm.weight.shape == attn.k_norm.weight.shape == (24,)


def test_smollm3_config_read_from_transformers():
    cfg = from_hf(tiny_hf_model("smollm3")).cfg
    assert cfg.rope_layers == (True, False) and cfg.layer_pattern == ("global", "local")
    assert [cfg.uses_rope(i) for i in range(4)] == [True, False, True, False]
    assert cfg.tie_embeddings and cfg.mlp_bias and cfg.qkv_bias and cfg.out_bias


def test_smollm3_nope_layers_from_an_explicit_list():
    # A non-periodic no_rope_layers list (and no sliding windows) is read as given.
    hf = tiny_hf_model("smollm3", no_rope_layers=[1, 1, 0, 1], use_sliding_window=False)
    ours = from_hf(hf)
    assert [ours.cfg.uses_rope(i) for i in range(4)] == [True, True, False, True]
    assert ours.cfg.layer_pattern == ("global",)
    assert_logits_match(ours, hf, tiny_input_ids())


def test_olmo3_config_read_from_transformers():
    cfg = from_hf(tiny_hf_model("olmo3")).cfg
    assert cfg.layer_pattern == ("local", "local", "local", "global")
    assert (cfg.rope_theta, cfg.local_rope_theta) == (500000.0, 10000.0)
    assert cfg.rope_scaling.kind == "yarn" and cfg.norm_placement == "post"
    assert cfg.qk_norm and not cfg.qk_norm_per_head


def test_gemma3_config_read_from_transformers():
    cfg = from_hf(tiny_hf_model("gemma3_text")).cfg
    assert cfg.layer_pattern == ("local", "local", "global")
    assert (cfg.rope_theta, cfg.local_rope_theta) == (1000000.0, 10000.0)
    assert cfg.rope_scaling.kind == "linear" and cfg.rope_scaling.factor == 8.0
    assert cfg.qk_norm and cfg.qk_norm_per_head and cfg.norm_unit_offset
    assert cfg.norm_placement == "sandwich" and cfg.embed_scale and cfg.query_pre_attn_scalar == 24
    assert cfg.final_softcap == 3.0 and cfg.attn_softcap is None


def test_gemma3_qk_norm_gain_is_zero_centred():
    attn = from_hf(tiny_hf_model("gemma3_text")).layers[0].attn
    assert attn.q_norm.zero_centered and attn.q_norm.weight.shape == (32,)


def test_gemma3_ignores_attention_soft_capping_as_transformers_does():
    # Gemma3Attention never passes attn_logit_softcapping to its attention function.
    hf = tiny_hf_model("gemma3_text", attn_logit_softcapping=1.0)
    ours = from_hf(hf)
    assert ours.cfg.attn_softcap is None
    assert_logits_match(ours, hf, tiny_input_ids())


def test_gpt_oss_config_read_from_transformers():
    cfg = from_hf(tiny_hf_model("gpt_oss")).cfg
    assert cfg.attn_sinks and cfg.moe_bias and cfg.router == "topk_softmax"
    assert (cfg.swiglu_limit, cfg.swiglu_alpha) == (1.5, 1.702)
    assert cfg.layer_pattern == ("local", "global") and cfg.qkv_bias and cfg.out_bias
    assert all(cfg.is_moe_layer(i) for i in range(cfg.n_layers)) and cfg.moe_d_ff == 32
    assert cfg.rope_scaling.kind == "yarn" and not cfg.rope_scaling.truncate


def test_gpt_oss_expert_weights_are_de_interleaved():
    # Expert 0 of layer 0 applied by us equals transformers' expert 0 on the same tokens.
    hf = tiny_hf_model("gpt_oss")
    ours = from_hf(hf)
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(1))
    theirs = hf.model.layers[0].mlp.experts
    with torch.no_grad():
        gate_up = x @ theirs.gate_up_proj[0] + theirs.gate_up_proj_bias[0]
        expected = theirs._apply_gate(gate_up) @ theirs.down_proj[0] + theirs.down_proj_bias[0]
        torch.testing.assert_close(ours.layers[0].mlp.experts.expert(0, x), expected)


def test_llama4_config_read_from_transformers():
    hf = tiny_hf_model("llama4_text")
    cfg = from_hf(hf).cfg
    assert [cfg.layer_type(i) for i in range(4)] == ["chunked", "chunked", "global", "chunked"]
    assert [cfg.uses_rope(i) for i in range(4)] == [True, True, False, True]
    assert [cfg.is_moe_layer(i) for i in range(4)] == [False, True, False, True]
    assert cfg.attention_chunk == 4 < tiny_input_ids().shape[1]  # chunking matters
    assert (cfg.d_ff, cfg.moe_d_ff, cfg.n_shared_experts) == (96, 32, 1)
    assert cfg.router == "topk_sigmoid" and cfg.moe_gate_on_input and not cfg.norm_topk_prob
    assert cfg.qk_l2_norm and not cfg.qk_norm and cfg.rope_interleave and cfg.rope_in_fp32
    assert cfg.attn_temperature_tuning and (cfg.floor_scale, cfg.attn_temperature_scale) == (3, 0.3)
    assert cfg.rope_scaling.kind == "llama3" and cfg.qkv_bias and cfg.out_bias
    # the layers transformers builds: MoE where it builds Llama4TextMoe, QK-norm where it has one
    ours = from_hf(hf)
    theirs = [type(layer.feed_forward).__name__ == "Llama4TextMoe" for layer in hf.model.layers]
    assert [isinstance(layer.mlp, SparseMoE) for layer in ours.layers] == theirs
    theirs = [hasattr(layer.self_attn, "qk_norm") for layer in hf.model.layers]
    assert [layer.attn.l2_qk_eps is not None for layer in ours.layers] == theirs


@pytest.mark.parametrize(
    "overrides",
    [
        {"moe_layers": [0, 3], "num_experts_per_tok": 1},  # not a step: dense layers listed
        {"no_rope_layers": [1, 0, 1, 1], "use_qk_norm": False, "attn_temperature_tuning": False},
        {"layer_types": ["chunked_attention"] * 4},  # the NoPE layer chunked too
    ],
)
def test_llama4_variants_equal_transformers(overrides):
    hf = tiny_hf_model("llama4_text", **overrides)
    ours = from_hf(hf)
    assert config_from_hf(to_hf_config(ours.cfg)) == ours.cfg
    assert_logits_match(ours, hf, tiny_input_ids())


def test_llama4_decoding_with_a_cache_equals_the_full_forward():
    # Chunked layers keep only the current chunk (4 tokens here, crossed twice after the
    # 5-token prompt); the NoPE layer's temperature reads the absolute position of each token.
    ours = from_hf(tiny_hf_model("llama4_text"))
    ids = tiny_input_ids(1)
    with torch.no_grad():
        full = ours(ids)
        cache = ours.new_cache(1, ids.shape[1])
        steps = [ours(ids[:, :5], cache)] + [ours(ids[:, t : t + 1], cache) for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "overrides", [{"decoder_sparse_step": 2, "mlp_only_layers": []}, {"norm_topk_prob": False}]
)
def test_qwen3_moe_variants_equal_transformers(overrides):
    hf = tiny_hf_model("qwen3_moe", **overrides)
    assert_logits_match(from_hf(hf), hf, tiny_input_ids())


@pytest.mark.parametrize("overrides", [{}, {"decoder_sparse_step": 2, "mlp_only_layers": []}])
def test_qwen3_moe_layers_are_built_as_configured(overrides):
    # Layer i is MoE exactly where transformers builds a Qwen3MoeSparseMoeBlock.
    hf = tiny_hf_model("qwen3_moe", **overrides)
    ours = from_hf(hf)
    theirs = [type(layer.mlp).__name__ == "Qwen3MoeSparseMoeBlock" for layer in hf.model.layers]
    assert [isinstance(layer.mlp, SparseMoE) for layer in ours.layers] == theirs
    assert theirs == ([True, True, False, True] if not overrides else [False, True, False, True])


@pytest.mark.parametrize(
    ("family", "changes"),
    [
        ("qwen3", {"qk_norm": False, "qk_norm_per_head": False}),
        ("qwen3", {"qkv_bias": False, "out_bias": False}),
        ("qwen3", {"layer_pattern": ("global",)}),
        ("qwen3", {"rope_scaling": None}),
        ("qwen3_moe", {"qk_norm": False, "qk_norm_per_head": False}),
        ("qwen3_moe", {"layer_pattern": ("global",)}),
        ("qwen3_moe", {"n_experts_per_tok": 2}),
        ("qwen3_moe", {"norm_topk_prob": False}),
        ("smollm3", {"rope_layers": (True,)}),  # RoPE in the NoPE layers too
        ("smollm3", {"layer_pattern": ("global",)}),
        ("smollm3", {"mlp_bias": False}),
        ("olmo3", {"local_rope_theta": None}),  # one RoPE for all layers
        ("olmo3", {"rope_scaling": None}),
        ("olmo3", {"layer_pattern": ("global",)}),
        ("olmo3", {"qk_norm": False}),
        ("olmo3", {"norm_placement": "pre"}),
        ("gemma3_text", {"qk_norm": False, "qk_norm_per_head": False}),
        ("gemma3_text", {"local_rope_theta": None}),
        ("gemma3_text", {"rope_scaling": None}),
        ("gemma3_text", {"layer_pattern": ("global",)}),
        ("gemma3_text", {"query_pre_attn_scalar": None}),
        ("gemma3_text", {"attn_softcap": 1.0}),
        ("gemma3_text", {"qkv_bias": False, "out_bias": False}),
        ("gpt_oss", {"attn_sinks": False}),
        ("gpt_oss", {"moe_bias": False}),
        ("gpt_oss", {"swiglu_limit": 100.0}),  # the clamps never bite
        ("gpt_oss", {"swiglu_alpha": 1.0}),
        ("gpt_oss", {"router": "softmax", "norm_topk_prob": False}),
        ("gpt_oss", {"layer_pattern": ("global",)}),
        ("gpt_oss", {"qkv_bias": False, "out_bias": False}),
        ("llama4_text", {"layer_pattern": ("global",)}),  # no chunking
        ("llama4_text", {"attention_chunk": 8}),
        ("llama4_text", {"rope_layers": (True,)}),  # RoPE (and QK-norm) in the NoPE layer
        ("llama4_text", {"attn_temperature_tuning": False}),
        ("llama4_text", {"qk_l2_norm": False}),
        ("llama4_text", {"rope_interleave": False}),
        ("llama4_text", {"rope_scaling": None}),
        ("llama4_text", {"moe_gate_on_input": False}),  # Mixtral's g E(x)
        ("llama4_text", {"router": "topk_softmax"}),
        ("llama4_text", {"norm_topk_prob": True}),
        ("llama4_text", {"n_shared_experts": 0}),
        ("llama4_text", {"n_experts_per_tok": 1}),
        ("llama4_text", {"qkv_bias": False, "out_bias": False}),
    ],
)
def test_features_are_exercised(family, changes):
    # strict=False: some changes drop weights (the QK-norm gains, the biases).
    hf = tiny_hf_model(family)
    ours, ids = from_hf(hf), tiny_input_ids()
    with torch.no_grad():
        moved = variant_logits(ours, ids, strict=False, **changes)
        assert (moved - hf(ids).logits).abs().max() > 1e-2
