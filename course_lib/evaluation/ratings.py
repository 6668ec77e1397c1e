"""Pairwise ratings from battles: Elo online updates and the Bradley–Terry fit.

A battle is `(model_a, model_b, score_a)` with score_a = 1 (a wins), 0 (b wins) or 0.5
(tie), the format of a Chatbot Arena log (Chiang et al. 2024).

- Elo (1978): both models expect E_a = 1 / (1 + 10^((R_b − R_a)/400)); after the battle
  R_a ← R_a + K (S_a − E_a) and R_b ← R_b − K (S_a − E_a). Online: the result depends on the
  order of the battles and on K.
- Bradley and Terry (1952): P(a beats b) = p_a / (p_a + p_b). The maximum-likelihood
  strengths do not depend on the order; they are found with the MM algorithm of Hunter
  (2004), p_i ← W_i / Σ_j N_ij / (p_i + p_j), where W_i counts i's wins (a tie is half a win
  for each side) and N_ij the battles between i and j. Reported on the Elo scale,
  R_i = 1000 + 400 log10 p_i with the mean rating fixed at 1000, as the Arena does.
- Bootstrap intervals: refit on battle logs resampled with replacement. A small log's
  resample can lose strong connectivity (a model that happens never to lose); such a round
  has no finite ratings and is skipped, with a warning that says how many were.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import connected_components

Battle = tuple[str, str, float]


class NoFiniteRatings(ValueError):
    """The battles admit no finite maximum-likelihood Bradley–Terry ratings."""


def elo_expected(r_a: float, r_b: float, scale: float = 400.0, base: float = 10.0) -> float:
    """Expected score of a against b: 1 / (1 + base^((R_b − R_a)/scale)) (Elo 1978)."""
    return 1.0 / (1.0 + base ** ((r_b - r_a) / scale))


def elo_update(
    r_a: float, r_b: float, score_a: float, k: float = 32.0, scale: float = 400.0
) -> tuple[float, float]:
    """Ratings after one battle: R_a + K (S_a − E_a), R_b − K (S_a − E_a)."""
    delta = k * (score_a - elo_expected(r_a, r_b, scale))
    return r_a + delta, r_b - delta


def elo_ratings(
    battles: Sequence[Battle], k: float = 32.0, initial: float = 1000.0, scale: float = 400.0
) -> dict[str, float]:
    """Online Elo over the battles in the given order; every model starts at `initial`."""
    ratings: dict[str, float] = {}
    for a, b, score_a in battles:
        r_a, r_b = ratings.get(a, initial), ratings.get(b, initial)
        ratings[a], ratings[b] = elo_update(r_a, r_b, score_a, k, scale)
    return ratings


def battle_counts(battles: Sequence[Battle]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names sorted, wins W (m, m), games N (m, m)): W[i, j] = i's score against j, ties half."""
    names = sorted({a for a, _, _ in battles} | {b for _, b, _ in battles})
    index = {name: i for i, name in enumerate(names)}
    wins = np.zeros((len(names), len(names)))  # (m, m)
    for a, b, score_a in battles:
        if a == b or not 0 <= score_a <= 1:
            raise ValueError(f"bad battle {(a, b, score_a)}: two models and a score in [0, 1]")
        i, j = index[a], index[b]
        wins[i, j] += score_a
        wins[j, i] += 1 - score_a
    return names, wins, wins + wins.T


def bradley_terry(
    battles: Sequence[Battle],
    scale: float = 400.0,
    initial: float = 1000.0,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> dict[str, float]:
    """Maximum-likelihood Bradley–Terry ratings on the Elo scale (mean = `initial`).

    The maximum exists only if the "beats" graph is strongly connected (Hunter 2004,
    Assumption 1): a model that never lost (or never won) has an infinite rating.
    """
    names, wins, games = battle_counts(battles)
    beats = wins > 0  # edge i -> j when i scored against j
    n_components, _ = connected_components(beats, directed=True, connection="strong")
    if n_components > 1:
        raise NoFiniteRatings(
            "no finite maximum-likelihood ratings: some group of models never lost (or never"
            " won) against the others; collect more battles"
        )
    w = wins.sum(axis=1)  # (m,) total score of each model
    log_p = np.zeros(len(names))  # (m,) log strengths
    for _ in range(max_iter):
        p = np.exp(log_p)
        denominator = (games / (p[:, None] + p[None, :])).sum(axis=1)  # (m,)
        new = np.log(w / denominator)
        new -= new.mean()  # fix the scale's free constant: geometric-mean strength 1
        change = np.max(np.abs(new - log_p))
        log_p = new
        if change < tol:
            break
    ratings = initial + scale * log_p / np.log(10.0)
    return dict(zip(names, ratings.tolist(), strict=True))


def simulate_battles(
    ratings: dict[str, float],
    n_battles: int,
    seed: int = 0,
    tie_probability: float = 0.0,
    scale: float = 400.0,
) -> list[Battle]:
    """A synthetic battle log: uniform random pairs, outcomes drawn from Bradley–Terry.

    With probability `tie_probability` a battle is a tie; otherwise a wins with probability
    elo_expected(R_a, R_b). Used to test a fit against the ratings that generated the data.
    """
    names = list(ratings)
    rng = np.random.default_rng(seed)
    battles = []
    for _ in range(n_battles):
        i, j = rng.choice(len(names), size=2, replace=False)
        a, b = names[i], names[j]
        if rng.random() < tie_probability:
            battles.append((a, b, 0.5))
        else:
            p_a = elo_expected(ratings[a], ratings[b], scale)
            battles.append((a, b, float(rng.random() < p_a)))
    return battles


@dataclass(frozen=True)
class RatingInterval:
    """A rating from the full log, with a bootstrap percentile interval."""

    rating: float
    lower: float
    upper: float


def bootstrap_ratings(
    battles: Sequence[Battle],
    n_rounds: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
    fit: Callable[[Sequence[Battle]], dict[str, float]] = bradley_terry,
) -> dict[str, RatingInterval]:
    """Ratings of the full log, with percentile intervals from `n_rounds` resampled logs.

    Resamples without finite ratings (`NoFiniteRatings`) are skipped with a warning; a
    ValueError if every round was skipped.
    """
    battles = list(battles)
    point = fit(battles)
    names = sorted(point)
    rng = np.random.default_rng(seed)
    samples = np.empty((n_rounds, len(names)))  # (rounds, m)
    for r in range(n_rounds):
        resample = [battles[i] for i in rng.integers(0, len(battles), len(battles))]
        try:
            ratings = fit(resample)
        except NoFiniteRatings:
            samples[r] = np.nan
            continue
        samples[r] = [ratings.get(name, np.nan) for name in names]  # nan: not in this resample
    skipped = int(np.isnan(samples).all(axis=1).sum())
    if skipped == n_rounds:
        raise ValueError(
            f"none of the {n_rounds} resampled logs has finite ratings: collect more battles"
        )
    if skipped:
        warnings.warn(
            f"{skipped} of {n_rounds} bootstrap resamples had no finite ratings (a model never"
            " lost or never won in them) and were skipped; the intervals use the rest",
            stacklevel=2,
        )
    tail = 100 * (1 - confidence) / 2
    lower, upper = np.nanpercentile(samples, [tail, 100 - tail], axis=0)  # (m,) each
    return {
        name: RatingInterval(point[name], float(lower[i]), float(upper[i]))
        for i, name in enumerate(names)
    }
