"""Gradient clipping by global norm (Pascanu, Mikolov & Bengio 2013).

All gradients are treated as one vector g; if ||g||₂ > max_norm every gradient is scaled by
max_norm / (||g||₂ + 1e-6), so the direction is kept and only the step length shrinks. The
1e-6 and the order of operations are those of `torch.nn.utils.clip_grad_norm_`.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


@torch.no_grad()
def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale gradients in place so their global L2 norm is at most `max_norm`; the norm before."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    norms = torch.stack([g.detach().norm(2) for g in grads])  # one norm per tensor
    total = norms.norm(2)  # ||g||₂ = sqrt(Σ ||g_i||²)
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale.to(g.dtype))
    return total
