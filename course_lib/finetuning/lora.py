"""LoRA (Hu et al. 2021): a frozen weight W plus a trainable low-rank update (alpha / r) B A.

For a linear layer y = x W^T + b with W (out, in), LoRA trains A (r, in) and B (out, r) and
computes y = x W^T + b + (alpha / r) · x A^T B^T. A starts random (Kaiming-uniform, as
Hugging Face `peft`) and B at zero, so training starts exactly at the pretrained model.
After training, `merge` folds the update into W (no extra cost at inference) and `unmerge`
takes it out again. Over quantized base weights this is QLoRA (Dettmers et al. 2023).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


class LoRALinear(nn.Module):
    """A frozen linear layer with a rank-r update: forward(x) = base(x) + scaling · B(A(x)).

    `base` is an `nn.Linear`, or any module with `in_features`/`out_features` such as
    course_lib's int4 `QuantLinear` (QLoRA: the adapter stays in float, beside the codes).
    """

    def __init__(self, base: nn.Module, r: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        if not hasattr(base, "in_features") or not hasattr(base, "out_features"):
            raise TypeError(f"LoRALinear wraps a linear layer, got {type(base).__name__}")
        if r < 1:
            raise ValueError(f"rank r must be >= 1, got {r}")
        self.base, self.r, self.alpha = base, r, alpha
        self.scaling = alpha / r
        base.requires_grad_(False)
        ref = base.weight if isinstance(base, nn.Linear) else next(iter(base.buffers()))
        dtype = ref.dtype if ref.is_floating_point() else torch.float32  # int codes: fp32 A, B
        device = ref.device
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=dtype, device=device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=dtype, device=device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # peft's default init of A
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """The update (alpha / r) · B A, (out, in)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., in) -> (..., out)."""
        y = self.base(x)
        if self.merged:
            return y
        return y + self.scaling * (self.dropout(x) @ self.lora_A.T @ self.lora_B.T)

    @torch.no_grad()
    def merge(self) -> None:
        """W <- W + (alpha / r) B A: the layer becomes a plain linear layer again."""
        if not isinstance(self.base, nn.Linear):
            raise TypeError(
                f"cannot merge into a {type(self.base).__name__}: a quantized weight would "
                "have to be re-quantized; keep the adapter separate (QLoRA) or dequantize first"
            )
        if not self.merged:
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """W <- W - (alpha / r) B A: undo `merge` (exact up to rounding)."""
        if self.merged:
            self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, merged={self.merged}"


def apply_lora(
    model: nn.Module,
    targets: Iterable[str] = ("q_proj", "v_proj"),
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
) -> list[str]:
    """Freeze `model` and wrap every nn.Linear whose name ends in a target; returns their names.

    Works on any module tree (course_lib's Transformer, a transformers model) from the outside.
    """
    targets = tuple(targets)
    model.requires_grad_(False)
    names = [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and name.split(".")[-1] in targets
    ]
    if not names:
        raise ValueError(f"no nn.Linear named {targets} in the model: check the target names")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha, dropout))
    return names


def lora_layers(model: nn.Module) -> list[LoRALinear]:
    """Every LoRALinear in the model."""
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def merge_lora(model: nn.Module) -> None:
    """Fold every adapter into its base weight."""
    for layer in lora_layers(model):
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Take every adapter back out of its base weight."""
    for layer in lora_layers(model):
        layer.unmerge()


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameters with requires_grad (tied weights counted once)."""
    return sum(
        p.numel() for p in {id(p): p for p in model.parameters()}.values() if p.requires_grad
    )


def lora_parameter_count(shapes: Iterable[tuple[int, int]], r: int) -> int:
    """r · (in + out) per adapted (out, in) weight: A is (r, in), B is (out, r)."""
    return sum(r * (d_in + d_out) for d_out, d_in in shapes)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held in the optimizer's state tensors (AdamW: m and v, plus a step count)."""
    return sum(
        t.numel() * t.element_size()
        for state in optimizer.state.values()
        for t in state.values()
        if isinstance(t, torch.Tensor)
    )
