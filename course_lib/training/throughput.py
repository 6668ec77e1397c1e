"""Tokens per second and model FLOPs utilisation (MFU) of a training run.

MFU (Chowdhery et al. 2022, PaLM App. B) = tokens/s · model FLOPs per token / peak FLOP/s,
with `course_lib.hardware.mfu`. The model FLOPs per token are 6N + 12·L·H·Q·T, N the
parameters that enter a matmul. The peak is *measured* on this machine, as the FLOP/s of a
large matrix multiply in the training dtype: a data-sheet peak for a laptop CPU is rarely
known, and the measured one says how close the loop comes to what the chip really does.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from course_lib.hardware.mfu import palm_flops_per_token

_PEAKS: dict[tuple[str, torch.dtype], float] = {}


def model_flops_per_token(model: nn.Module, seq_len: int) -> float:
    """Training FLOPs per token, 6N + 12 L H Q T; N counts each nn.Linear weight once.

    L, H and Q come from `model.cfg` (n_layers, n_heads, head_dim) when it has one.
    """
    weights = {id(m.weight): m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear)}
    cfg = getattr(model, "cfg", None)
    n_layers = getattr(cfg, "n_layers", 0)
    n_heads = getattr(cfg, "n_heads", 0)
    head_dim = getattr(cfg, "head_dim", 0)
    return palm_flops_per_token(sum(weights.values()), n_layers, n_heads, head_dim, seq_len)


def measured_peak_flops(
    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, n: int = 0
) -> float:
    """FLOP/s of an n x n matmul on `device` in `dtype` (best of up to 5 within about a
    second), measured once per process. n = 0: 4096 on a GPU, 1024 on a CPU (256 for
    16-bit types, which most CPUs emulate slowly)."""
    device = torch.device(device)
    if not n:
        n = 4096 if device.type != "cpu" else 1024 if dtype.itemsize >= 4 else 256
    key = (str(device), dtype)
    if key not in _PEAKS:
        gen = torch.Generator().manual_seed(0)  # not the global RNG: training draws from it
        a = torch.randn(n, n, generator=gen).to(device, dtype)
        b = torch.randn(n, n, generator=gen).to(device, dtype)
        best, spent = float("inf"), 0.0
        for _ in range(5):
            _synchronize(device)
            start = time.perf_counter()
            a @ b
            _synchronize(device)
            best = min(best, time.perf_counter() - start)
            spent += time.perf_counter() - start
            if spent > 1.0:
                break
        _PEAKS[key] = 2.0 * n**3 / best
    return _PEAKS[key]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
