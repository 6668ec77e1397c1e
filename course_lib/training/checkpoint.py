"""Save a training run and resume it exactly (nanoGPT's `ckpt.pt`, CS336 §5.2).

A run's state is more than the weights: the optimizer's moments and step counts, the step
of the schedule, and every random number generator that will be drawn from again (the batch
sampler's, PyTorch's global one for dropout, CUDA's). With all of them restored, a run
that is interrupted and resumed computes exactly what the uninterrupted run computes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    generator: torch.Generator | None = None,
    **extra: Any,
) -> None:
    """Write model, optimizer, `step` (the next step to run) and RNG states to `path`."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "generator": None if generator is None else generator.get_state(),
        "extra": extra,
    }
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a crash while writing leaves the previous checkpoint intact


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """Restore what `save_checkpoint` wrote, in place; returns {"step": …, **extra}."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: train with checkpoint_path={path} first")
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    if generator is not None and state["generator"] is not None:
        generator.set_state(state["generator"])
    return {"step": state["step"], **state["extra"]}
