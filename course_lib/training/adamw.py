"""AdamW written out (Loshchilov & Hutter 2019, Algorithm 2) and nanoGPT's parameter groups.

Adam (Kingma & Ba 2015) keeps running means of the gradient, m, and of its square, v, and
steps by m / (sqrt(v) + eps) after correcting both for their zero start. AdamW *decouples*
weight decay from that step: the weights shrink by lr * λ directly, instead of λθ being
added to the gradient (where Adam would rescale it). For step t = 1, 2, …:

    θ ← θ (1 - lr λ)
    m ← β1 m + (1 - β1) g;      v ← β2 v + (1 - β2) g²
    θ ← θ - lr · (m / (1 - β1^t)) / (sqrt(v / (1 - β2^t)) + eps)

The operations follow `torch.optim.AdamW`'s single-tensor path in the same order, so the two
agree to the last bit or two over many steps (tests/test_training.py).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class AdamW(torch.optim.Optimizer):
    """AdamW with bias correction; parameter groups may set their own `weight_decay`."""

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(
                f"AdamW needs lr, eps, weight_decay >= 0 and 0 <= betas < 1; got lr={lr}, "
                f"eps={eps}, weight_decay={weight_decay}, betas={betas}"
            )
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 (torch.optim's signature)
        """One update of every parameter that has a gradient."""
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            lr, (beta1, beta2) = group["lr"], group["betas"]
            eps, weight_decay = group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)  # m
                    state["exp_avg_sq"] = torch.zeros_like(p)  # v
                state["step"] += 1
                t, m, v, g = state["step"], state["exp_avg"], state["exp_avg_sq"], p.grad
                p.mul_(1 - lr * weight_decay)  # decoupled weight decay
                m.lerp_(g, 1 - beta1)  # m = β1 m + (1 - β1) g
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # v = β2 v + (1 - β2) g²
                step_size = lr / (1 - beta1**t)
                denom = (v.sqrt() / (1 - beta2**t) ** 0.5).add_(eps)
                p.addcdiv_(m, denom, value=-step_size)
        return loss


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups, as nanoGPT's `configure_optimizers`: matrices and embeddings decay,
    1-D parameters (norm gains, biases) do not. Tied weights are listed once."""
    decay, no_decay = [], []
    for p in model.parameters():  # parameters() yields a tied tensor once
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
