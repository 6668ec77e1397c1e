"""The single-file GPT equals the configurable Transformer on the same weights."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.models import count_parameters
from course_lib.models.gpt import GPT, GPTConfig, to_transformer


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpt_equals_transformer(arch: str, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=50, block_size=24, n_layer=2, n_head=4, n_embd=32, arch=arch)
    gpt = GPT(config)
    with torch.no_grad():  # non-trivial norm gains and biases
        for p in gpt.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    reference = to_transformer(gpt)
    gpt, reference = gpt.to(dtype), reference.to(dtype)
    idx = torch.randint(0, 50, (3, 24))
    expected = reference(idx).float()
    got = gpt(idx).float()
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=0.05, rtol=0.05)
    torch.testing.assert_close(got, expected, **tol)
    assert sum(p.numel() for p in gpt.parameters()) == count_parameters(config.to_model_config())


def test_residual_projections_are_scaled_at_init() -> None:
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(n_layer=8, n_embd=128, n_head=4))
    std = gpt.h[0].attn.c_proj.weight.std().item()
    assert math.isclose(std, 0.02 / math.sqrt(16), rel_tol=0.05)
    assert math.isclose(gpt.h[0].attn.c_attn.weight.std().item(), 0.02, rel_tol=0.05)
    assert gpt.lm_head.weight is gpt.wte.weight


def test_context_longer_than_block_size_is_refused() -> None:
    gpt = GPT(GPTConfig(block_size=8))
    with pytest.raises(ValueError, match="block_size"):
        gpt(torch.zeros(1, 9, dtype=torch.long))
