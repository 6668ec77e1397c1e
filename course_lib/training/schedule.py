"""Learning-rate schedule: linear warm-up, cosine decay, then a floor.

The convention of CS336 assignment 1 (§4.3), after Loshchilov & Hutter's cosine annealing
(SGDR, 2017) with the warm-up of Goyal et al. (2017). For step t (counting from 0, the
step whose update uses this lr):

    t < T_w:          lr(t) = t / T_w · lr_max          (so lr(0) = 0 and lr(T_w) = lr_max)
    T_w ≤ t ≤ T_c:    lr(t) = lr_min + ½ (1 + cos(π (t - T_w) / (T_c - T_w))) (lr_max - lr_min)
    t > T_c:          lr(t) = lr_min

T_c is the step at which the decay ends (usually the last step). nanoGPT uses the same
shape with lr_min = lr_max / 10 (Chinchilla's choice, Hoffmann et al. 2022 §3).
"""

from __future__ import annotations

import math


def cosine_lr(
    step: int, lr_max: float, warmup_steps: int, decay_steps: int, lr_min: float = 0.0
) -> float:
    """lr at `step`: warm-up over `warmup_steps`, cosine to `lr_min` at `decay_steps`."""
    if decay_steps < warmup_steps:
        raise ValueError(f"decay_steps={decay_steps} must be >= warmup_steps={warmup_steps}")
    if step < warmup_steps:
        return step / warmup_steps * lr_max
    if step > decay_steps:
        return lr_min
    span = decay_steps - warmup_steps
    progress = (step - warmup_steps) / span if span else 1.0
    return lr_min + 0.5 * (1 + math.cos(math.pi * progress)) * (lr_max - lr_min)
