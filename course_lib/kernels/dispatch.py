"""One place that decides which implementation of a hot kernel runs: Triton or PyTorch.

On CUDA the Triton kernels (`course_lib.kernels.triton`) run compiled; everywhere else the
pure-PyTorch kernels run. Triton can also run on CPU tensors through its interpreter, but
only when `TRITON_INTERPRET=1` was set before the kernels were imported (the tests do
this); it is never chosen automatically there, only on request (`backend="triton"`).

The choice is never silent: `attention_backend` returns it, the first choice per device
is logged at INFO level, and `which_backend()` tells which backend the most recent call
used.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Literal

import torch

Backend = Literal["torch", "triton"]
BACKENDS: tuple[str, ...] = ("auto", "torch", "triton")
TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)

logger = logging.getLogger(__name__)
_last_backend: Backend | None = None
_logged: set[tuple[str, str]] = set()


def triton_available() -> bool:
    """True if the `triton` package can be imported."""
    return importlib.util.find_spec("triton") is not None


def triton_interpreted() -> bool:
    """True if Triton kernels run in the CPU interpreter (`TRITON_INTERPRET=1`)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def attention_backend(
    device: str | torch.device, dtype: torch.dtype | None = None, head_dim: int | None = None
) -> Backend:
    """The backend `backend="auto"` picks: Triton on CUDA, else PyTorch.

    On CUDA the Triton kernel is still skipped for what it does not handle: dtypes other
    than float16/bfloat16/float32, or head dims above 256 (they would not fit on-chip).
    """
    device = torch.device(device)
    supported = (dtype is None or dtype in TRITON_DTYPES) and (head_dim is None or head_dim <= 256)
    choice: Backend = (
        "triton" if device.type == "cuda" and triton_available() and supported else "torch"
    )
    if (device.type, choice) not in _logged:
        _logged.add((device.type, choice))
        logger.info("course_lib kernels on %s use the %s backend", device.type, choice)
    return choice


def resolve_backend(
    backend: str,
    device: str | torch.device,
    dtype: torch.dtype | None = None,
    head_dim: int | None = None,
) -> Backend:
    """Turn a requested backend ("auto", "torch" or "triton") into the one that will run.

    Raises ValueError for an unknown name and RuntimeError when Triton is requested where
    it cannot run (not installed, or a CPU tensor without the interpreter).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return attention_backend(device, dtype, head_dim)
    if backend == "triton":
        if not triton_available():
            raise RuntimeError("backend='triton' needs the triton package: pip install triton")
        if torch.device(device).type != "cuda" and not triton_interpreted():
            raise RuntimeError(
                "Triton runs on non-CUDA tensors only in its interpreter: set TRITON_INTERPRET=1 "
                "before importing course_lib.kernels.triton"
            )
    return backend  # type: ignore[return-value]


def record_backend(backend: Backend) -> None:
    """Remember the backend a kernel call used (read back with `which_backend`)."""
    global _last_backend
    _last_backend = backend


def which_backend() -> Backend | None:
    """The backend used by the most recent dispatched kernel call, or None before any call."""
    return _last_backend


def needs_grad(*tensors: torch.Tensor) -> bool:
    """True when autograd will record an op on these tensors."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def refuse_grad(kernel: str, alternative: str, *tensors: torch.Tensor) -> None:
    """Raise instead of silently detaching when a forward-only kernel is asked for a gradient."""
    if needs_grad(*tensors):
        raise RuntimeError(
            f"{kernel} has no backward and would drop the gradient: use {alternative} to train"
        )
