"""course_lib.kernels.activations against the formulas and HF's LlamaMLP, Gemma2MLP, GPT2MLP."""

import math

import pytest
import torch
from transformers import Gemma2Config, GPT2Config, LlamaConfig
from transformers.activations import ACT2FN
from transformers.models.gemma2.modeling_gemma2 import Gemma2MLP
from transformers.models.gpt2.modeling_gpt2 import GPT2MLP
from transformers.models.llama.modeling_llama import LlamaMLP

from course_lib.kernels import ACTIVATIONS, MLP, GeGLU, SwiGLU, gelu, gelu_new, gelu_tanh, silu

DIM, HIDDEN = 16, 40


def _x(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 3


def test_activation_formulas():
    x = _x(1000)
    tanh_formula = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    torch.testing.assert_close(gelu_tanh(x), tanh_formula)
    torch.testing.assert_close(gelu_new(x), tanh_formula)
    torch.testing.assert_close(gelu(x), x * 0.5 * (1 + torch.erf(x / math.sqrt(2))))
    torch.testing.assert_close(silu(x), x * torch.sigmoid(x))
    assert (gelu_tanh(x) - gelu(x)).abs().max() < 1e-3  # the tanh approximation is close


@pytest.mark.parametrize("name", ["gelu_new", "gelu_pytorch_tanh", "gelu", "silu", "relu"])
def test_named_activations_match_hf_bit_for_bit(name):
    x = _x(500, dtype=torch.float32)
    torch.testing.assert_close(ACTIVATIONS[name](x), ACT2FN[name](x), rtol=0, atol=0)


def _init(module, seed):
    torch.manual_seed(seed)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return module


def test_swiglu_matches_llama_mlp():
    cfg = LlamaConfig(
        hidden_size=DIM,
        num_attention_heads=2,
        intermediate_size=HIDDEN,
        hidden_act="silu",
        mlp_bias=True,
    )
    hf = _init(LlamaMLP(cfg), 1)
    mine = SwiGLU(DIM, HIDDEN, bias=True)
    mine.load_state_dict(hf.state_dict())
    x = _x(2, 5, DIM, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(mine(x), hf(x))


def test_geglu_matches_gemma2_mlp():
    cfg = Gemma2Config(
        hidden_size=DIM,
        num_attention_heads=2,
        head_dim=8,
        intermediate_size=HIDDEN,
        hidden_activation="gelu_pytorch_tanh",
    )
    hf = _init(Gemma2MLP(cfg), 2)
    mine = GeGLU(DIM, HIDDEN)
    mine.load_state_dict(hf.state_dict())
    x = _x(2, 5, DIM, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(mine(x), hf(x))


def test_mlp_matches_gpt2_mlp_with_transposed_conv1d_weights():
    cfg = GPT2Config(
        n_embd=DIM, n_head=2, n_inner=HIDDEN, activation_function="gelu_new", resid_pdrop=0.0
    )
    hf = _init(GPT2MLP(HIDDEN, cfg), 3).eval()
    mine = MLP(DIM, HIDDEN)
    with torch.no_grad():
        for name in ("c_fc", "c_proj"):  # HF Conv1D stores (in, out); nn.Linear (out, in)
            getattr(mine, name).weight.copy_(getattr(hf, name).weight.T)
            getattr(mine, name).bias.copy_(getattr(hf, name).bias)
        x = _x(2, 5, DIM, dtype=torch.float32)
        torch.testing.assert_close(mine(x), hf(x))


def test_gated_mlp_formula_and_unknown_activation():
    mine = SwiGLU(DIM, HIDDEN).double()
    x = _x(3, DIM)
    with torch.no_grad():
        gate, up, down = mine.gate_proj.weight, mine.up_proj.weight, mine.down_proj.weight
        h = x @ gate.T
        expected = (h * torch.sigmoid(h) * (x @ up.T)) @ down.T  # Shazeer 2020, eq. 6 (FFN_SwiGLU)
        torch.testing.assert_close(mine(x), expected)
    with pytest.raises(ValueError, match="activation"):
        MLP(DIM, HIDDEN, activation="swishy")
