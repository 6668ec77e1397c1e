"""Neural scaling laws: Kaplan et al. (2020) and Hoffmann et al. (2022, "Chinchilla").

API
- `training_flops(n_params, n_tokens)`: C ≈ 6·N·D (Kaplan et al. 2020, §2.1).
- `KAPLAN`: the published constants; `kaplan_loss_n`, `kaplan_loss_d`, `kaplan_loss_nd`.
- `CHINCHILLA_FIT`: the Approach-3 parametric fit L(N, D) = E + A/N^α + B/D^β.
- `chinchilla_loss(n_params, n_tokens, fit)`.

Losses are in nats per token on each paper's own data set, so the two laws' absolute
values are not comparable with each other; their shapes are what the course studies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def training_flops(n_params: float, n_tokens: float) -> float:
    """Training compute C ≈ 6·N·D: 2 FLOPs per parameter per token forward, 4 backward.

    Kaplan et al. (2020), §2.1; the attention term (≈ 6·n_layers·T·d per token) is ignored.
    """
    return 6.0 * n_params * n_tokens


@dataclass(frozen=True)
class KaplanConstants:
    """Kaplan et al. (2020), "Scaling Laws for Neural Language Models", Table 5 / eq. 1.1–1.5.

    N counts non-embedding parameters, D tokens, C_min compute in PF-days.
    """

    alpha_n: float = 0.076
    n_c: float = 8.8e13
    alpha_d: float = 0.095
    d_c: float = 5.4e13
    alpha_c_min: float = 0.050
    c_c_min: float = 3.1e8  # PF-days
    source: str = "Kaplan et al. 2020, arXiv:2001.08361, eq. 1.1-1.5 and Table 5"


KAPLAN = KaplanConstants()
PF_DAY = 1e15 * 24 * 3600  # FLOPs in one petaflop/s-day


def kaplan_loss_n(n_params, k: KaplanConstants = KAPLAN):
    """L(N) = (N_c / N)^α_N: loss of a model trained to convergence on enough data (eq. 1.1)."""
    return (k.n_c / np.asarray(n_params, dtype=np.float64)) ** k.alpha_n


def kaplan_loss_d(n_tokens, k: KaplanConstants = KAPLAN):
    """L(D) = (D_c / D)^α_D: loss of a large model trained on D tokens with early stopping (eq. 1.2)."""
    return (k.d_c / np.asarray(n_tokens, dtype=np.float64)) ** k.alpha_d


def kaplan_loss_c(compute_pf_days, k: KaplanConstants = KAPLAN):
    """L(C_min) = (C_c^min / C_min)^α_C^min with compute-efficient training (eq. 1.3)."""
    return (k.c_c_min / np.asarray(compute_pf_days, dtype=np.float64)) ** k.alpha_c_min


def kaplan_loss_nd(n_params, n_tokens, k: KaplanConstants = KAPLAN):
    """L(N, D) = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D: both limits at once (eq. 1.5)."""
    n = np.asarray(n_params, dtype=np.float64)
    d = np.asarray(n_tokens, dtype=np.float64)
    return ((k.n_c / n) ** (k.alpha_n / k.alpha_d) + k.d_c / d) ** k.alpha_d


@dataclass(frozen=True)
class ChinchillaFit:
    """L(N, D) = E + A / N^α + B / D^β (Hoffmann et al. 2022, eq. 2 and §3.3)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""


CHINCHILLA_FIT = ChinchillaFit(
    E=1.69,
    A=406.4,
    B=410.7,
    alpha=0.34,
    beta=0.28,
    source="Hoffmann et al. 2022, arXiv:2203.15556, §3.3 (Approach 3), eq. 10",
)


def chinchilla_loss(n_params, n_tokens, fit: ChinchillaFit = CHINCHILLA_FIT):
    """Predicted final loss of a model with N parameters trained on D tokens."""
    n = np.asarray(n_params, dtype=np.float64)
    d = np.asarray(n_tokens, dtype=np.float64)
    return fit.E + fit.A / n**fit.alpha + fit.B / d**fit.beta
