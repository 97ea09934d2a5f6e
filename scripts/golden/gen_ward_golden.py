"""Writes tests/fixtures/golden/ward_scipy.npz: scipy's Ward clustering as the original's
doubly clustered heat map runs it (`linkage(pdist(X), method="ward")`, then
`dendrogram(Z, no_plot=True)["leaves"]`), for the rows of X and the rows of X.T.

Cases (float32 matrices of non-negative "activations", many exact zeros like SAE latents):
  random:   60 x 7 continuous values
  ties:     40 x 5 small integers (many equal distances and duplicate rows)
  dupes:    12 x 3 with identical rows only (all distances tie)
  two:       2 x 4
Keys: {case}_x, {case}_rows_linkage, {case}_rows_leaves, {case}_cols_linkage,
{case}_cols_leaves.

usage: python scripts/golden/gen_ward_golden.py   (needs numpy and scipy)
"""
import os

import numpy as np
import scipy
from scipy.cluster.hierarchy import dendrogram, linkage
from scipy.spatial.distance import pdist

rng = np.random.default_rng(2024)


def sparse_acts(n, k):
    x = rng.gamma(2.0, 1.5, size=(n, k)) * (rng.random((n, k)) < 0.4)
    return x.astype(np.float32)


cases = {
    "random": sparse_acts(60, 7),
    "ties": rng.integers(0, 3, size=(40, 5)).astype(np.float32),
    "dupes": np.repeat(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0], [1.0, 1.0, 1.0]],
                                dtype=np.float32), 4, axis=0),
    "two": np.array([[0.0, 1.0, 2.0, 0.0], [3.0, 0.0, 0.0, 1.0]], dtype=np.float32),
}

out = {}
for name, x in cases.items():
    out[f"{name}_x"] = x
    for side, m in [("rows", x), ("cols", x.T)]:
        z = linkage(pdist(m), method="ward")
        out[f"{name}_{side}_linkage"] = z
        out[f"{name}_{side}_leaves"] = np.array(dendrogram(z, no_plot=True)["leaves"], dtype=np.int64)

path = os.path.join(os.path.dirname(__file__), "../../tests/fixtures/golden/ward_scipy.npz")
np.savez_compressed(path, **{k: np.ascontiguousarray(v) for k, v in out.items()})
print("wrote", os.path.normpath(path), "with scipy", scipy.__version__)
