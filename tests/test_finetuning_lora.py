"""LoRA from scratch against Hugging Face peft on the same weights and adapters."""

import copy

import pytest
import torch
from torch import nn

from course_lib.finetuning import (
    LoRALinear,
    apply_lora,
    lora_parameter_count,
    merge_lora,
    optimizer_state_bytes,
    trainable_parameters,
    unmerge_lora,
)

peft = pytest.importorskip("peft")


class OneLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(12, 7)

    def forward(self, x):
        return self.proj(x)


def peft_wrap(module: nn.Module, targets: list[str], r: int, alpha: float):
    config = peft.LoraConfig(target_modules=targets, r=r, lora_alpha=alpha, lora_dropout=0.0)
    return peft.get_peft_model(module, config)


def randomize_adapters_(peft_model, seed: int = 0) -> None:
    """peft initialises B to zero; give it values so the comparison is not trivially equal."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def copy_adapter(ours: LoRALinear, theirs) -> None:
    with torch.no_grad():
        ours.lora_A.copy_(theirs.lora_A["default"].weight)
        ours.lora_B.copy_(theirs.lora_B["default"].weight)


def test_lora_linear_starts_at_base_and_freezes_it(one_thread):
    torch.manual_seed(0)
    base = nn.Linear(10, 6)
    x = torch.randn(3, 4, 10)
    expected = base(x)
    layer = LoRALinear(base, r=4, alpha=8)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=0)  # B = 0 at init
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]
    layer(x).sum().backward()
    assert base.weight.grad is None and layer.lora_B.grad is not None


def test_lora_linear_equals_peft_forward_and_merge(one_thread):
    torch.manual_seed(1)
    module = OneLinear()
    ours = LoRALinear(copy.deepcopy(module.proj), r=3, alpha=6)
    theirs = peft_wrap(module, ["proj"], r=3, alpha=6)
    randomize_adapters_(theirs)
    peft_layer = theirs.base_model.model.proj
    copy_adapter(ours, peft_layer)
    x = torch.randn(5, 12)
    torch.testing.assert_close(ours(x), theirs(x))
    assert not torch.equal(ours(x), ours.base(x))  # the adapter contributes

    ours.merge()
    merged = theirs.merge_and_unload()
    torch.testing.assert_close(ours.base.weight, merged.proj.weight)
    torch.testing.assert_close(ours(x), merged(x))


def test_unmerge_restores_the_base_weight(one_thread):
    torch.manual_seed(2)
    layer = LoRALinear(nn.Linear(9, 4), r=2, alpha=4)
    with torch.no_grad():
        layer.lora_B.normal_()
    w0 = layer.base.weight.clone()
    x = torch.randn(3, 9)
    before = layer(x)
    layer.merge()
    assert not torch.allclose(layer.base.weight, w0)
    torch.testing.assert_close(layer(x), before)
    layer.unmerge()
    torch.testing.assert_close(layer.base.weight, w0)
    torch.testing.assert_close(layer(x), before)


def test_apply_lora_on_course_transformer_equals_peft_on_hf(one_thread):
    from course_lib.models import from_hf
    from course_lib.models.hf_tiny import tiny_hf_model, tiny_input_ids

    hf = tiny_hf_model("llama")
    ours = from_hf(hf)
    theirs = peft_wrap(copy.deepcopy(hf), ["q_proj", "v_proj"], r=4, alpha=8)
    randomize_adapters_(theirs, seed=3)
    names = apply_lora(ours, ("q_proj", "v_proj"), r=4, alpha=8)
    assert len(names) == 2 * hf.config.num_hidden_layers
    hf_layers = theirs.base_model.model.model.layers
    for i, block in enumerate(ours.layers):
        copy_adapter(block.attn.q_proj, hf_layers[i].self_attn.q_proj)
        copy_adapter(block.attn.v_proj, hf_layers[i].self_attn.v_proj)

    n_peft, _ = theirs.get_nb_trainable_parameters()
    assert trainable_parameters(ours) == n_peft
    shapes = [tuple(m.base.weight.shape) for m in ours.modules() if isinstance(m, LoRALinear)]
    assert lora_parameter_count(shapes, r=4) == n_peft

    ids = tiny_input_ids()
    theirs.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), theirs(ids).logits, rtol=1e-4, atol=1e-5)
        merge_lora(ours)
        torch.testing.assert_close(ours(ids), theirs(ids).logits, rtol=1e-4, atol=1e-5)
        unmerge_lora(ours)
        torch.testing.assert_close(ours(ids), theirs(ids).logits, rtol=1e-4, atol=1e-5)


def test_optimizer_state_is_two_moments_per_trainable_parameter(one_thread):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 8))
    apply_lora(model, ("0", "2"), r=2, alpha=4)
    n = trainable_parameters(model)
    assert n == lora_parameter_count([(16, 16), (8, 16)], r=2)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(torch.randn(4, 16)).sum().backward()
    opt.step()
    steps = len(opt.state)  # AdamW keeps one scalar step count per parameter tensor
    assert optimizer_state_bytes(opt) == 2 * n * 4 + steps * 4


def test_apply_lora_names_missing_targets():
    with pytest.raises(ValueError, match="no nn.Linear named"):
        apply_lora(nn.Sequential(nn.Linear(2, 2)), ("q_proj",))


def test_lora_over_an_int4_base_trains_and_refuses_to_merge(one_thread):
    from course_lib.kernels.quant import QuantLinear

    torch.manual_seed(5)
    linear = nn.Linear(64, 8)
    qlora = LoRALinear(QuantLinear(linear, "int4", group_size=32), r=2, alpha=4)
    x = torch.randn(3, 64)
    torch.testing.assert_close(qlora(x), qlora.base(x), rtol=0, atol=0)  # B = 0
    assert (qlora(x) - linear(x)).abs().max() > 0  # the codes are an approximation
    qlora(x).sum().backward()
    assert qlora.lora_B.grad.abs().sum() > 0 and qlora.lora_A.dtype == torch.float32
    with pytest.raises(TypeError, match="cannot merge"):
        qlora.merge()
