"""from_hf parity for the families with extra norms: Gemma 2 and OLMo 2.

Gemma 2: embeddings times sqrt(d_model), (1 + w) RMSNorm before and after attention and MLP,
GeGLU (tanh), local/global alternation, attention-logit and final-logit soft-caps,
query_pre_attn_scalar. OLMo 2: norms on the sublayer outputs, QK-norm over the whole
projection. The reference is the transformers model on the same random weights.
"""

import pytest
import torch

from course_lib.models import from_hf
from course_lib.models.hf_tiny import (
    assert_logits_match,
    tiny_hf_model,
    tiny_input_ids,
    variant_logits,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def gemma():
    hf = tiny_hf_model("gemma2")
    return hf, from_hf(hf)


@pytest.fixture(scope="module")
def olmo():
    hf = tiny_hf_model("olmo2")
    return hf, from_hf(hf)


@pytest.mark.parametrize("batch,seq_len", [(2, 12), (1, 3)])
def test_gemma2_logits_equal_transformers(gemma, batch, seq_len):
    hf, ours = gemma
    assert_logits_match(ours, hf, tiny_input_ids(batch, seq_len))


@pytest.mark.parametrize("batch,seq_len", [(2, 12), (1, 3)])
def test_olmo2_logits_equal_transformers(olmo, batch, seq_len):
    hf, ours = olmo
    assert_logits_match(ours, hf, tiny_input_ids(batch, seq_len))


def test_gemma2_config_read_from_transformers(gemma):
    cfg = gemma[1].cfg
    assert cfg.layer_pattern == ("local", "global") and cfg.norm_placement == "sandwich"
    assert cfg.query_pre_attn_scalar == 24 != cfg.head_dim
    assert (cfg.attn_softcap, cfg.final_softcap) == (2.0, 3.0)


def test_gemma2_final_softcap_bounds_logits(gemma):
    _, ours = gemma
    ids = tiny_input_ids()
    with torch.no_grad():
        assert ours(ids).abs().max() <= 3.0  # cap * tanh(.) with cap 3 (float32 may round to 3)
        assert variant_logits(ours, ids, final_softcap=None).abs().max() > 3.0


@pytest.mark.parametrize(
    "changes",
    [
        {"attn_softcap": None},
        {"final_softcap": None},
        {"query_pre_attn_scalar": None},
        {"layer_pattern": ("global",)},
        {"embed_scale": False},
        {"norm_unit_offset": False},
        {"activation": "silu"},
    ],
)
def test_gemma2_features_are_exercised(gemma, changes):
    hf, ours = gemma
    ids = tiny_input_ids()
    with torch.no_grad():
        assert (variant_logits(ours, ids, **changes) - hf(ids).logits).abs().max() > 1e-3


@pytest.mark.parametrize("changes", [{"qk_norm": False}, {"norm_placement": "pre"}])
def test_olmo2_features_are_exercised(olmo, changes):
    # Both changes drop weights (q_norm/k_norm, or the output norms), hence strict=False.
    hf, ours = olmo
    ids = tiny_input_ids()
    with torch.no_grad():
        moved = variant_logits(ours, ids, strict=False, **changes)
        assert (moved - hf(ids).logits).abs().max() > 1e-3
