"""Principal component analysis, to draw high-dimensional embeddings on a 2-D page.

PCA (Pearson 1901, "On lines and planes of closest fit to systems of points in space";
Hotelling 1933) finds the orthonormal directions along which the centred data vary most.
With the centred data X - mean = U S V^T (thin SVD), the rows of V^T are those directions,
sorted by variance S^2 / (n - 1). Projecting new points with the *same* mean and directions
puts them on the same map as the points the PCA was fitted on.

Each direction is only defined up to sign; like scikit-learn (>= 1.5) we make the entry of
largest magnitude of every direction positive, so a plot does not flip between runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PCA:
    """A fitted PCA: `mean` (d,), `components` (k, d) orthonormal rows, their variance (k,)."""

    mean: np.ndarray  # (d,)
    components: np.ndarray  # (k, d)
    explained_variance: np.ndarray  # (k,)
    explained_variance_ratio: np.ndarray  # (k,), share of the total variance

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Coordinates of `x` along the components: `(n, d) -> (n, k)`, or `(d,) -> (k,)`."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"expected vectors of size {self.mean.shape[0]}, got shape {x.shape}")
        return (x - self.mean) @ self.components.T


def fit_pca(x: np.ndarray, n_components: int = 2) -> PCA:
    """Fit PCA with `n_components` directions to the rows of `x` `(n, d)`, n >= 2."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need a matrix of at least 2 rows, got shape {x.shape}")
    n, d = x.shape
    if not 1 <= n_components <= min(n, d):
        raise ValueError(f"n_components must be in 1..{min(n, d)}, got {n_components}")
    mean = x.mean(axis=0)  # (d,)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)  # s (r,), vt (r, d)
    largest = np.argmax(np.abs(vt), axis=1)  # (r,)
    vt = vt * np.sign(vt[np.arange(vt.shape[0]), largest])[:, None]  # deterministic signs
    variance = s**2 / (n - 1)  # (r,)
    total = variance.sum()
    ratio = variance / total if total > 0 else np.zeros_like(variance)
    return PCA(mean, vt[:n_components], variance[:n_components], ratio[:n_components])
