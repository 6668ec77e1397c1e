"""course_lib.embeddings.projection against scikit-learn's PCA on the same data."""

import numpy as np
import pytest
from sklearn.decomposition import PCA as SklearnPCA

from course_lib.embeddings.projection import fit_pca


def _data(n: int = 30, d: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scales = np.linspace(3.0, 0.1, d)  # distinct variances: no ties between components
    return rng.normal(size=(n, d)) * scales + rng.normal(size=d)


@pytest.mark.parametrize("n_components", [1, 2, 5])
def test_matches_sklearn_up_to_sign(n_components):
    x, new = _data(), _data(n=7, seed=1)
    ours = fit_pca(x, n_components)
    ref = SklearnPCA(n_components=n_components, svd_solver="full").fit(x)
    np.testing.assert_allclose(ours.mean, ref.mean_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.explained_variance, ref.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(
        ours.explained_variance_ratio, ref.explained_variance_ratio_, rtol=1e-10
    )
    # A principal direction is defined up to sign: align each of ours to sklearn's first.
    signs = np.sign(np.sum(ours.components * ref.components_, axis=1))  # (k,)
    assert np.all(signs != 0)
    np.testing.assert_allclose(ours.components * signs[:, None], ref.components_, atol=1e-10)
    # New points, projected with the fitted mean and directions.
    np.testing.assert_allclose(ours.transform(new) * signs, ref.transform(new), atol=1e-10)


def test_sign_convention_and_orthonormal_rows():
    pca = fit_pca(_data(), 4)
    largest = pca.components[np.arange(4), np.argmax(np.abs(pca.components), axis=1)]
    assert np.all(largest > 0)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(4), atol=1e-12)
    assert np.all(np.diff(pca.explained_variance) <= 0)


def test_single_vector_transform_and_errors():
    x = _data()
    pca = fit_pca(x, 2)
    np.testing.assert_allclose(pca.transform(x[3]), pca.transform(x)[3], atol=1e-12)
    with pytest.raises(ValueError, match="size 12"):
        pca.transform(np.zeros(5))
    with pytest.raises(ValueError, match="n_components"):
        fit_pca(x, 13)
    with pytest.raises(ValueError, match="at least 2 rows"):
        fit_pca(x[:1], 1)
