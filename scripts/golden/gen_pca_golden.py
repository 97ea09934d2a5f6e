"""Writes tests/fixtures/golden/pca_sklearn.npz: scikit-learn's PCA(3) on float32 data, as the
original pipeline runs it (perform_pca_on_results), for two shapes:
  tall: 2000 x 64 (sklearn's "auto" picks the covariance eigendecomposition)
  wide:   40 x 64 (fewer samples than features; "auto" picks the full SVD)
Keys: {case}_x, {case}_components, {case}_explained_variance,
{case}_explained_variance_ratio, {case}_scores.

usage: python scripts/golden/gen_pca_golden.py   (needs numpy and scikit-learn)
"""
import os

import numpy as np
import sklearn
from sklearn.decomposition import PCA

rng = np.random.default_rng(1234)
out = {}
for case, n in [("tall", 2000), ("wide", 40)]:
    d = 64
    basis, _ = np.linalg.qr(rng.normal(size=(d, 6)))
    z = rng.normal(size=(n, 6)) * np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.25])
    x = (z @ basis.T + 0.05 * rng.normal(size=(n, d)) + rng.normal(size=d)).astype(np.float32)
    pca = PCA(n_components=3)
    scores = pca.fit_transform(x)
    out[f"{case}_x"] = x
    out[f"{case}_components"] = pca.components_.astype(np.float32)
    out[f"{case}_explained_variance"] = pca.explained_variance_.astype(np.float32)
    out[f"{case}_explained_variance_ratio"] = pca.explained_variance_ratio_.astype(np.float32)
    out[f"{case}_scores"] = scores.astype(np.float32)

path = os.path.join(os.path.dirname(__file__), "../../tests/fixtures/golden/pca_sklearn.npz")
np.savez_compressed(path, **{k: np.ascontiguousarray(v) for k, v in out.items()})
print("wrote", os.path.normpath(path), "with scikit-learn", sklearn.__version__)
