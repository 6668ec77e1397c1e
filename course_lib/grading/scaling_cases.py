"""Seeded inputs for the scaling-law exercises (ps05): model sizes, budgets, noisy power laws.

Sizes and budgets span the published range (10M to 10T parameters, 1e17 to 1e28 FLOPs);
power-law data sets are noisy and irregularly spaced, so fitting in linear space or
swapping the axes gives a visibly different answer; fitted-law constants are drawn around
the published ones of Hoffmann et al. (2022) and Besiroglu et al. (2024).
"""

from __future__ import annotations

import numpy as np

from course_lib.grading.checks import Case, random_cases


def flops_cases(seed: int, n: int) -> list[Case]:
    """`(n_params, n_tokens)`: published runs plus random sizes."""
    edge = [
        Case((175e9, 300e9), label="GPT-3 175B on 300B tokens"),
        Case((70e9, 1.4e12), label="Chinchilla 70B on 1.4T tokens"),
        Case((8e9, 15e12), label="Llama 3 8B on 15T tokens"),
        Case((1, 1), label="one parameter, one token"),
    ]

    def make(rng: np.random.Generator) -> Case:
        return Case((float(10 ** rng.uniform(7, 13)), float(10 ** rng.uniform(9, 14))))

    return random_cases(seed, n, make, edge_cases=edge)


def power_law_cases(seed: int, n: int) -> list[Case]:
    """`(x, y)` arrays with y ≈ c · x^k times log-normal noise; x spans several decades."""
    x = np.logspace(6, 10, 9)
    edge = [
        Case((x, 3.0 * x**-0.076), label="Kaplan-like L(N), no noise"),
        Case((np.array([1.0, 10.0]), np.array([2.0, 20.0])), label="two points, k = 1"),
        Case((np.array([1e20, 1e22, 1e24]), np.array([1e9, 1e10, 1e11])), label="N_opt ∝ C^0.5"),
    ]

    def make(rng: np.random.Generator) -> Case:
        size = int(rng.integers(4, 30))
        x = np.sort(10 ** rng.uniform(0, rng.uniform(2, 12), size))  # (size,)
        c, k = float(10 ** rng.uniform(-2, 3)), float(rng.uniform(-1.5, 1.5))
        y = c * x**k * np.exp(rng.normal(0, 0.2, size))  # (size,)
        return Case((x, y), label="noisy power law")

    return random_cases(seed, n, make, edge_cases=edge)


def budget_cases(seed: int, n: int) -> list[Case]:
    """`(compute_flops, tokens_per_param)`: Table 3 budgets and random ones."""
    edge = [
        Case((5.76e23, 20.0), label="the Gopher budget"),
        Case((3.85e24, 20.0), label="Table 3: the 175B row"),
        Case((6 * 8e9 * 15e12, 20.0), label="Llama 3 8B's budget"),
        Case((1e21, 100.0), label="100 tokens per parameter"),
    ]

    def make(rng: np.random.Generator) -> Case:
        return Case((float(10 ** rng.uniform(17, 28)), float(rng.choice([5.0, 20.0, 40.0]))))

    return random_cases(seed, n, make, edge_cases=edge)


def parametric_cases(seed: int, n: int) -> list[Case]:
    """`(compute_flops, E, A, B, alpha, beta)` around the published fits."""
    edge = [
        Case((5.76e23, 1.69, 406.4, 410.7, 0.34, 0.28), label="Hoffmann et al., Gopher budget"),
        Case((5.76e23, 1.8172, 482.01, 2085.43, 0.3478, 0.3658), label="Besiroglu et al."),
        Case((1e20, 1.69, 406.4, 410.7, 0.34, 0.28), label="Hoffmann et al., 1e20 FLOPs"),
        Case((1e24, 2.0, 300.0, 300.0, 0.3, 0.3), label="α = β and A = B: N = D"),
    ]

    def make(rng: np.random.Generator) -> Case:
        return Case(
            (
                float(10 ** rng.uniform(18, 27)),
                float(rng.uniform(1.5, 2.0)),
                float(rng.uniform(200, 600)),
                float(rng.uniform(200, 2500)),
                float(rng.uniform(0.25, 0.4)),
                float(rng.uniform(0.25, 0.4)),
            ),
            label="random fit",
        )

    return random_cases(seed, n, make, edge_cases=edge)
