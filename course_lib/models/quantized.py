"""Weight-only quantized decoding that is really faster: int8 row-wise and int4 group-wise.

Decoding one token multiplies every weight matrix by a single vector, so its time is the
time to read the weights (Pope et al. 2022): fewer bytes per weight decode faster, if the
kernel reads the packed codes and never writes out a dequantized copy. PyTorch's CPU build
has two such kernels, which take bfloat16 activations:

- `torch._weight_int8pack_mm(x, q, s)`: int8 codes q (out, in), one scale per output row
  s (out,): y = x (q * s)^T. The codes and scales are `kernels.quant.quantize_int8_rowwise`'s
  (LLM.int8()'s row-wise absmax without the outlier split, Dettmers et al. 2022).
- `torch.ops.aten._weight_int4pack_mm_for_cpu(x, packed, g, sz)`: 4-bit codes u in [0, 15]
  packed by `_convert_weight_to_int4pack_for_cpu`, and sz (in / g, out, 2) holding per
  group a scale and a zero point: w = (u - 8) * scale + zero (the layout is checked in
  tests/test_quantized.py). With u = q + 8 and zero 0 this is exactly
  `kernels.quant.quantize_int4_groupwise`'s symmetric group-wise absmax.

`quantize_for_decode(model, "int8" | "int4" | "bf16")` turns a float model into one that
`generate` runs as is, its q/k/v and gate/up projections fused into one product each. With
int8/int4 the rest of the model (embeddings, norms, attention arithmetic, KV cache) stays in
float32 and each packed layer casts its input to bf16 and its output back; optionally Llama
3's recipe keeps the first and last blocks and the attention projections unquantized (Dubey
et al. 2024, Sec. 6.2). int4 defaults to min-max
groups of 32 (llama.cpp's Q4_1 grid; symmetric absmax is an option). `dequantized_model`
gives the float32 model the codes stand for, the reference the logits are tested against.
`decode_step_times` and `decode_step_profile` measure where a decoding step's time goes.
"""

from __future__ import annotations

import copy
import time
from collections import Counter

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from course_lib.kernels.quant import quantize_int4_groupwise, quantize_int8_rowwise, unpack_int4
from course_lib.models.transformer import Transformer

FORMATS = ("fp32", "bf16", "int8", "int4")


