"""Elo and Bradley–Terry ratings against the formula by hand, logistic regression, and truth.

- Elo: the update of Elo (1978) written out, E = 1 / (1 + 10^((R_b - R_a)/400)).
- Bradley–Terry: the MM fit equals scikit-learn's unpenalised logistic regression on the
  same battles (feature +1 for a, -1 for b; a tie is half a win and half a loss), and on a
  large synthetic log it recovers the ratings that generated it.
"""

import math

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from course_lib.evaluation import (
    NoFiniteRatings,
    battle_counts,
    bootstrap_ratings,
    bradley_terry,
    elo_expected,
    elo_ratings,
    elo_update,
    simulate_battles,
)

TRUE = {"alpaca": 900.0, "bison": 1000.0, "camel": 1050.0, "dingo": 1200.0}


def test_elo_update_by_hand():
    # R_a = 1200, R_b = 1000: E_a = 1 / (1 + 10^(-200/400)) = 1 / (1 + 10^-0.5) = 0.7597.
    e_a = 1 / (1 + 10 ** (-0.5))
    assert elo_expected(1200, 1000) == pytest.approx(e_a, rel=1e-15)
    assert elo_expected(1000, 1200) == pytest.approx(1 - e_a, rel=1e-15)
    # The weaker model wins with K = 32: it gains 32 * 0.7597 = 24.31, the other loses as much.
    new_a, new_b = elo_update(1200, 1000, 0.0, k=32)
    assert new_a == pytest.approx(1200 - 32 * e_a, rel=1e-15)
    assert new_b == pytest.approx(1000 + 32 * e_a, rel=1e-15)
    assert elo_update(1000, 1000, 0.5) == (1000, 1000)  # a tie between equals changes nothing


def test_elo_depends_on_the_order_bradley_terry_does_not():
    battles = [("a", "b", 1.0)] * 5 + [("a", "b", 0.0)] * 5
    forward, backward = elo_ratings(battles), elo_ratings(battles[::-1])
    assert forward["a"] < 1000 < backward["a"]  # the most recent results weigh most
    assert forward["a"] + forward["b"] == pytest.approx(2000)  # Elo conserves the total
    bt = bradley_terry(battles)
    assert bt == pytest.approx(bradley_terry(battles[::-1]))
    assert bt["a"] == pytest.approx(1000) and bt["b"] == pytest.approx(1000)


def test_two_models_closed_form():
    # With only a and b, the MLE is p_a / (p_a + p_b) = w_a / n: R_a - R_b = 400 log10(w_a / w_b).
    battles = [("a", "b", 1.0)] * 7 + [("b", "a", 1.0)] * 2 + [("a", "b", 0.5)] * 2
    r = bradley_terry(battles)
    assert r["a"] - r["b"] == pytest.approx(400 * math.log10(8 / 3), rel=1e-9)
    assert (r["a"] + r["b"]) / 2 == pytest.approx(1000)


def logistic_regression_ratings(battles, names):
    """Bradley–Terry as logistic regression (the Chatbot Arena notebook's formulation)."""
    index = {n: i for i, n in enumerate(names)}
    rows, labels, weights = [], [], []
    for a, b, s in battles:
        x = np.zeros(len(names))
        x[index[a]], x[index[b]] = math.log(10), -math.log(10)
        for label, w in ((1, s), (0, 1 - s)):
            if w > 0:
                rows.append(x)
                labels.append(label)
                weights.append(w)
    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-12, max_iter=10_000)
    lr.fit(np.array(rows), np.array(labels), sample_weight=np.array(weights))
    ratings = 400 * lr.coef_[0]
    return ratings - ratings.mean() + 1000


def test_bradley_terry_equals_logistic_regression():
    battles = simulate_battles(TRUE, 400, seed=1, tie_probability=0.15)
    names, _, _ = battle_counts(battles)
    ours = bradley_terry(battles)
    expected = logistic_regression_ratings(battles, names)
    np.testing.assert_allclose([ours[n] for n in names], expected, atol=1e-3)


def test_bradley_terry_recovers_the_generating_ratings():
    battles = simulate_battles(TRUE, 20_000, seed=2)
    fitted = bradley_terry(battles)
    shift = np.mean(list(TRUE.values())) - 1000  # the fit fixes the mean at 1000
    for name, rating in TRUE.items():
        assert fitted[name] == pytest.approx(rating - shift, abs=15)  # ~3 standard errors


def test_bootstrap_intervals_cover_the_truth_and_shrink():
    small = simulate_battles(TRUE, 300, seed=3)
    large = small + simulate_battles(TRUE, 2700, seed=4)
    shift = np.mean(list(TRUE.values())) - 1000
    wide, narrow = bootstrap_ratings(small, n_rounds=60), bootstrap_ratings(large, n_rounds=60)
    for name, rating in TRUE.items():
        assert narrow[name].lower <= narrow[name].rating <= narrow[name].upper
        assert narrow[name].lower - 10 <= rating - shift <= narrow[name].upper + 10
        assert narrow[name].upper - narrow[name].lower < wide[name].upper - wide[name].lower
    assert bootstrap_ratings(small, n_rounds=5, seed=7) == bootstrap_ratings(small, 5, seed=7)


def test_bradley_terry_refuses_an_unbeaten_model():
    with pytest.raises(ValueError, match="never lost"):
        bradley_terry([("a", "b", 1.0), ("a", "c", 1.0), ("b", "c", 0.5)])
    with pytest.raises(ValueError, match="bad battle"):
        bradley_terry([("a", "a", 1.0)])


def test_bootstrap_skips_resamples_without_finite_ratings():
    battles = simulate_battles(TRUE, 25, seed=0)  # small: some resamples have an unbeaten model
    point = bradley_terry(battles)
    with pytest.warns(UserWarning, match="no finite ratings"):
        intervals = bootstrap_ratings(battles, n_rounds=50)
    for name, interval in intervals.items():
        assert interval.rating == point[name]
        assert np.isfinite(interval.lower) and interval.lower <= interval.upper


def test_bootstrap_refuses_when_no_resample_has_finite_ratings():
    battles = simulate_battles(TRUE, 100, seed=1)
    calls = []

    def fit_full_log_only(log):  # finite on the full log, unbounded on every resample
        calls.append(len(calls))
        if len(calls) > 1:
            raise NoFiniteRatings("an unbeaten model")
        return bradley_terry(log)

    with pytest.raises(ValueError, match="collect more battles"):
        bootstrap_ratings(battles, n_rounds=3, fit=fit_full_log_only)
