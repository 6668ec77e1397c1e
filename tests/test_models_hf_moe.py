"""from_hf parity for the mixture-of-experts families: Mixtral and DeepSeek-V3.

Mixtral: softmax top-2 of 4 experts. DeepSeek-V3: Multi-head Latent Attention with a low-rank
query and interleaved RoPE, first_k_dense_replace dense layers, a shared expert, sigmoid
routing with a (random, non-zero) correction bias, group-limited top-3 of 8 experts and a
routed scaling factor; and YaRN RoPE scaling. The reference is the transformers model on the
same random weights.
"""

import pytest
import torch

from course_lib.kernels.mla import MultiHeadLatentAttention
from course_lib.kernels.moe import DeepSeekMoE, SparseMoE
from course_lib.models import from_hf
from course_lib.models.hf_tiny import (
    assert_logits_match,
    tiny_hf_model,
    tiny_input_ids,
    variant_logits,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mixtral():
    hf = tiny_hf_model("mixtral")
    return hf, from_hf(hf)


@pytest.fixture(scope="module")
def deepseek():
    hf = tiny_hf_model("deepseek_v3")
    return hf, from_hf(hf)


@pytest.mark.parametrize("batch,seq_len", [(2, 12), (1, 1)])
def test_mixtral_logits_equal_transformers(mixtral, batch, seq_len):
    hf, ours = mixtral
    assert_logits_match(ours, hf, tiny_input_ids(batch, seq_len))


@pytest.mark.parametrize("batch,seq_len", [(2, 12), (1, 1)])
def test_deepseek_v3_logits_equal_transformers(deepseek, batch, seq_len):
    hf, ours = deepseek
    assert_logits_match(ours, hf, tiny_input_ids(batch, seq_len))


def test_deepseek_v3_with_yarn_rope_scaling():
    rope = {
        "rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
        "original_max_position_embeddings": 8, "beta_fast": 32.0, "beta_slow": 1.0,
        "mscale": 1.0, "mscale_all_dim": 1.0,
    }  # fmt: skip
    hf = tiny_hf_model("deepseek_v3", rope_parameters=rope)
    ours = from_hf(hf)
    assert ours.cfg.rope_scaling.kind == "yarn"
    assert_logits_match(ours, hf, tiny_input_ids())


def test_layers_are_built_as_configured(mixtral, deepseek):
    mix, ds = mixtral[1], deepseek[1]
    assert all(isinstance(layer.mlp, SparseMoE) for layer in mix.layers)
    assert not isinstance(ds.layers[0].mlp, DeepSeekMoE)  # first_k_dense_replace = 1
    assert isinstance(ds.layers[1].mlp, DeepSeekMoE)
    assert isinstance(ds.layers[1].attn.mla, MultiHeadLatentAttention)
    assert ds.cfg.n_experts_per_tok == 3 and ds.cfg.topk_groups == 2


@pytest.mark.parametrize(
    ("which", "changes"),
    [
        ("mixtral", {"n_experts_per_tok": 1}),
        ("mixtral", {"layer_pattern": ("global",)}),  # window 5 < 12 tokens
        ("deepseek", {"routed_scaling": 1.0}),
        ("deepseek", {"topk_groups": 4}),  # group-limited routing matters
        ("deepseek", {"rope_interleave": False}),
    ],
)
def test_features_are_exercised(mixtral, deepseek, which, changes):
    hf, ours = {"mixtral": mixtral, "deepseek": deepseek}[which]
    ids = tiny_input_ids()
    with torch.no_grad():
        assert (variant_logits(ours, ids, **changes) - hf(ids).logits).abs().max() > 1e-3


def test_routing_bias_is_loaded(deepseek):
    hf, ours = deepseek
    theirs = hf.model.layers[1].mlp.gate.e_score_correction_bias
    assert torch.equal(ours.layers[1].mlp.gate.e_score_correction_bias, theirs)
    assert theirs.abs().sum() > 0