class Int8Linear(nn.Module):
    """nn.Linear with int8 row-wise weights, run by `torch._weight_int8pack_mm`."""

    def __init__(self, linear: nn.Linear, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        if linear.bias is not None:
            raise NotImplementedError("Int8Linear: a Linear with a bias")
        q = quantize_int8_rowwise(linear.weight.detach())
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight_int8", q.data)  # (out, in) int8
        self.register_buffer("scale", q.scale.view(-1).to(dtype))  # (out,) in the compute dtype

    def dequantized_weight(self) -> torch.Tensor:
        """The (out, in) float32 weight the kernel stands for: codes times row scales."""
        return self.weight_int8.float() * self.scale.float()[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        dtype = self.scale.dtype  # cast only if needed: every operator call costs decode time
        x2 = x.reshape(-1, self.in_features)
        y = torch._weight_int8pack_mm(
            x2 if x.dtype == dtype else x2.to(dtype), self.weight_int8, self.scale
        )
        y = y.view(*x.shape[:-1], self.out_features)
        return y if x.dtype == dtype else y.to(x.dtype)


class Int4Linear(nn.Module):
    """nn.Linear with int4 group-wise weights, run by `_weight_int4pack_mm_for_cpu`.

    symmetric: codes q in [-8, 7] of `kernels.quant.quantize_int4_groupwise` (absmax / 7,
    zero point 0). Otherwise min-max per group, as llama.cpp's Q4_1: scale = (max - min) / 15,
    u = round((w - min) / scale) in [0, 15], zero = min + 8 * scale. With group_size 32 this
    grid holds a Q4_1 file's own weights up to the bf16 rounding of scale and zero.
    """

    def __init__(
        self,
        linear: nn.Linear,
        group_size: int = 32,
        *,
        symmetric: bool = False,
        dtype: torch.dtype = torch.bfloat16,
    ) -> None:
        super().__init__()
        if linear.bias is not None:
            raise NotImplementedError("Int4Linear: a Linear with a bias")
        if linear.out_features % 16:
            raise ValueError(
                f"the int4 CPU kernel packs 16 output rows at a time: out_features="
                f"{linear.out_features} is not a multiple of 16 (keep this layer in bf16)"
            )
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.group_size = group_size
        w = linear.weight.detach().float()
        if symmetric:
            q = quantize_int4_groupwise(w, group_size)
            codes = unpack_int4(q.data).to(torch.int32) + 8  # (out, in) in [0, 15]
            scale, zero = q.scale, torch.zeros_like(q.scale)  # (out, in / g)
        else:
            if self.in_features % group_size:
                raise ValueError(f"in_features={self.in_features} % group_size={group_size} != 0")
            groups = w.view(self.out_features, -1, group_size)
            lo, hi = groups.amin(-1), groups.amax(-1)  # (out, in / g)
            scale = ((hi - lo) / 15).clamp(min=torch.finfo(torch.float32).tiny)
            u = torch.round((groups - lo[..., None]) / scale[..., None]).clamp(0, 15)
            codes = u.view_as(w).to(torch.int32)
            zero = lo + 8 * scale
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1)
        self.register_buffer("weight_int4", packed)  # (out, in / 2) uint8, kernel layout
        self.register_buffer(
            "scale_zero", torch.stack((scale.T, zero.T), dim=-1).to(dtype).contiguous()
        )  # (in / g, out, 2): scale, zero point

    def dequantized_weight(self) -> torch.Tensor:
        """The (out, in) float32 weight the kernel stands for, (u - 8) * scale + zero: the
        kernel applied to the identity in float32 (one nonzero product per output, exact)."""
        eye = torch.eye(self.in_features)
        sz = self.scale_zero.float()
        w_t = torch.ops.aten._weight_int4pack_mm_for_cpu(eye, self.weight_int4, self.group_size, sz)
        return w_t.T.contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        dtype = self.scale_zero.dtype  # casts only when needed (see Int8Linear.forward)
        x2 = x.reshape(-1, self.in_features)
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(
            x2 if x.dtype == dtype else x2.to(dtype),
            self.weight_int4,
            self.group_size,
            self.scale_zero,
        )
        y = y.view(*x.shape[:-1], self.out_features)
        return y if x.dtype == dtype else y.to(x.dtype)


# `Transformer.fuse_projections`: a fused layer and the layers it replaces
_FUSED = {"qkv_proj": ("q_proj", "k_proj", "v_proj"), "gate_up_proj": ("gate_proj", "up_proj")}


def _kept(name: str, n_layers: int, keep_first_last: bool, keep_attention: bool) -> bool:
    """Whether Llama 3's recipe keeps Linear `name` (of a Transformer) unquantized."""
    parts = name.split(".")
    if keep_attention and "attn" in parts:
        return True
    return keep_first_last and parts[0] == "layers" and int(parts[1]) in (0, n_layers - 1)


@torch.no_grad()
def quantize_for_decode(
    model: Transformer,
    fmt: str,
    *,
    group_size: int = 32,
    symmetric: bool = False,
    head: str | None = None,
    keep_first_last: bool = False,
    keep_attention: bool = False,
) -> dict[str, str]:
    """Convert `model` in place for decoding in `fmt` ("fp32", "bf16", "int8", "int4").

    int8/int4 replace the Linear layers by `Int8Linear`/`Int4Linear` (group_size and
    symmetric for int4) and keep everything else in float32: the kernels take bfloat16
    activations, so each packed layer casts its input to bf16 and its output back. On this
    CPU that is faster than a bf16 model (bf16 attention products and norms are slow here)
    and closer to the float model the codes stand for. `head` is the output layer's format
    ("fp32", "int8", "int4"; default fmt). keep_first_last and keep_attention keep those
    Linear layers unquantized, in float32 (Llama 3's rule; its source precision is bf16). In
    every format the q/k/v and gate/up projections are fused first
    (`Transformer.fuse_projections`): the same products in fewer calls.
    Returns {Linear name of the unfused model: format}.
    """
    if fmt not in FORMATS or head not in (None, "fp32", "int8", "int4"):
        raise ValueError(f"fmt must be one of {FORMATS} (head: fp32/int8/int4), got {fmt!r}")
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    model.fuse_projections()  # q/k/v and gate/up: one product each, fewer calls per step
    if fmt in ("fp32", "bf16"):
        model.to(torch.float32 if fmt == "fp32" else torch.bfloat16)
        return dict.fromkeys(linears, fmt)
    model.to(torch.float32)
    report = {}
    for name in [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]:
        kept = _kept(name, model.cfg.n_layers, keep_first_last, keep_attention)
        layer_fmt = "fp32" if kept else (head or fmt) if name == "lm_head" else fmt
        parent_name, _, child = name.rpartition(".")
        for part in _FUSED.get(child, (child,)):  # reported under the unfused names
            report[f"{parent_name}.{part}" if parent_name else part] = layer_fmt
        if layer_fmt == "fp32":
            continue
        parent = model.get_submodule(parent_name) if parent_name else model
        linear = getattr(parent, child)
        if layer_fmt == "int8":
            new = Int8Linear(linear)
        else:
            new = Int4Linear(linear, group_size, symmetric=symmetric)
        setattr(parent, child, new)
    return report


@torch.no_grad()
def dequantized_model(model: nn.Module) -> nn.Module:
    """A float32 copy of a `quantize_for_decode` model with every packed layer replaced by an
    nn.Linear holding the weight its codes stand for: the reference for its logits."""
    ref = copy.deepcopy(model)
    for name, module in list(ref.named_modules()):
        if isinstance(module, Int8Linear | Int4Linear):
            linear = nn.Linear(module.in_features, module.out_features, bias=False)
            linear.weight.copy_(module.dequantized_weight())
            parent_name, _, child = name.rpartition(".")
            setattr(ref.get_submodule(parent_name) if parent_name else ref, child, linear)
    return ref.float()


def decode_weight_bytes(model: nn.Module) -> int:
    """Bytes of weights one decoding step reads: every Linear (codes and scales, or the dense
    weight), norms, plus one embedding row per token; a tied output layer counted once."""
    total, seen = 0, set()
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            total += module.weight[0].nbytes  # one row is gathered per token
            continue
        for tensor in list(module.parameters(recurse=False)) + list(module.buffers(recurse=False)):
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            total += tensor.nbytes
    return total


class _CountOps(TorchDispatchMode):
    """Counts the ATen operators dispatched while active (every call, views and casts too),
    in total and by operator name."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.by_name: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        self.calls += 1
        self.by_name[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


@torch.inference_mode()
def decode_step_times(model: Transformer, prompt: torch.Tensor, steps: int) -> list[float]:
    """Wall seconds of each of `steps` greedy decoding steps (batch = prompt's, KV cache on)
    after one prefill of prompt (B, T): the time per generated token, prefill excluded."""
    cache = model.new_cache(prompt.shape[0], prompt.shape[1] + steps)
    token = model(prompt, cache, last_only=True)[:, -1].argmax(-1, keepdim=True)  # (B, 1)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        token = model(token, cache, last_only=True)[:, -1].argmax(-1, keepdim=True)
        times.append(time.perf_counter() - start)
    return times


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The layers that read a weight matrix: nn.Linear, Int8Linear, Int4Linear."""
    return [m for m in model.modules() if isinstance(m, nn.Linear | Int8Linear | Int4Linear)]


@torch.inference_mode()
def decode_step_profile(model: Transformer, prompt: torch.Tensor, steps: int = 4) -> dict:
    """Where a batch-1 decoding step's time goes: median wall seconds of a step, the seconds
    its weight layers take when run alone on one token (each on a zero input of its
    compute dtype; best of 3), the rest of the step, and the ATen operator calls of a step
    (in total, and by operator: "operators")."""
    step = sorted(decode_step_times(model, prompt, steps))[steps // 2]
    layers = weight_layers(model)
    dtypes = [
        m.weight.dtype
        if isinstance(m, nn.Linear)
        else m.scale.dtype
        if isinstance(m, Int8Linear)
        else m.scale_zero.dtype
        for m in layers
    ]
    inputs = [
        torch.zeros(1, 1, m.in_features, dtype=d) for m, d in zip(layers, dtypes, strict=True)
    ]
    kernels = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for layer, x in zip(layers, inputs, strict=True):
            layer(x)
        kernels = min(kernels, time.perf_counter() - start)
    cache = model.new_cache(1, prompt.shape[1] + 1)
    token = model(prompt[:1], cache, last_only=True)[:, -1].argmax(-1, keepdim=True)
    with _CountOps() as counter:
        model(token, cache, last_only=True)
    return {
        "step": step,
        "weight layers": kernels,
        "everything else": max(step - kernels, 0.0),
        "operator calls": counter.calls,
        "operators": dict(counter.by_name.most_common()),  # {ATen name: calls in the step}
        "weight layer calls": len(layers),
    }
