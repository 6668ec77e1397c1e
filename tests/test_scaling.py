"""Scaling laws: published tables recomputed from first principles."""

import math

import numpy as np
import pytest

from course_lib.scaling import (
    CHINCHILLA_FIT,
    KAPLAN,
    chinchilla_loss,
    chinchilla_optimal,
    chinchilla_parametric_optimal,
    fit_chinchilla,
    fit_power_law,
    kaplan_loss_d,
    kaplan_loss_n,
    kaplan_loss_nd,
    tokens_for_loss,
    training_flops,
)

# Hoffmann et al. 2022, Table 3: (parameters, FLOPs, tokens) of compute-optimal models.
CHINCHILLA_TABLE_3 = [
    (400e6, 1.92e19, 8.0e9),
    (1e9, 1.21e20, 20.2e9),
    (10e9, 1.23e22, 205.1e9),
    (67e9, 5.76e23, 1.5e12),
    (175e9, 3.85e24, 3.7e12),
    (280e9, 9.90e24, 5.9e12),
    (520e9, 3.43e25, 11.0e12),
    (1e12, 1.27e26, 21.2e12),
    (10e12, 1.30e28, 216.2e12),
]


@pytest.mark.parametrize(("params", "flops", "tokens"), CHINCHILLA_TABLE_3)
def test_table3_is_six_n_d(params, flops, tokens):
    # The table's own rounding (1.5T, 3.7T) leaves up to ~5% between 6ND and its FLOPs column.
    assert training_flops(params, tokens) == pytest.approx(flops, rel=0.05)


@pytest.mark.parametrize(("params", "flops", "tokens"), CHINCHILLA_TABLE_3)
def test_twenty_tokens_per_parameter_reproduces_table3(params, flops, tokens):
    n, d = chinchilla_optimal(flops)
    assert n == pytest.approx(params, rel=0.05)
    # Tokens are printed with two significant digits (67B: 1.5T where 6ND gives 1.43T).
    assert d == pytest.approx(tokens, rel=0.08)
    assert training_flops(n, d) == pytest.approx(flops, rel=1e-12)


def test_chinchilla_itself():
    # Chinchilla: 70B parameters, 1.4T tokens (Hoffmann et al. 2022, §4.1), Gopher's budget.
    n, d = chinchilla_optimal(training_flops(70e9, 1.4e12))
    assert (n, d) == (pytest.approx(70e9), pytest.approx(1.4e12))
    with pytest.raises(ValueError, match="positive"):
        chinchilla_optimal(0)


def test_parametric_optimum_matches_a_numerical_search():
    compute = 5.76e23
    n_opt, d_opt = chinchilla_parametric_optimal(compute)
    assert training_flops(n_opt, d_opt) == pytest.approx(compute, rel=1e-9)
    n_grid = np.logspace(9, 12, 20001)
    losses = chinchilla_loss(n_grid, compute / (6 * n_grid))
    assert n_grid[np.argmin(losses)] == pytest.approx(n_opt, rel=1e-3)


def test_parametric_exponents_match_the_paper():
    # Table 2 of Hoffmann et al. 2022 reports a = 0.46, b = 0.54 for Approach 3.
    c1, c2 = 1e20, 1e24
    (n1, d1), (n2, d2) = chinchilla_parametric_optimal(c1), chinchilla_parametric_optimal(c2)
    a = math.log(n2 / n1) / math.log(c2 / c1)
    b = math.log(d2 / d1) / math.log(c2 / c1)
    assert a == pytest.approx(0.46, abs=0.01)
    assert b == pytest.approx(0.54, abs=0.01)


def test_kaplan_limits_agree_with_the_joint_law():
    n, d = 1e9, 1e15
    # With D huge, L(N, D) reduces to L(N); with N huge, to L(D) (Kaplan et al. 2020, eq. 1.5).
    assert kaplan_loss_nd(n, 1e30) == pytest.approx(kaplan_loss_n(n), rel=1e-9)
    assert kaplan_loss_nd(1e30, d) == pytest.approx(kaplan_loss_d(d), rel=1e-6)
    # Doubling N multiplies L(N) by 2^-α_N.
    assert kaplan_loss_n(2 * n) / kaplan_loss_n(n) == pytest.approx(2**-KAPLAN.alpha_n)


def test_fit_power_law_recovers_exponent():
    x = np.logspace(6, 10, 12)
    y = 3.0 * x**-0.076 * np.exp(np.random.default_rng(0).normal(0, 1e-4, x.shape))
    c, k = fit_power_law(x, y)
    assert k == pytest.approx(-0.076, abs=1e-3)
    assert c == pytest.approx(3.0, rel=0.01)
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([1, -1], [1, 1])


def test_fit_chinchilla_recovers_the_published_fit():
    rng = np.random.default_rng(0)
    n = np.repeat(np.logspace(7.5, 10, 6), 5)
    d = np.tile(np.logspace(9, 11.5, 5), 6)
    loss = chinchilla_loss(n, d) * np.exp(rng.normal(0, 2e-3, n.shape))
    fit = fit_chinchilla(n, d, loss)
    assert fit.alpha == pytest.approx(CHINCHILLA_FIT.alpha, abs=0.03)
    assert fit.beta == pytest.approx(CHINCHILLA_FIT.beta, abs=0.03)
    assert fit.E == pytest.approx(CHINCHILLA_FIT.E, abs=0.05)
    assert np.max(np.abs(chinchilla_loss(n, d, fit) / loss - 1)) < 0.01


def test_overtraining_needs_more_tokens_for_the_same_loss():
    # Llama 3 8B style: a smaller model reaches a given loss only with many more tokens.
    target = chinchilla_loss(70e9, 1.4e12)
    d_small = tokens_for_loss(8e9, target)
    assert d_small > 1.4e12
    assert chinchilla_loss(8e9, d_small) == pytest.approx(target, rel=1e-9)
    assert tokens_for_loss(8e9, CHINCHILLA_FIT.E) == math.inf
