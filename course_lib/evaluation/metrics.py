"""Accuracy and its uncertainty: a benchmark score is an estimate from a finite sample.

An accuracy p̂ = k/n measured on n questions has a sampling error of about
sqrt(p̂(1 − p̂)/n): ±2.5 points at n = 1,319 (GSM8K's test set) and ±7 points at n = 164
(HumanEval) for p̂ near 0.3. The Wilson (1927) score interval is the set of p for which
|p̂ − p| ≤ z·sqrt(p(1 − p)/n); unlike the normal ("Wald") interval p̂ ± z·sqrt(p̂(1 − p̂)/n)
it stays inside [0, 1] and does not collapse to a point at p̂ = 0 or 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np


def accuracy(predictions: Sequence, answers: Sequence) -> float:
    """Fraction of predictions equal to the answers."""
    predictions, answers = np.asarray(predictions), np.asarray(answers)
    if predictions.shape != answers.shape or predictions.size == 0:
        raise ValueError(
            f"need two non-empty sequences of equal length, got {predictions.shape}"
            f" and {answers.shape}"
        )
    return float(np.mean(predictions == answers))


def z_score(confidence: float) -> float:
    """The two-sided standard-normal quantile: 1.96 for a 95% interval."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson (1927) score interval for a binomial proportion: (lower, upper).

    centre = (p̂ + z²/2n) / (1 + z²/n),  half-width = z·sqrt(p̂(1 − p̂)/n + z²/4n²) / (1 + z²/n).
    """
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes} of {n}")
    z = z_score(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    lower = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends, not 1e-17
    upper = 1.0 if successes == n else min(1.0, centre + half)
    return lower, upper


def wald_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The normal-approximation interval p̂ ± z·sqrt(p̂(1 − p̂)/n), clipped to [0, 1]."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes} of {n}")
    p = successes / n
    half = z_score(confidence) * math.sqrt(p * (1 - p) / n)
    return max(0.0, p - half), min(1.0, p + half)
