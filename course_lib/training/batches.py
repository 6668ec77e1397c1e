"""Random training batches from one long token array (nanoGPT's and CS336's `get_batch`).

A stream of N tokens holds N - T windows of T + 1 consecutive tokens, starting at
0, 1, …, N - T - 1; each window gives an input x (its first T tokens) and the targets y
(the same shifted by one). Starts are drawn uniformly from all of them, the last included.
The array can be a `numpy.memmap` of a file larger than memory: only the windows are read.
"""

from __future__ import annotations

import numpy as np
import torch


def get_batch(
    tokens: np.ndarray | torch.Tensor,
    batch_size: int,
    context_length: int,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x, y (batch_size, context_length) int64 on `device`, y[b, t] = tokens[s_b + t + 1]."""
    n = len(tokens)
    if n < context_length + 1:
        raise ValueError(
            f"a window needs context_length + 1 = {context_length + 1} tokens, the array has "
            f"{n}: use a shorter context_length or more data"
        )
    starts = torch.randint(0, n - context_length, (batch_size,), generator=generator)  # (B,)
    offsets = torch.arange(context_length + 1)  # (T+1,)
    index = starts[:, None] + offsets  # (B, T+1)
    if isinstance(tokens, torch.Tensor):
        window = tokens[index.to(tokens.device)].long()
    else:
        window = torch.from_numpy(np.asarray(tokens[index.numpy()]).astype(np.int64))
    window = window.to(device, non_blocking=True)  # (B, T+1)
    return window[:, :-1], window[:, 1:]
