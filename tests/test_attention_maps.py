"""course_lib.models.attention_maps: every head's weights, recomputed and checked."""

import pytest
import torch

from course_lib.models import ModelConfig, Transformer
from course_lib.models.attention_maps import (
    attention_maps,
    first_token_score,
    previous_token_score,
)

BASE = dict(vocab_size=64, d_model=32, n_layers=2, n_heads=4, d_ff=48, max_seq_len=32)
VARIANTS = {
    "llama, GQA": dict(n_kv_heads=2),
    "gpt2": dict(
        position="learned",
        norm="layer",
        qkv_bias=True,
        out_bias=True,
        gated_mlp=False,
        activation="gelu_new",
    ),  # fmt: skip
    "qk-norm per head, interleaved rope": dict(
        qk_norm=True, qk_norm_per_head=True, rope_interleave=True
    ),  # fmt: skip
    "gemma2-like": dict(
        n_kv_heads=2,
        sliding_window=4,
        layer_pattern=("local", "global"),
        attn_softcap=5.0,
        query_pre_attn_scalar=16.0,
    ),  # fmt: skip
    "sinks": dict(attn_sinks=True),
}


def _model(**kw):
    torch.manual_seed(0)
    model = Transformer(ModelConfig(**BASE, **kw), device="cpu").double().eval()
    for name, p in model.named_parameters():
        if name.endswith("sinks"):
            torch.nn.init.normal_(p)  # learned sinks are not zero
    return model


@pytest.mark.parametrize("variant", VARIANTS)
def test_maps_are_causal_distributions_that_rebuild_the_output(variant):
    model = _model(**VARIANTS[variant])
    ids = torch.randint(0, 64, (1, 12), generator=torch.Generator().manual_seed(1))
    maps = attention_maps(model, ids)  # the o_proj check runs inside
    assert maps.shape == (2, 4, 12, 12)
    assert torch.all(maps.triu(diagonal=1) == 0)
    rows = maps.sum(-1)
    if variant == "sinks":
        assert torch.all(rows < 1)  # the sink takes part of every row
    else:
        torch.testing.assert_close(rows, torch.ones_like(rows))
    if variant == "gemma2-like":  # layer 0 is local: query i sees keys i - 3 … i only
        assert torch.all(maps[0].tril(diagonal=-4) == 0) and maps[1, :, -1, 0].min() > 0


def test_a_wrong_recomputation_fails_loudly():
    model = _model()
    model.layers[1].attn.forward = lambda *a, _f=model.layers[1].attn.forward: _f(*a) * 2
    with pytest.raises(AssertionError):
        attention_maps(model, torch.tensor([[1, 2, 3, 4, 5]]))


def test_scores_name_the_patterns():
    t = 10
    shift = torch.diag(torch.ones(t - 1), -1)
    shift[0, 0] = 1.0  # previous-token head (the first query has only itself)
    sink = torch.zeros(t, t)
    sink[:, 0] = 1.0
    maps = torch.stack([shift, sink])[None]  # (1, 2, T, T)
    torch.testing.assert_close(previous_token_score(maps), torch.tensor([[1.0, 1 / (t - 1)]]))
    torch.testing.assert_close(first_token_score(maps), torch.tensor([[0.0, 1.0]]))


def test_mla_is_refused():
    cfg = ModelConfig(**BASE, kv_lora_rank=8, qk_nope_head_dim=8, qk_rope_head_dim=4,
                      v_head_dim=8)  # fmt: skip
    with pytest.raises(ValueError, match="MLA"):
        attention_maps(Transformer(cfg, device="cpu"), torch.tensor([[1, 2, 3]]))
