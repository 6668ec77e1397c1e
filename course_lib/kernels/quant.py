"""Weight quantization: row-wise int8 and fp8-e4m3, group-wise int4, dequantized matmul.

- int8, row-wise absmax (one scale per output channel; LLM.int8() without the outlier
  split, Dettmers et al. 2022, arXiv:2208.07339): s_r = max_j |W_rj| / 127,
  q = round(W / s_r) in [-127, 127], so |W - s_r q| <= s_r / 2 element-wise.
- fp8 e4m3, row-wise (Llama 3, Dubey et al. 2024, arXiv:2407.21783, Sec. 6.2): the row's
  absmax maps to 448, the largest e4m3 value; for activations the absmax is clamped to an
  upper bound (Llama 3 uses 1200) so that a single outlier token cannot flatten its row.
  Llama 3 quantizes only the feed-forward matmuls and keeps attention and the first and
  last Transformer layers in bf16 (see `quantize_model`).
- int4, group-wise absmax (one scale per `group_size` consecutive inputs of a row;
  Dettmers & Zettlemoyer 2023, arXiv:2212.09720): s = absmax / 7, q in [-8, 7], stored as
  q + 8 with two nibbles per uint8 byte (even column in the low nibble).

Scales are kept in float32; `QuantizedTensor.nbytes` counts the packed weights plus the
scales exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch

import torch

SCHEMES = ("int8", "fp8", "int4")
FP8_MAX = 448.0  # largest finite float8_e4m3fn
LLAMA3_FP8_SCALE_UB = 1200.0  # Llama 3's upper bound on the dynamic (activation) row max


@dataclass
class QuantizedTensor:
    """A quantized (out, in) weight: stored codes, float32 scales and how to read them."""

    data: torch.Tensor  # int8 (out, in) | float8_e4m3fn (out, in) | uint8 (out, in // 2)
    scale: torch.Tensor  # float32: (out, 1) row-wise, or (out, in // group_size) for int4
    scheme: str
    shape: tuple[int, int]
    group_size: int | None = None

    @property
    def nbytes(self) -> int:
        """Exact storage: packed codes plus scales, in bytes."""
        return (
            self.data.numel() * self.data.element_size()
            + self.scale.numel() * self.scale.element_size()
        )

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The (out, in) weight the codes stand for, in `dtype`."""
        if self.scheme == "int4":
            out, n_in = self.shape
            q = unpack_int4(self.data).float().view(out, n_in // self.group_size, self.group_size)
            return (q * self.scale[..., None]).view(out, n_in).to(dtype)
        return (self.data.float() * self.scale).to(dtype)


def _row_absmax(w: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """max |w| along `dim` (kept), floored so an all-zero row gets a finite scale."""
    return w.float().abs().amax(dim=dim, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny)


def quantize_int8_rowwise(w: torch.Tensor) -> QuantizedTensor:
    """Row-wise (per output channel) absmax int8 of a (out, in) weight."""
    scale = _row_absmax(w) / 127.0  # (out, 1)
    q = torch.round(w.float() / scale).clamp(-127, 127).to(torch.int8)
    return QuantizedTensor(q, scale, "int8", tuple(w.shape))


def quantize_fp8_rowwise(w: torch.Tensor, scale_ub: float | None = None) -> QuantizedTensor:
    """Row-wise fp8-e4m3 of a 2-D tensor; `scale_ub` clamps each row's absmax first.

    The codes are torch.float8_e4m3fn (a storage and cast type on CPU). With scale_ub,
    entries beyond the bound saturate at +-448 codes (+-scale_ub after dequantization).
    """
    amax = _row_absmax(w)
    if scale_ub is not None:
        amax = amax.clamp(max=scale_ub)
    scale = amax / FP8_MAX  # (rows, 1)
    q = (w.float() / scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    return QuantizedTensor(q, scale, "fp8", tuple(w.shape))


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """Pack int4 codes in [-8, 7], shape (..., 2n), into uint8 (..., n): even index low nibble."""
    if q.shape[-1] % 2:
        raise ValueError(f"the last dimension must be even to pack nibbles, got {q.shape[-1]}")
    u = (q.to(torch.int16) + 8).to(torch.uint8)  # 0 ... 15
    return u[..., 0::2] | (u[..., 1::2] << 4)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """Inverse of `pack_int4`: uint8 (..., n) -> int8 codes (..., 2n) in [-8, 7]."""
    low = (packed & 0x0F).to(torch.int8) - 8
    high = (packed >> 4).to(torch.int8) - 8
    return torch.stack((low, high), dim=-1).flatten(-2)


def quantize_int4_groupwise(w: torch.Tensor, group_size: int = 128) -> QuantizedTensor:
    """Group-wise absmax int4 of a (out, in) weight, packed two codes per byte."""
    out, n_in = w.shape
    if group_size % 2 or n_in % group_size:
        raise ValueError(
            f"in_features={n_in} must be a multiple of an even group_size={group_size}"
        )
    groups = w.float().view(out, n_in // group_size, group_size)
    scale = _row_absmax(groups) / 7.0  # (out, n_groups, 1)
    q = torch.round(groups / scale).clamp(-8, 7).view(out, n_in)
    return QuantizedTensor(pack_int4(q), scale.squeeze(-1), "int4", (out, n_in), group_size)


def quantize(w: torch.Tensor, scheme: str, group_size: int = 128) -> QuantizedTensor:
    """Quantize a (out, in) weight with scheme "int8", "fp8" or "int4"."""
    if scheme == "int8":
        return quantize_int8_rowwise(w)
    if scheme == "fp8":
        return quantize_fp8_rowwise(w)
    if scheme == "int4":
        return quantize_int4_groupwise(w, group_size)
    raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")


def quantized_matmul(
    x: torch.Tensor,
    w: QuantizedTensor,
    bias: torch.Tensor | None = None,
    act_scale_ub: float | None = None,
) -> torch.Tensor:
    """y = x @ W^T (+ bias) for x (..., in) and a quantized (out, in) weight, in float32 math.

    Row-wise schemes factor the scale out of the sum, y[..., o] = s_o * (x @ q^T)[..., o],
    so the product runs on the codes. With `act_scale_ub` (fp8 only) the activations are
    also quantized per token to fp8 with that bound, as in Llama 3's FP8 inference. int4
    is dequantized first, since its scale changes along the summed dimension.
    Returns x's dtype.
    """
    xf = x.float()
    if w.scheme == "int4":
        y = xf @ w.dequantize().T
    else:
        if act_scale_ub is not None:
            if w.scheme != "fp8":
                raise ValueError("activation quantization (act_scale_ub) is for the fp8 scheme")
            xq = quantize_fp8_rowwise(xf.reshape(-1, xf.shape[-1]), scale_ub=act_scale_ub)
            xf = xq.dequantize().view_as(xf)
        y = (xf @ w.data.float().T) * w.scale.view(-1)  # (..., out)
    if bias is not None:
        y = y + bias.float()
    return y.to(x.dtype)


class QuantLinear(torch.nn.Module):
    """Drop-in replacement for nn.Linear holding a quantized weight (dequantized matmul)."""

    def __init__(
        self,
        linear: torch.nn.Linear,
        scheme: str,
        group_size: int = 128,
        act_scale_ub: float | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = quantize(linear.weight.detach(), scheme, group_size)
        self.scheme, self.group_size, self.act_scale_ub = scheme, w.group_size, act_scale_ub
        self.register_buffer("weight_data", w.data)
        self.register_buffer("weight_scale", w.scale)
        self.bias = (
            None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().clone())
        )

    @property
    def weight_q(self) -> QuantizedTensor:
        """The quantized weight, (out, in)."""
        shape = (self.out_features, self.in_features)
        return QuantizedTensor(
            self.weight_data, self.weight_scale, self.scheme, shape, self.group_size
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (..., in) -> (..., out)
        return quantized_matmul(x, self.weight_q, self.bias, self.act_scale_ub)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, scheme={self.scheme}"


def _is_attention(name: str) -> bool:
    return any("attn" in part.lower() or "attention" in part.lower() for part in name.split("."))


def _first_last_prefixes(model: torch.nn.Module, linears: list[str]) -> list[str]:
    """Name prefixes of the first and last Transformer layers.

    The layers are taken to be the longest nn.ModuleList in the model (how every decoder
    stores its blocks); a model without one has its first and last Linear kept instead.
    """
    lists = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.ModuleList)]
    if lists:
        name, blocks = max(lists, key=lambda item: len(item[1]))
        if len(blocks):
            stem = f"{name}." if name else ""
            return [f"{stem}0.", f"{stem}{len(blocks) - 1}."]
    return [f"{linears[0]}.", f"{linears[-1]}."] if linears else []


def quantize_model(
    model: torch.nn.Module,
    scheme: str,
    skip: tuple[str, ...] | list[str] = (),
    *,
    keep_first_last: bool = False,
    keep_attention: bool = False,
    group_size: int = 128,
    act_scale_ub: float | None = None,
) -> dict[str, str]:
    """Replace the nn.Linear layers of any model by QuantLinear, in place.

    skip: fnmatch patterns of qualified module names kept in full precision (e.g.
    "lm_head", "*.attn.*"). keep_first_last keeps the first and last Transformer layers,
    keep_attention every Linear whose name mentions attn/attention: with scheme="fp8" and
    act_scale_ub=LLAMA3_FP8_SCALE_UB this is Llama 3's FP8 recipe. Returns
    {module name: scheme or "kept"} for every Linear.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    linears = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    kept_prefixes = _first_last_prefixes(model, linears) if keep_first_last else []
    report = {}
    for name in linears:
        keep = (
            any(fnmatch(name, pattern) for pattern in skip)
            or any(f"{name}.".startswith(prefix) for prefix in kept_prefixes)
            or (keep_attention and _is_attention(name))
        )
        report[name] = "kept" if keep else scheme
        if not keep:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            linear = getattr(parent, child)
            setattr(parent, child, QuantLinear(linear, scheme, group_size, act_scale_ub))
    return report


def linear_weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of every Linear weight (and QuantLinear codes plus scales) in the model; no biases."""
    total = 0
    for m in model.modules():
        if isinstance(m, QuantLinear):
            total += m.weight_q.nbytes
        elif isinstance(m, torch.nn.Linear):
            total += m.weight.numel() * m.weight.element_size()
    return total
