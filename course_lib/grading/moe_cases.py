"""Seeded inputs and references for the mixture-of-experts and MLA exercises (ps09).

Router logits are drawn without near-ties, so any correct top-k picks the reference's experts.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.grading.checks import Case, random_cases
from course_lib.kernels import apply_rope, load_balancing_loss, rms_norm, top_k_routing
from course_lib.kernels import silu as _silu
from course_lib.models.analytics import parameter_breakdown
from course_lib.models.config import ModelConfig

_GAP = 1e-3  # minimum gap between consecutive sorted router logits


def _logits(rng: np.random.Generator, n: int, e: int) -> torch.Tensor:
    """(n, e) float64 logits whose sorted values differ by at least _GAP in every row."""
    while True:
        x = rng.standard_normal((n, e)) * float(rng.uniform(0.5, 3))
        if e == 1 or np.diff(np.sort(x, axis=1), axis=1).min() > _GAP:
            return torch.as_tensor(x)


# ---------------------------------------------------------------- top-k router


def reference_top_k_gates(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax over E, top-k, renormalised to sum to one: (N, E) -> weights, indices (N, k)."""
    weights, indices = top_k_routing(logits.double(), k)
    return weights.double(), indices


def router_cases(seed: int, n: int) -> list[Case]:
    """`(logits (N, E), k)`: k = 1, k = E, one token, one expert."""
    rng = np.random.default_rng(seed + 7)
    edge = [
        Case((_logits(rng, 5, 8), 1), label="k = 1 (Switch): the gate is always 1"),
        Case((_logits(rng, 4, 6), 6), label="k = E: every expert, gates = softmax"),
        Case((_logits(rng, 1, 8), 2), label="one token, top-2 of 8 (Mixtral)"),
        Case((torch.tensor([[0.0]], dtype=torch.float64), 1), label="one expert"),
    ]

    def make(rng: np.random.Generator) -> Case:
        e = int(rng.integers(2, 17))
        return Case((_logits(rng, int(rng.integers(1, 20)), e), int(rng.integers(1, e + 1))))

    return random_cases(seed, n, make, edge_cases=edge)


# ---------------------------------------------------------------- MoE forward


def _swiglu(x, w_gate, w_up, w_down):
    return F.linear(_silu(F.linear(x, w_gate)) * F.linear(x, w_up), w_down)


def reference_moe(x, router, w_gate, w_up, w_down, k, shared=None):
    """sum over the top-k experts of gate * SwiGLU_e(x), plus the shared expert if given.

    x (N, d); router (E, d); w_gate, w_up (E, h, d); w_down (E, d, h); shared: None or
    (w_gate (h_s, d), w_up (h_s, d), w_down (d, h_s)).
    """
    weights, indices = top_k_routing(F.linear(x, router), k)  # (N, k)
    out = torch.zeros_like(x)
    for e in range(router.shape[0]):  # an explicit loop over experts and their tokens
        token, slot = torch.nonzero(indices == e, as_tuple=True)
        if len(token):
            y = _swiglu(x[token], w_gate[e], w_up[e], w_down[e])
            out[token] += weights[token, slot, None].to(x.dtype) * y
    if shared is not None:
        out = out + _swiglu(x, *shared)
    return out


def moe_cases(seed: int, n: int) -> list[Case]:
    """`(x, router, w_gate, w_up, w_down, k, shared)` in float64, with and without shared."""

    def make(rng: np.random.Generator, *, e=None, k=None, with_shared=None) -> Case:
        e = e or int(rng.integers(2, 9))
        k = k or int(rng.integers(1, e + 1))
        d, h, t = int(rng.integers(2, 12)), int(rng.integers(1, 16)), int(rng.integers(1, 12))

        def randn(*s):
            return torch.as_tensor(rng.standard_normal(s))

        while True:
            x, router = randn(t, d), randn(e, d)
            if e == 1 or np.diff(np.sort((x @ router.T).numpy(), 1), axis=1).min() > _GAP:
                break
        w = (randn(e, h, d), randn(e, h, d), randn(e, d, h) / h**0.5)
        with_shared = bool(rng.random() < 0.5) if with_shared is None else with_shared
        shared = (randn(2 * h, d), randn(2 * h, d), randn(d, 2 * h)) if with_shared else None
        return Case((x, router, *w, k, shared), label=f"E={e}, k={k}, shared={with_shared}")

    rng = np.random.default_rng(seed + 11)
    edge = [
        make(rng, e=8, k=2, with_shared=False),
        make(rng, e=4, k=4, with_shared=False),
        make(rng, e=6, k=1, with_shared=True),
        make(rng, e=8, k=8, with_shared=True),
    ]
    return random_cases(seed, n, make, edge_cases=edge)


# ---------------------------------------------------------------- balancing loss


def reference_balancing_loss(router_logits, expert_indices, n_experts):
    """Switch's E * sum_e f_e P_e, f over all (token, slot) assignments; a 0-d float64 tensor."""
    return load_balancing_loss(router_logits, expert_indices, n_experts).double()


def balancing_cases(seed: int, n: int) -> list[Case]:
    """`(router_logits (N, E), expert_indices (N, k), E)`: uniform, collapsed, random."""
    edge = [
        Case(
            (torch.zeros(4, 4, dtype=torch.float64), torch.arange(4)[:, None], 4),
            label="uniform router, balanced: loss 1",
        ),
        Case(
            (
                torch.tensor([[9.0, 0, 0]] * 5, dtype=torch.float64),
                torch.zeros(5, 1, dtype=torch.long),
                3,
            ),
            label="collapsed on expert 0",
        ),
        Case(
            (torch.zeros(3, 5, dtype=torch.float64), torch.tensor([[0, 1], [2, 3], [4, 0]]), 5),
            label="k = 2",
        ),
    ]

    def make(rng: np.random.Generator) -> Case:
        e, t = int(rng.integers(2, 12)), int(rng.integers(1, 30))
        k = int(rng.integers(1, e + 1))
        logits = _logits(rng, t, e)
        return Case((logits, torch.topk(logits, k).indices, e), label=f"E={e}, k={k}")

    return random_cases(seed, n, make, edge_cases=edge)


