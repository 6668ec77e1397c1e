"""Device selection shared by every module: cuda > mps > cpu."""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    """The best available device: CUDA if present, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`device` as a `torch.device`, or the default device when it is None."""
    return default_device() if device is None else torch.device(device)
