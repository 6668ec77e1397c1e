"""Fitting scaling laws to measured losses.

- `fit_power_law(x, y)`: y = c · x^k by least squares in log-log space.
- `fit_chinchilla(n, d, loss)`: the parametric law L = E + A/N^α + B/D^β, fitted the way
  Hoffmann et al. (2022, §3.3 and Appendix D.2) do: minimise the Huber loss (δ = 1e-3) of
  log L̂ − log L with L-BFGS from a grid of starting points, where
  log L̂ = LSE(a − α log N, b − β log D, e) and A = e^a, B = e^b, E = e^e.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber, logsumexp

from course_lib.scaling.laws import ChinchillaFit


def fit_power_law(x, y) -> tuple[float, float]:
    """(c, k) with y ≈ c · x^k, fitted by ordinary least squares on (log x, log y)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"need two 1-D arrays of equal length ≥ 2, got {x.shape} and {y.shape}")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("a power law is fitted in log space: x and y must be positive")
    k, log_c = np.polyfit(np.log(x), np.log(y), deg=1)
    return float(np.exp(log_c)), float(k)


# A coarser version of the paper's grid (α, β ∈ {0, 0.5, …, 2}, e ∈ {-1, -0.5, …, 1},
# a, b ∈ {0, 5, …, 25}); pass `grid` to search the full one.
DEFAULT_GRID = {
    "a": (5.0, 15.0),
    "b": (5.0, 15.0),
    "e": (0.0, 1.0),
    "alpha": (0.2, 0.6),
    "beta": (0.2, 0.6),
}


def fit_chinchilla(n_params, n_tokens, loss, delta: float = 1e-3, grid=None) -> ChinchillaFit:
    """Fit L(N, D) = E + A/N^α + B/D^β to measured (N, D, L) triples (Hoffmann et al. 2022)."""
    log_n = np.log(np.asarray(n_params, dtype=np.float64))
    log_d = np.log(np.asarray(n_tokens, dtype=np.float64))
    log_l = np.log(np.asarray(loss, dtype=np.float64))
    if not (log_n.shape == log_d.shape == log_l.shape) or log_n.size < 5:
        raise ValueError("need at least 5 (N, D, L) triples of equal length")

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        a, b, e, alpha, beta = p
        terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])
        lse = logsumexp(terms, axis=0)  # (n,)
        r = lse - log_l
        g = np.clip(r, -delta, delta)  # Huber'(r)
        w = np.exp(terms - lse)  # (3, n): d lse / d term
        grad = np.array(
            [
                np.sum(g * w[0]),
                np.sum(g * w[1]),
                np.sum(g * w[2]),
                -np.sum(g * w[0] * log_n),
                -np.sum(g * w[1] * log_d),
            ]
        )
        return float(np.sum(huber(delta, r))), grad

    grid = grid or DEFAULT_GRID
    best = None
    for start in itertools.product(*(grid[k] for k in ("a", "b", "e", "alpha", "beta"))):
        res = minimize(
            objective,
            np.array(start),
            jac=True,
            method="L-BFGS-B",
            # Huber gradients are at most δ per point: default tolerances stop far too early.
            options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000},
        )
        if best is None or res.fun < best.fun:
            best = res
    a, b, e, alpha, beta = best.x
    return ChinchillaFit(
        E=float(np.exp(e)),
        A=float(np.exp(a)),
        B=float(np.exp(b)),
        alpha=float(alpha),
        beta=float(beta),
        source="fitted by course_lib.scaling.fit_chinchilla",
    )