# ---------------------------------------------------------------- MLA's compressed cache


def reference_mla_latent(h, w_dkv, kv_norm_weight, cos, sin, kv_lora_rank):
    """MLA cache entries (DeepSeek-V2 §2.1): [c; k_pe] = h W_dkv^T, c -> RMSNorm, k_pe -> RoPE.

    h (B, T, d); w_dkv (d_c + d_R, d); cos, sin (T, d_R / 2); half-layout RoPE, eps 1e-6.
    Returns c_kv (B, T, d_c) and k_rope (B, T, d_R).
    """
    c_kv, k_pe = F.linear(h, w_dkv).split([kv_lora_rank, w_dkv.shape[0] - kv_lora_rank], -1)
    return rms_norm(c_kv, kv_norm_weight, 1e-6), apply_rope(k_pe[:, None], cos, sin)[:, 0]


def mla_cases(seed: int, n: int) -> list[Case]:
    """`(h, w_dkv, kv_norm_weight, cos, sin, kv_lora_rank)` in float64."""

    def make(rng: np.random.Generator) -> Case:
        b, t, d = int(rng.integers(1, 3)), int(rng.integers(1, 10)), int(rng.integers(4, 24))
        d_c, d_r = int(rng.integers(1, 16)), 2 * int(rng.integers(1, 5))
        angles = np.arange(t)[:, None] * 10000.0 ** (-np.arange(0, d_r, 2) / d_r)[None, :]
        cos, sin = torch.as_tensor(np.cos(angles)), torch.as_tensor(np.sin(angles))
        h = torch.as_tensor(rng.standard_normal((b, t, d)))
        w = torch.as_tensor(rng.standard_normal((d_c + d_r, d)))
        g = torch.as_tensor(rng.uniform(0.5, 1.5, d_c))
        return Case((h, w, g, cos, sin, d_c), label=f"d_c={d_c}, d_R={d_r}")

    return random_cases(seed, n, make)


def mha_cache_elements(n_heads: int, head_dim: int, n_layers: int) -> int:
    """2 n_h d_h l: keys and values of every head (DeepSeek-V2, Table 1)."""
    return 2 * n_heads * head_dim * n_layers


def mla_cache_elements(kv_lora_rank: int, rope_dim: int, n_layers: int) -> int:
    """(d_c + d_R) l: the latent and the shared RoPE key (DeepSeek-V2, Table 1)."""
    return (kv_lora_rank + rope_dim) * n_layers


# ---------------------------------------------------------------- total and active parameters

_MOE_KEYS = ("experts", "router", "shared_experts")  # the MoE layers' share of the breakdown


def reference_moe_parameters(
    d_model: int,
    moe_d_ff: int,
    n_experts: int,
    k: int,
    n_moe_layers: int,
    n_shared: int = 0,
    bias: bool = False,
) -> tuple[int, int]:
    """(total, active) parameters of n_moe_layers MoE feed-forward layers of SwiGLU experts.

    Read off `course_lib.models.parameter_breakdown` (experts + router + shared experts) for
    a model made of those layers only; `active` keeps k of the E routed experts.
    """
    cfg = ModelConfig(
        vocab_size=1,
        d_model=d_model,
        n_layers=n_moe_layers,
        n_heads=1,
        d_ff=moe_d_ff,
        n_experts=n_experts,
        n_experts_per_tok=k,
        n_shared_experts=n_shared,
        moe_bias=bias,
    )
    total, active = (parameter_breakdown(cfg, active=a) for a in (False, True))
    return sum(total[key] for key in _MOE_KEYS), sum(active[key] for key in _MOE_KEYS)


def moe_parameter_cases(seed: int, n: int) -> list[Case]:
    """`(d_model, moe_d_ff, n_experts, k, n_moe_layers, n_shared, bias)`: k = 1, k = E,
    biases (gpt-oss), shared experts (DeepSeek-V3); biases and shared experts never together."""
    edge = [
        Case((4, 3, 1, 1, 1, 0, False), label="one expert, k = 1: total = active"),
        Case((6, 5, 4, 4, 2, 0, False), label="k = E: every expert is active"),
        Case((8, 4, 6, 2, 3, 0, True), label="biases on the experts and the router (gpt-oss)"),
        Case((8, 4, 6, 2, 3, 1, False), label="one shared expert (DeepSeek-V3)"),
        Case((5, 7, 8, 2, 1, 2, False), label="two shared experts"),
    ]

    def make(rng: np.random.Generator) -> Case:
        e = int(rng.integers(1, 17))
        kind = int(rng.integers(3))  # 0 plain, 1 biases, 2 shared experts
        args = (
            int(rng.integers(1, 65)),  # d_model
            int(rng.integers(1, 65)),  # moe_d_ff
            e,
            int(rng.integers(1, e + 1)),
            int(rng.integers(1, 6)),
            int(rng.integers(1, 3)) if kind == 2 else 0,
            kind == 1,
        )
        return Case(args, label=("plain", "biases", "shared experts")[kind])

    return random_cases(seed, n, make, edge_cases=edge)
