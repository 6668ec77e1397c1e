"""Compute-optimal allocation of a FLOP budget between parameters and tokens.

Hoffmann et al. (2022) find that parameters and tokens should grow in equal proportion,
N_opt ∝ C^0.5 and D_opt ∝ C^0.5 (Approaches 1 and 2), which works out to about 20
training tokens per parameter: Chinchilla itself is 70B parameters on 1.4T tokens.
Their parametric fit (Approach 3) gives the closed form of eq. 4.
"""

from __future__ import annotations

import math

from course_lib.scaling.laws import CHINCHILLA_FIT, ChinchillaFit

TOKENS_PER_PARAM = 20.0


def chinchilla_optimal(
    compute_flops: float, tokens_per_param: float = TOKENS_PER_PARAM
) -> tuple[float, float]:
    """(params, tokens) that spend `compute_flops` = 6·N·D with D = tokens_per_param · N.

    The "20 tokens per parameter" rule of Hoffmann et al. (2022), Table 3.
    """
    if compute_flops <= 0:
        raise ValueError(f"compute_flops must be positive, got {compute_flops}")
    n = math.sqrt(compute_flops / (6.0 * tokens_per_param))
    return n, tokens_per_param * n


def chinchilla_parametric_optimal(
    compute_flops: float, fit: ChinchillaFit = CHINCHILLA_FIT
) -> tuple[float, float]:
    """(params, tokens) minimising L(N, D) = E + A/N^α + B/D^β subject to 6·N·D = C.

    Hoffmann et al. (2022), eq. 4: N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b with
    G = (αA / βB)^(1/(α+β)), a = β/(α+β), b = α/(α+β).
    """
    if compute_flops <= 0:
        raise ValueError(f"compute_flops must be positive, got {compute_flops}")
    s = fit.alpha + fit.beta
    g = (fit.alpha * fit.A / (fit.beta * fit.B)) ** (1.0 / s)
    n = g * (compute_flops / 6.0) ** (fit.beta / s)
    d = (compute_flops / 6.0) ** (fit.alpha / s) / g
    return n, d


def tokens_for_loss(
    n_params: float, target_loss: float, fit: ChinchillaFit = CHINCHILLA_FIT
) -> float:
    """Tokens a model of `n_params` needs to reach `target_loss` under the parametric fit.

    The over-training question of Llama 3: a smaller model reaches the same loss with more
    tokens, more training compute, and cheaper inference. Infinite when unreachable.
    """
    gap = target_loss - fit.E - fit.A / n_params**fit.alpha
    if gap <= 0:
        return math.inf
    return (fit.B / gap) ** (1.0 / fit.beta)
