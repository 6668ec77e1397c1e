"""course_lib.kernels.moe_capacity: expert capacity and dropped tokens (Switch, GShard)."""

import pytest
import torch

from course_lib.kernels import SparseMoE, expert_load
from course_lib.kernels.moe_capacity import (
    capacity_positions,
    drop_over_capacity,
    expert_capacity,
)


def _queues_loop(indices: torch.Tensor, n_experts: int, capacity: int) -> torch.Tensor:
    """GShard Algorithm 1 by hand: first choices of all tokens, then second choices, each
    taking the next free slot of its expert's buffer while one is left."""
    kept = torch.zeros(indices.shape, dtype=torch.bool)
    filled = [0] * n_experts
    for slot in range(indices.shape[1]):
        for t in range(indices.shape[0]):
            e = int(indices[t, slot])
            if filled[e] < capacity:
                kept[t, slot] = True
                filled[e] += 1
    return kept


def _indices(n_tokens, n_experts, k, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n_tokens, n_experts, generator=g)
    logits[:, 0] += 1.0  # an expert that many tokens prefer: it overflows
    return logits.topk(k, dim=-1).indices


def test_capacity_formula():
    # Switch: (tokens per batch / experts) x capacity factor, x k for top-k, rounded up
    assert expert_capacity(8, 4, k=1, capacity_factor=1.0) == 2
    assert expert_capacity(8, 4, k=2, capacity_factor=1.0) == 4
    assert expert_capacity(10, 4, k=1, capacity_factor=1.25) == 4  # 3.125 rounded up
    assert expert_capacity(12, 4, k=2, capacity_factor=1.5) == 9


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_drops_match_the_buffer_loop(k, seed):
    n_tokens, n_experts = 24, 6
    indices = _indices(n_tokens, n_experts, k, seed)
    for factor in (0.5, 1.0, 1.25, 2.0):
        capacity = expert_capacity(n_tokens, n_experts, k, factor)
        kept = drop_over_capacity(indices, n_experts, capacity)
        assert torch.equal(kept, _queues_loop(indices, n_experts, capacity))
        load = expert_load(indices, n_experts)
        kept_load = torch.bincount(indices[kept], minlength=n_experts)
        assert torch.equal(kept_load, load.clamp(max=capacity))


def test_positions_are_a_queue_per_expert():
    indices = _indices(16, 4, 2, seed=3)
    pos = capacity_positions(indices, 4)
    for e in range(4):
        mine = pos[indices == e]
        assert sorted(mine.tolist()) == list(range(len(mine)))  # 0, 1, ..., load - 1
    # a first choice is always queued before every second choice of the same expert
    for e in range(4):
        first, second = pos[:, 0][indices[:, 0] == e], pos[:, 1][indices[:, 1] == e]
        if len(first) and len(second):
            assert first.max() < second.min()


def test_ample_capacity_drops_nothing_and_zero_drops_all():
    indices = _indices(20, 5, 2, seed=0)
    assert drop_over_capacity(indices, 5, capacity=20).all()  # no expert gets more than N
    assert not drop_over_capacity(indices, 5, capacity=0).any()


def test_a_dropped_top1_token_gets_no_expert_output():
    """Switch: a token over capacity skips the layer (only the residual carries it)."""
    torch.manual_seed(0)
    dim, n_experts = 8, 4
    moe = SparseMoE(dim, 16, n_experts, k=1).double()
    x = torch.randn(32, dim, dtype=torch.float64)
    x[:, 0] += 3.0  # a shared direction: the router prefers one or two experts
    with torch.no_grad():
        routing = moe.gate(x)
        capacity = expert_capacity(32, n_experts, 1, 1.0)
        kept = drop_over_capacity(routing.indices, n_experts, capacity)
        assert 0 < int((~kept).sum()) < 32
        y = moe.experts(x, routing.indices, routing.weights * kept)
        full = moe.experts(x, routing.indices, routing.weights)
    dropped = ~kept[:, 0]
    assert torch.equal(y[dropped], torch.zeros_like(y[dropped]))
    torch.testing.assert_close(y[~dropped], full[~dropped])
