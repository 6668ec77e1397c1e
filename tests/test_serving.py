"""The serving simulation: step costs from the roofline, schedules checked by hand-built timelines."""

from __future__ import annotations

import math

import pytest

from course_lib.hardware import get_accelerator, step_roofline
from course_lib.hardware.serving import (
    Request,
    StepCost,
    poisson_requests,
    reserved_tokens,
    simulate,
    simulate_disaggregated,
)
from course_lib.models import PRESETS

CFG = PRESETS["llama3-8b"]
H100 = get_accelerator("h100-sxm")
COST = StepCost(CFG, H100)


def decode_time(batch: int, context: int) -> float:
    return step_roofline(CFG, batch, context, "decode", H100).time_s


def prefill_time(batch: int, prompt: int) -> float:
    return step_roofline(CFG, batch, prompt, "prefill", H100).time_s


@pytest.mark.parametrize(("batch", "length"), [(1, 1), (1, 2048), (16, 512), (256, 4096)])
def test_step_cost_matches_step_roofline(batch: int, length: int) -> None:
    assert math.isclose(COST.time([], [length] * batch), decode_time(batch, length), rel_tol=1e-12)
    assert math.isclose(COST.time([length] * batch, []), prefill_time(batch, length), rel_tol=1e-12)


def test_decode_is_memory_bound_and_prefill_compute_bound() -> None:
    # Pope et al. 2022: one decode step reads all weights for a few FLOPs per byte.
    assert step_roofline(CFG, 1, 1024, "decode", H100).bound == "memory"
    assert step_roofline(CFG, 1, 4096, "prefill", H100).bound == "compute"
    # batching decode is almost free while memory-bound: 8 sequences cost far less than 8 steps
    assert COST.time([], [1024] * 8) < 2 * COST.time([], [1024])


def test_single_request_timeline() -> None:
    req = Request(arrival=1.5, prompt_len=300, output_len=5)
    expected_first = 1.5 + prefill_time(1, 300)
    expected_finish = expected_first + sum(decode_time(1, c) for c in range(300, 304))
    for policy in ("static", "continuous"):
        (served,) = simulate([req], COST, policy).served
        assert math.isclose(served.first_token, expected_first, rel_tol=1e-12), policy
        assert math.isclose(served.finish, expected_finish, rel_tol=1e-12), policy
        assert math.isclose(served.tpot, (expected_finish - expected_first) / 4, rel_tol=1e-12)


def test_static_batch_blocks_a_late_arrival_continuous_does_not() -> None:
    long = Request(0.0, 100, 50)
    late = Request(1e-3, 100, 2)  # arrives while the first request decodes
    static = simulate([long, late], COST, "static").served
    cont = simulate([long, late], COST, "continuous").served
    assert static[1].first_token > static[0].finish  # waits for the whole batch
    assert cont[1].finish < cont[0].finish  # joins the running batch and leaves early


def test_contiguous_reservation_limits_the_batch_paged_does_not() -> None:
    reqs = [Request(0.0, 100, 20) for _ in range(12)]
    capacity = 3 * 2048
    contiguous = simulate(reqs, COST, kv_capacity_tokens=capacity, paged=False, max_seq_len=2048)
    paged = simulate(reqs, COST, kv_capacity_tokens=capacity, paged=True, block_size=16)
    assert contiguous.peak_batch == capacity // 2048
    assert reserved_tokens(reqs[0], True, 16, 2048) == 128  # ceil(120 / 16) blocks of 16
    assert paged.peak_batch == 12  # 12 * 128 tokens fit in 6144
    assert paged.makespan < contiguous.makespan


def test_every_request_is_served_in_order_of_events() -> None:
    reqs = poisson_requests(rate=20.0, n=60, prompt_len=(50, 400), output_len=(1, 60), seed=3)
    results = [
        simulate(reqs, COST, "static", max_batch=8),
        simulate(reqs, COST, "continuous", max_batch=8, kv_capacity_tokens=4000),
        simulate_disaggregated(reqs, COST, COST, link_bandwidth=25e9, max_batch=8),
    ]
    for result in results:
        assert result.peak_batch <= 8
        for s in result.served:
            assert s.request.arrival < s.first_token <= s.finish
            if s.request.output_len == 1:
                assert s.finish == s.first_token


def test_disaggregated_single_request_pays_the_transfer() -> None:
    req = Request(0.0, 1000, 4)
    link = 10e9  # bytes/s
    (served,) = simulate_disaggregated([req], COST, COST, link_bandwidth=link).served
    kv_bytes = 1000 * 2 * CFG.n_layers * CFG.n_kv_heads * CFG.head_dim * 2  # bf16 K and V
    arrived = prefill_time(1, 1000) + kv_bytes / link
    assert math.isclose(served.ttft, prefill_time(1, 1000), rel_tol=1e-12)
    expected = arrived + sum(decode_time(1, c) for c in range(1000, 1003))
    assert math.isclose(served.finish, expected, rel_tol=1e-12)


def test_kv_capacity_is_free_memory_over_bytes_per_token() -> None:
    per_token = 2 * CFG.n_layers * CFG.n_kv_heads * CFG.head_dim * 2  # 131072 bytes (bf16)
    weights = COST.shape.n_params * 2
    assert COST.kv_capacity_tokens(0.9) == int((0.9 * 80e9 - weights) // per_token)
