"""Activations and feed-forward blocks: GELU (tanh), SiLU, the GPT-2 MLP, SwiGLU and GeGLU.

API
- `gelu_tanh(x)`: GELU, tanh approximation, PyTorch's fused op (HF "gelu_pytorch_tanh", Gemma 2)
- `gelu_new(x)`: the same formula written out, as OpenAI GPT-2 and HF "gelu_new"
- `gelu(x)`: exact GELU x * Phi(x); `silu(x)`: x * sigmoid(x); `relu(x)`
- `clamped_swiglu(gate, up, alpha=1.702, limit=7.0)`: gpt-oss's clamped GLU of its experts
- `ACTIVATIONS: dict[str, Callable]`: these by their Hugging Face config names;
  `get_activation(name)` looks one up
- `MLP(dim, hidden_dim, activation="gelu_new", bias=True)`: c_fc -> act -> c_proj (GPT-2)
- `GatedMLP(dim, hidden_dim, activation="silu", bias=False)`: gate_proj, up_proj, down_proj;
  `.fuse()` merges gate_proj and up_proj into one `gate_up_proj` for decoding
- `fuse_linears(*linears) -> nn.Linear`: one layer whose output concatenates theirs
- `SwiGLU(dim, hidden_dim, bias=False)`, `GeGLU(dim, hidden_dim, bias=False)`: GatedMLP with
  SiLU resp. GELU-tanh

GELU (Hendrycks & Gimpel 2016, arXiv:1606.08415) and its tanh approximation
0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). SiLU / Swish (Ramachandran et al. 2017).
GLU variants (Shazeer 2020, arXiv:2002.05202): FFN(x) = (act(x W_gate) * (x W_up)) W_down;
SwiGLU in Llama, Mistral, Qwen 2, OLMo 2, DeepSeek; GeGLU (tanh GELU) in Gemma.

Parameter names follow Hugging Face so that state dicts load directly: `gate_proj`,
`up_proj`, `down_proj` as in LlamaMLP; GPT-2's `c_fc`, `c_proj` are `nn.Linear` here, whereas
HF GPT-2 stores them as `Conv1D` with weights of shape (in, out): transpose when loading.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU with the tanh approximation, PyTorch's fused kernel (Hendrycks & Gimpel 2016)."""
    return F.gelu(x, approximate="tanh")


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), written out as in OpenAI's GPT-2 code.

    Equal to `gelu_tanh` up to rounding; kept separate so GPT-2 matches HF bit for bit.
    """
    return (
        0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    )


def gelu(x: torch.Tensor) -> torch.Tensor:
    """Exact GELU x * Phi(x), Phi the standard normal CDF."""
    return F.gelu(x)


def silu(x: torch.Tensor) -> torch.Tensor:
    """SiLU / Swish-1: x * sigmoid(x) (Elfwing et al. 2017; Ramachandran et al. 2017)."""
    return F.silu(x)


def relu(x: torch.Tensor) -> torch.Tensor:
    """max(x, 0)."""
    return F.relu(x)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu_new": gelu_new,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_tanh": gelu_tanh,
    "gelu": gelu,
    "silu": silu,
    "swish": silu,
    "relu": relu,
}


def clamped_swiglu(
    gate: torch.Tensor, up: torch.Tensor, alpha: float = 1.702, limit: float = 7.0
) -> torch.Tensor:
    """gpt-oss's GLU (OpenAI 2025, gpt-oss model card): (clamp(up, -l, l) + 1) * g sigmoid(alpha g),
    g = min(gate, l). alpha = 1.702 makes g sigmoid(alpha g) the sigmoid approximation of GELU;
    the clamps bound the activations, the + 1 adds a residual path through the up projection.
    """
    gate = gate.clamp(max=limit)
    up = up.clamp(min=-limit, max=limit)
    return (up + 1) * (gate * torch.sigmoid(gate * alpha))


def get_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation called `name` in `ACTIVATIONS`; a ValueError lists the known names."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


@torch.no_grad()
def fuse_linears(*linears: nn.Linear) -> nn.Linear:
    """One nn.Linear computing the concatenation of the outputs of `linears` (same input):
    their weights (and biases) stacked along the outputs. Each output is the same dot
    product as before, so the results are unchanged; splitting them back is a view."""
    first = linears[0]
    fused = nn.Linear(
        first.in_features,
        sum(m.out_features for m in linears),
        bias=first.bias is not None,
        device=first.weight.device,
        dtype=first.weight.dtype,
    )
    fused.weight.copy_(torch.cat([m.weight for m in linears]))
    if first.bias is not None:
        fused.bias.copy_(torch.cat([m.bias for m in linears]))
    return fused


class MLP(nn.Module):
    """Position-wise feed-forward of GPT-2: c_proj(act(c_fc(x))), (..., dim) -> (..., dim)."""

    def __init__(
        self, dim: int, hidden_dim: int, activation: str = "gelu_new", bias: bool = True
    ) -> None:
        super().__init__()
        self.activation = activation
        self.act = get_activation(activation)
        self.c_fc = nn.Linear(dim, hidden_dim, bias=bias)
        self.c_proj = nn.Linear(hidden_dim, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.act(self.c_fc(x)))  # (..., hidden_dim) in between


class GatedMLP(nn.Module):
    """GLU feed-forward (Shazeer 2020): down_proj(act(gate_proj(x)) * up_proj(x))."""

    def __init__(
        self, dim: int, hidden_dim: int, activation: str = "silu", bias: bool = False
    ) -> None:
        super().__init__()
        self.activation = activation
        self.act = get_activation(activation)
        self.gate_proj = nn.Linear(dim, hidden_dim, bias=bias)
        self.up_proj = nn.Linear(dim, hidden_dim, bias=bias)
        self.down_proj = nn.Linear(hidden_dim, dim, bias=bias)
        self.gate_up_proj: nn.Linear | None = None  # see `fuse`

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate_up_proj is None:
            gate, up = self.gate_proj(x), self.up_proj(x)  # (..., hidden_dim) each
        else:  # fused by `fuse`: one matrix product, two views of its output
            gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(self.act(gate) * up)

    def fuse(self) -> None:
        """Replace gate_proj and up_proj by one `gate_up_proj` reading both matrices (for
        decoding: one kernel call instead of two; the same outputs, state_dict keys change)."""
        if self.gate_up_proj is None:
            self.gate_up_proj = fuse_linears(self.gate_proj, self.up_proj)
            del self.gate_proj, self.up_proj


class SwiGLU(GatedMLP):
    """GatedMLP with SiLU (Llama, Mistral, Qwen 2, OLMo 2, DeepSeek)."""

    def __init__(self, dim: int, hidden_dim: int, bias: bool = False) -> None:
        super().__init__(dim, hidden_dim, activation="silu", bias=bias)


class GeGLU(GatedMLP):
    """GatedMLP with tanh-approximated GELU (Gemma, Gemma 2)."""

    def __init__(self, dim: int, hidden_dim: int, bias: bool = False) -> None:
        super().__init__(dim, hidden_dim, activation="gelu_pytorch_tanh", bias=bias)
