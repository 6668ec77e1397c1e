"""from_hf parity for the dense families without extra norms: GPT-2, Llama, Mistral, Qwen 2.

The reference is the transformers model itself, on the same random weights (eager attention,
float32). Each feature a family adds is shown to matter: switching it off in our model
moves the logits far beyond the tolerance, so the parity test really exercises it.
"""

import pytest
import torch

from course_lib.models import from_hf
from course_lib.models.hf_tiny import (
    SEQ_LEN,
    assert_logits_match,
    tiny_hf_model,
    tiny_input_ids,
    variant_logits,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=["gpt2", "llama", "mistral", "qwen2"])
def pair(request):
    hf = tiny_hf_model(request.param)
    return hf, from_hf(hf)


def test_logits_equal_transformers(pair):
    hf, ours = pair
    assert_logits_match(ours, hf, tiny_input_ids())


def test_single_sequence_and_short_input(pair):
    hf, ours = pair
    assert_logits_match(ours, hf, tiny_input_ids(batch=1, seq_len=1))


def test_config_read_from_transformers():
    cfgs = {f: from_hf(tiny_hf_model(f)).cfg for f in ("gpt2", "llama", "mistral", "qwen2")}
    assert cfgs["gpt2"].position == "learned" and cfgs["gpt2"].tie_embeddings
    assert cfgs["llama"].n_heads // cfgs["llama"].n_kv_heads == 2  # GQA
    assert cfgs["llama"].rope_scaling.kind == "llama3"
    assert cfgs["mistral"].n_kv_heads == 1 and cfgs["mistral"].sliding_window < SEQ_LEN  # MQA
    assert cfgs["qwen2"].layer_pattern == ("global", "local") and cfgs["qwen2"].qkv_bias


def far(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (a - b).abs().max().item() > 1e-2


@pytest.mark.parametrize(
    ("family", "changes"),
    [
        ("llama", {"rope_scaling": None}),  # Llama 3.1 frequency scaling is active
        ("mistral", {"layer_pattern": ("global",)}),  # the window is shorter than the input
        ("qwen2", {"layer_pattern": ("global",)}),  # Qwen 2's sliding layers (>= max_window_layers)
        ("gpt2", {"activation": "relu"}),
    ],
)
def test_features_are_exercised(family, changes):
    hf = tiny_hf_model(family)
    ours, ids = from_hf(hf), tiny_input_ids()
    with torch.no_grad():
        assert far(variant_logits(ours, ids, **changes), hf(ids).logits)


def test_first_divergent_layer_points_at_the_broken_layer():
    from course_lib.models import first_divergent_layer

    hf = tiny_hf_model("llama")
    ours = from_hf(hf)
    with torch.no_grad():
        ours.layers[1].mlp.down_proj.weight.mul_(1.01)
    first, report = first_divergent_layer(ours, hf, tiny_input_ids())
    assert first == 1, report
    assert "layer 0" in report and "logits" in report
