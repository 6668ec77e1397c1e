"""Expert capacity: each expert takes at most C token assignments per batch; the rest drop.

API
- `expert_capacity(n_tokens, n_experts, k=1, capacity_factor=1.0) -> int`:
  C = ceil(capacity_factor * n_tokens * k / n_experts)
- `capacity_positions(indices, n_experts) -> (N, k)`: each assignment's place in its expert's
  queue, first choices of every token before any second choice
- `drop_over_capacity(indices, n_experts, capacity) -> (N, k) bool`: True where kept

Switch Transformer (Fedus et al. 2021, arXiv:2101.03961, section 2.2 and Figure 3) fixes the
tensor each expert computes on: "expert capacity = (tokens per batch / number of experts) x
capacity factor", so that the all-to-all dispatch has static shapes. An expert chosen by more
tokens than that processes the first C and the others overflow: they are *dropped* by the
layer, skip the experts, and reach the next layer only through the residual connection.
GShard (Lepikhin et al. 2020, arXiv:2006.16668, Algorithm 1) routes top-2 with the same
buffers of size C ~ 2N/E and fills them with every token's first choice before any second
choice, so a dropped second choice leaves the token its first expert; a dropped assignment's
gate weight is not given to the other expert (GShard's random dispatch of small second
choices is not modelled). With top-k the buffers hold k N / E assignments
times the capacity factor; the result is rounded up (DeepSpeed-MoE's `_capacity`).

The queue order matches `moe.Experts.forward`, which groups assignments by expert in the
order slot, then token: within one slot, earlier tokens in the batch come first.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def expert_capacity(n_tokens: int, n_experts: int, k: int = 1, capacity_factor: float = 1.0) -> int:
    """C = ceil(capacity_factor * n_tokens * k / n_experts) assignments per expert."""
    return math.ceil(capacity_factor * n_tokens * k / n_experts)


def capacity_positions(indices: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Position (0, 1, ...) of each (token, slot) assignment in its expert's queue: (N, k).

    indices (N, k): the experts chosen (slot 0 = first choice). The queue of expert e holds its
    slot-0 assignments in token order, then its slot-1 assignments, and so on (GShard).
    """
    n_tokens, k = indices.shape
    flat = indices.T.reshape(-1)  # (k * N,): slot-major, the priority order
    one_hot = F.one_hot(flat, n_experts)  # (k * N, E)
    position = (one_hot.cumsum(dim=0) - 1).gather(1, flat[:, None])[:, 0]  # (k * N,)
    return position.view(k, n_tokens).T  # (N, k)


def drop_over_capacity(indices: torch.Tensor, n_experts: int, capacity: int) -> torch.Tensor:
    """(N, k) bool, True for the assignments that fit in their expert's `capacity` slots.

    To run a MoE layer with capacity, zero the gate weights of the dropped assignments:
    `experts(x, indices, weights * kept)`.
    """
    return capacity_positions(indices, n_experts) < capacity
