"""Normalisation layers: LayerNorm, RMSNorm (plain and Gemma's 1 + w) and QK-norm.

API
- `layer_norm(x, weight=None, bias=None, eps=1e-5) -> Tensor` (..., d) -> (..., d)
- `rms_norm(x, weight=None, eps=1e-6, *, offset=0.0, scale_in_fp32=False) -> Tensor`
- `LayerNorm(dim, eps=1e-5, bias=True)`: parameters `weight`, `bias` (as `nn.LayerNorm`)
- `RMSNorm(dim, eps=1e-6, zero_centered=False, *, scale_in_fp32=None)`: parameter `weight`
- `qk_norm(x, weight, n_heads, eps=1e-6, *, per_head=False, offset=0.0, scale_in_fp32=False)`
- `QKNorm(n_heads, head_dim, eps=1e-6, *, per_head=False, zero_centered=False,
  scale_in_fp32=False)`

LayerNorm (Ba et al. 2016, arXiv:1607.06450) centres and scales each vector;
RMSNorm (Zhang & Sennrich 2019, arXiv:1910.07467) only rescales by the root mean square,
y = x / sqrt(mean(x^2) + eps) * g, saving the mean and the bias.

Precision follows Hugging Face: the statistics are computed in float32 (or float64 when the
input is float64) and the result is cast back to the input dtype. Where the gain is applied
differs between model families, which matters in bf16 and not at all in float32:
- Llama, Mistral, Mixtral, Qwen 2, DeepSeek-V3: `weight * x_hat.to(dtype)` (the default);
- Gemma / Gemma 2: `(x_hat * (1 + weight.float())).to(dtype)`, i.e. `offset=1` and
  `scale_in_fp32=True`; the stored weight is zero-centred (initialised to 0);
- OLMo 2: `(weight * x_hat).to(dtype)`, i.e. `scale_in_fp32=True`.

Placement is a model concern (course_lib.models): pre-norm (GPT-2, Llama: x + f(norm(x))),
post-norm of the original Transformer (norm(x + f(x))), OLMo 2's norm on the sub-layer
output (x + norm(f(x))) and Gemma 2's "sandwich" (x + norm(f(norm(x)))).

QK-norm normalises queries and keys before RoPE (Henry et al. 2020, arXiv:2010.04245;
popularised by ViT-22B, Dehghani et al. 2023, arXiv:2302.05442).
OLMo 2 applies one RMSNorm over the whole projection (n_heads * head_dim features,
`per_head=False`); Qwen 3 and Gemma 3 normalise each head over head_dim (`per_head=True`),
Gemma 3 with its zero-centred (1 + w) gain in float32 (`offset=1`, `scale_in_fp32=True`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 for half/bfloat16/float32 inputs, float64 for float64 inputs."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def layer_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """LayerNorm over the last dim (Ba et al. 2016): (x - mean) / sqrt(var + eps) * w + b.

    x (..., d); weight, bias (d,). The variance is the biased one (divide by d), as in
    `torch.nn.functional.layer_norm`. Statistics in float32; returns x's dtype.
    """
    h = x.to(_compute_dtype(x))
    mean = h.mean(-1, keepdim=True)
    var = (h - mean).pow(2).mean(-1, keepdim=True)
    y = (h - mean) * torch.rsqrt(var + eps)
    if weight is not None:
        y = y * weight.to(y.dtype)
    if bias is not None:
        y = y + bias.to(y.dtype)
    return y.to(x.dtype)


def rms_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    eps: float = 1e-6,
    *,
    offset: float = 0.0,
    scale_in_fp32: bool = False,
) -> torch.Tensor:
    """RMSNorm over the last dim (Zhang & Sennrich 2019): x / sqrt(mean(x^2) + eps) * (offset + w).

    x (..., d); weight (d,) or None (no gain). `offset=1` is Gemma's zero-centred gain
    (1 + w). `scale_in_fp32` multiplies by the gain before casting back to x's dtype
    (Gemma, OLMo 2) instead of after (Llama); see the module docstring. The normalisation
    is PyTorch's `F.rms_norm`, which computes in float32 (float64) and returns x's dtype:
    the same arithmetic in one operator call instead of seven (each call has a fixed cost,
    and a decoding step runs two norms per layer).
    """
    shape = (x.shape[-1],)
    if weight is not None and scale_in_fp32:
        dtype = _compute_dtype(x)
        x_hat = F.rms_norm(x if x.dtype == dtype else x.to(dtype), shape, None, eps)
        gain = weight.to(dtype)
        return (x_hat * (gain + offset if offset else gain)).to(x.dtype)
    if weight is not None and not offset and x.dtype == weight.dtype == _compute_dtype(x):
        return F.rms_norm(x, shape, weight, eps)  # float32/64: the gain too in one call
    x_hat = F.rms_norm(x, shape, None, eps)  # computed in float32 (float64), x's dtype out
    if weight is None:
        return x_hat
    return (weight + offset if offset else weight) * x_hat


class LayerNorm(nn.Module):
    """LayerNorm with a gain and an optional bias; state_dict keys match `nn.LayerNorm`."""

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}, bias={self.bias is not None}"


class RMSNorm(nn.Module):
    """RMSNorm with gain `weight` (d,).

    `zero_centered=True` is Gemma's variant: weight initialised to 0 and applied as
    (1 + weight), in float32 (unless `scale_in_fp32` says otherwise). OLMo 2 passes
    `scale_in_fp32=True` with `zero_centered=False`.
    """

    def __init__(
        self,
        dim: int,
        eps: float = 1e-6,
        zero_centered: bool = False,
        *,
        scale_in_fp32: bool | None = None,
    ) -> None:
        super().__init__()
        self.eps = eps
        self.zero_centered = zero_centered
        self.scale_in_fp32 = zero_centered if scale_in_fp32 is None else scale_in_fp32
        self.weight = nn.Parameter(torch.zeros(dim) if zero_centered else torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(
            x,
            self.weight,
            self.eps,
            offset=1.0 if self.zero_centered else 0.0,
            scale_in_fp32=self.scale_in_fp32,
        )

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}, zero_centered={self.zero_centered}"


def qk_norm(
    x: torch.Tensor,
    weight: torch.Tensor,
    n_heads: int,
    eps: float = 1e-6,
    *,
    per_head: bool = False,
    offset: float = 0.0,
    scale_in_fp32: bool = False,
) -> torch.Tensor:
    """RMSNorm of a query or key projection x (..., n_heads * head_dim), same shape out.

    per_head=False: one norm over all n_heads * head_dim features, weight (n_heads * head_dim,)
    (OLMo 2). per_head=True: each head normalised over head_dim, weight (head_dim,) shared by
    the heads (Qwen 3, Gemma 3). offset=1: Gemma's gain (1 + w), see `rms_norm`.
    """
    kw = dict(offset=offset, scale_in_fp32=scale_in_fp32)
    if not per_head:
        return rms_norm(x, weight, eps, **kw)
    heads = x.unflatten(-1, (n_heads, -1))  # (..., n_heads, head_dim)
    return rms_norm(heads, weight, eps, **kw).flatten(-2)


class QKNorm(nn.Module):
    """QK-norm for one projection (make one for q with n_heads, one for k with n_kv_heads)."""

    def __init__(
        self,
        n_heads: int,
        head_dim: int,
        eps: float = 1e-6,
        *,
        per_head: bool = False,
        zero_centered: bool = False,
        scale_in_fp32: bool = False,
    ) -> None:
        super().__init__()
        self.n_heads, self.eps = n_heads, eps
        self.per_head, self.zero_centered, self.scale_in_fp32 = (
            per_head,
            zero_centered,
            scale_in_fp32,
        )
        dim = head_dim if per_head else n_heads * head_dim
        self.weight = nn.Parameter(torch.zeros(dim) if zero_centered else torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return qk_norm(
            x,
            self.weight,
            self.n_heads,
            self.eps,
            per_head=self.per_head,
            offset=1.0 if self.zero_centered else 0.0,
            scale_in_fp32=self.scale_in_fp32,
        )
