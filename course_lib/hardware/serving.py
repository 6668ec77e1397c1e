"""A small discrete-time simulation of LLM serving: static vs continuous batching, paged KV, disaggregation.

Every engine step takes the roofline time of the work it does on one accelerator
(`course_lib.hardware.roofline`): max(FLOPs / peak, bytes / bandwidth) for the weights read
once plus the KV cache written (prefill) or read (decode). Policies:

- static batching: an idle engine takes up to `max_batch` waiting requests, prefills them
  together and decodes until the longest one is done; new arrivals wait for the whole batch.
- continuous batching (iteration-level scheduling, Orca; Yu et al. 2022, OSDI): at every
  step finished requests leave and waiting ones join, their prompt prefilled in that step.
- KV-cache memory decides how many requests fit. Contiguous allocation reserves
  `max_seq_len` slots per request; paged allocation (PagedAttention, vLLM; Kwon et al. 2023,
  arXiv:2309.06180) reserves blocks of `block_size` tokens for what the request will
  actually hold. (vLLM allocates blocks on demand and preempts when it runs out; reserving
  the final length up front, as here, is the same memory without preemption.)
- prefill/decode disaggregation (DistServe, Zhong et al. 2024, arXiv:2401.09670; Mooncake,
  Qin et al. 2024, arXiv:2407.00079): one instance only prefills, another only decodes; the
  KV cache crosses a link between them, and decode steps are never stalled by a prefill.

A request's first token comes out of its prefill; each later token takes one decode step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from course_lib.hardware.roofline import ModelShape, causal_pairs, model_shape
from course_lib.hardware.specs import BYTES_PER_ELEMENT, Accelerator


@dataclass(frozen=True)
class Request:
    """One request: arrival time (s), prompt tokens, tokens to generate (>= 1)."""

    arrival: float
    prompt_len: int
    output_len: int


@dataclass(frozen=True)
class Served:
    """What happened to one request: first-token and finish times (s)."""

    request: Request
    first_token: float
    finish: float

    @property
    def ttft(self) -> float:
        """Time to first token."""
        return self.first_token - self.request.arrival

    @property
    def tpot(self) -> float:
        """Mean time per output token after the first (0 for one-token outputs)."""
        n = self.request.output_len - 1
        return (self.finish - self.first_token) / n if n else 0.0


@dataclass(frozen=True)
class StepCost:
    """Roofline time of one engine step of a model on one accelerator."""

    cfg: Any  # a ModelConfig or anything `model_shape` accepts
    accelerator: Accelerator
    dtype: str = "bf16"
    overhead_s: float = 0.0  # fixed cost per step (kernel launches, scheduling)

    @property
    def shape(self) -> ModelShape:
        """The model's roofline shape (computed once)."""
        if "_shape" not in self.__dict__:
            object.__setattr__(self, "_shape", model_shape(self.cfg))
        return self.__dict__["_shape"]

    def time(self, prefill_lens: list[int], decode_contexts: list[int]) -> float:
        """Seconds for a step prefilling prompts of `prefill_lens` tokens and decoding one token
        for each sequence whose context (tokens already cached) is in `decode_contexts`."""
        if not prefill_lens and not decode_contexts:
            return 0.0
        s = self.shape
        b = BYTES_PER_ELEMENT[self.dtype]
        tokens = sum(prefill_lens) + len(decode_contexts)
        pairs = sum(causal_pairs(p) for p in prefill_lens) + sum(decode_contexts)
        flops = 2.0 * s.n_params * tokens + 4.0 * s.n_layers * s.n_heads * s.head_dim * pairs
        kv_tokens = sum(prefill_lens) + sum(decode_contexts)  # written by prefill, read by decode
        moved = (s.n_params + kv_tokens * s.kv_elements_per_token) * b
        peak = self.accelerator.peak_flops(self.dtype)
        return max(flops / peak, moved / self.accelerator.bandwidth) + self.overhead_s

    def kv_bytes(self, n_tokens: int) -> float:
        """Bytes of KV cache for n_tokens tokens."""
        return n_tokens * self.shape.kv_elements_per_token * BYTES_PER_ELEMENT[self.dtype]

    def kv_capacity_tokens(self, memory_fraction: float = 0.9) -> int:
        """Tokens of KV cache that fit beside the weights in `memory_fraction` of the memory."""
        s = self.shape
        free = (
            self.accelerator.memory_bytes * memory_fraction
            - s.n_params * BYTES_PER_ELEMENT[self.dtype]
        )
        return max(0, int(free // (s.kv_elements_per_token * BYTES_PER_ELEMENT[self.dtype])))


def poisson_requests(
    rate: float,
    n: int,
    prompt_len: tuple[int, int],
    output_len: tuple[int, int],
    seed: int = 0,
) -> list[Request]:
    """n requests arriving as a Poisson process of `rate` per second, lengths uniform in [lo, hi]."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, size=n))
    prompts = rng.integers(prompt_len[0], prompt_len[1] + 1, size=n)
    outputs = rng.integers(output_len[0], output_len[1] + 1, size=n)
    return [
        Request(float(a), int(p), int(o))
        for a, p, o in zip(arrivals, prompts, outputs, strict=True)
    ]


def reserved_tokens(request: Request, paged: bool, block_size: int, max_seq_len: int) -> int:
    """KV slots a request holds: its final length in whole blocks (paged) or max_seq_len."""
    if not paged:
        return max_seq_len
    return math.ceil((request.prompt_len + request.output_len) / block_size) * block_size


@dataclass
class _Running:
    index: int
    context: int  # tokens in the cache, attended by the next decode step
    left: int  # tokens still to generate


def _continuous(
    requests: list[Request],
    ready: list[float],
    cost: StepCost,
    *,
    prefilled: bool,
    max_batch: int,
    kv_capacity_tokens: int,
    paged: bool,
    block_size: int,
    max_seq_len: int,
) -> tuple[list[float], list[float], int]:
    """Iteration-level scheduling; request i may join at ready[i]. Returns first-token and
    finish times and the largest batch seen. With prefilled=True the prompts are already
    cached and their first token out (the decode instance of a disaggregated system)."""
    order = sorted(range(len(requests)), key=lambda i: ready[i])
    first, finish = [math.nan] * len(requests), [math.nan] * len(requests)
    running: list[_Running] = []
    used, t, nxt, peak_batch = 0, 0.0, 0, 0

    def admit(i: int) -> None:  # its first token is out at time t
        nonlocal used
        first[i] = t
        if requests[i].output_len == 1:
            finish[i] = t
            used -= reserved_tokens(requests[i], paged, block_size, max_seq_len)
        else:
            running.append(_Running(i, requests[i].prompt_len, requests[i].output_len - 1))

    while nxt < len(order) or running:
        if not running and ready[order[nxt]] > t:
            t = ready[order[nxt]]
        joining = []
        while (
            nxt < len(order) and ready[order[nxt]] <= t and len(running) + len(joining) < max_batch
        ):
            i = order[nxt]
            need = reserved_tokens(requests[i], paged, block_size, max_seq_len)
            if need > kv_capacity_tokens:
                raise ValueError(
                    f"request {i} needs {need} KV slots, capacity {kv_capacity_tokens}"
                )
            if used + need > kv_capacity_tokens:
                break
            used += need
            joining.append(i)
            nxt += 1
        if prefilled:
            for i in joining:
                admit(i)
            joining = []
            if not running:
                continue
        decode = list(running)
        t += cost.time([requests[i].prompt_len for i in joining], [r.context for r in decode])
        peak_batch = max(peak_batch, len(decode) + len(joining))
        running = []
        for r in decode:
            r.context, r.left = r.context + 1, r.left - 1
            if r.left == 0:
                finish[r.index] = t
                used -= reserved_tokens(requests[r.index], paged, block_size, max_seq_len)
            else:
                running.append(r)
        for i in joining:
            admit(i)
    return first, finish, peak_batch


def _static(requests: list[Request], cost: StepCost, max_batch: int) -> tuple[list, list, int]:
    """Static batching: a batch runs until its longest request is done, padded throughout."""
    order = sorted(range(len(requests)), key=lambda i: requests[i].arrival)
    first, finish = [math.nan] * len(requests), [math.nan] * len(requests)
    t, nxt, peak_batch = 0.0, 0, 0
    while nxt < len(order):
        t = max(t, requests[order[nxt]].arrival)
        batch = []
        while nxt < len(order) and requests[order[nxt]].arrival <= t and len(batch) < max_batch:
            batch.append(order[nxt])
            nxt += 1
        peak_batch = max(peak_batch, len(batch))
        longest_prompt = max(requests[i].prompt_len for i in batch)
        t += cost.time([longest_prompt] * len(batch), [])  # prompts padded to the longest
        for i in batch:
            first[i] = t
        longest_output = max(requests[i].output_len for i in batch)
        for step in range(1, longest_output):
            t += cost.time([], [longest_prompt + step - 1] * len(batch))
            for i in batch:
                if requests[i].output_len == step + 1:
                    finish[i] = t
        for i in batch:
            if requests[i].output_len == 1:
                finish[i] = first[i]
    return first, finish, peak_batch


@dataclass(frozen=True)
class SimResult:
    """Per-request outcome and summary statistics of one simulation."""

    served: list[Served]
    peak_batch: int

    @property
    def makespan(self) -> float:
        return max(s.finish for s in self.served) - min(s.request.arrival for s in self.served)

    @property
    def throughput(self) -> float:
        """Generated tokens per second over the whole run."""
        return sum(s.request.output_len for s in self.served) / self.makespan

    def mean(self, metric: str) -> float:
        """Mean of a per-request metric: "ttft", "tpot" or "latency" (arrival to finish)."""
        if metric == "latency":
            return float(np.mean([s.finish - s.request.arrival for s in self.served]))
        return float(np.mean([getattr(s, metric) for s in self.served]))


def simulate(
    requests: list[Request],
    cost: StepCost,
    policy: str = "continuous",
    *,
    max_batch: int = 64,
    kv_capacity_tokens: int | None = None,
    paged: bool = True,
    block_size: int = 16,
    max_seq_len: int = 4096,
) -> SimResult:
    """Serve `requests` on one engine with policy "static" or "continuous" batching.

    KV memory (continuous only) defaults to `cost.kv_capacity_tokens()`.
    """
    if policy == "static":
        first, finish, peak = _static(requests, cost, max_batch)
    elif policy == "continuous":
        capacity = cost.kv_capacity_tokens() if kv_capacity_tokens is None else kv_capacity_tokens
        first, finish, peak = _continuous(
            requests, [r.arrival for r in requests], cost, prefilled=False, max_batch=max_batch,
            kv_capacity_tokens=capacity, paged=paged, block_size=block_size,
            max_seq_len=max_seq_len,
        )  # fmt: skip
    else:
        raise ValueError(f"policy must be 'static' or 'continuous', got {policy!r}")
    return SimResult(
        [Served(r, f, e) for r, f, e in zip(requests, first, finish, strict=True)], peak
    )


def prefill_schedule(
    requests: list[Request], cost: StepCost, max_prefill_tokens: int = 8192
) -> list[float]:
    """First-token times on a prefill-only instance: FCFS, arrived prompts batched up to a
    token budget (at least one prompt per step)."""
    order = sorted(range(len(requests)), key=lambda i: requests[i].arrival)
    done = [math.nan] * len(requests)
    t, nxt = 0.0, 0
    while nxt < len(order):
        t = max(t, requests[order[nxt]].arrival)
        batch, tokens = [], 0
        while nxt < len(order) and requests[order[nxt]].arrival <= t:
            p = requests[order[nxt]].prompt_len
            if batch and tokens + p > max_prefill_tokens:
                break
            batch.append(order[nxt])
            tokens += p
            nxt += 1
        t += cost.time([requests[i].prompt_len for i in batch], [])
        for i in batch:
            done[i] = t
    return done


def simulate_disaggregated(
    requests: list[Request],
    prefill_cost: StepCost,
    decode_cost: StepCost,
    *,
    link_bandwidth: float,
    max_batch: int = 64,
    max_prefill_tokens: int = 8192,
    kv_capacity_tokens: int | None = None,
    block_size: int = 16,
) -> SimResult:
    """Prefill on one instance, ship the KV cache at `link_bandwidth` bytes/s, decode on another.

    The first token leaves the prefill instance; the request joins the decode instance's
    continuous batch (paged KV) once its cache has arrived.
    """
    first = prefill_schedule(requests, prefill_cost, max_prefill_tokens)
    ready = [
        f + prefill_cost.kv_bytes(r.prompt_len) / link_bandwidth
        for f, r in zip(first, requests, strict=True)
    ]
    capacity = (
        decode_cost.kv_capacity_tokens() if kv_capacity_tokens is None else kv_capacity_tokens
    )
    _, finish, peak = _continuous(
        requests, ready, decode_cost, prefilled=True, max_batch=max_batch,
        kv_capacity_tokens=capacity, paged=True, block_size=block_size, max_seq_len=0,
    )  # fmt: skip
    finish = [
        f if r.output_len == 1 else e for r, f, e in zip(requests, first, finish, strict=True)
    ]
    return SimResult(
        [Served(r, f, e) for r, f, e in zip(requests, first, finish, strict=True)], peak
    )
