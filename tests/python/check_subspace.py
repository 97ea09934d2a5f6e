"""Independent checks of a `saecooc subspace` folder with numpy, scipy and scikit-learn.

usage: check_subspace.py FOLDER SAE_WEIGHTS

- representative points: the original's rule re-implemented in numpy (MinMaxScaler on the
  PCs as written, distances from the centre, 3 largest + 2 closest to the median);
- the clustered heat map's orders: scipy's linkage(pdist(X), "ward") + dendrogram leaves on the
  first examples' activations (rows) and on their transpose (latents);
- custom prompts: reconstructions rebuilt from the activations and the folded decoder,
  scikit-learn's PCA fitted on the examples, and its `transform` of the prompts' tokens must give
  the PCs written (up to each component's sign). Tolerance 1e-3 of the largest |PC|.
"""
import json
import os
import sys

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import dendrogram, linkage
from scipy.spatial.distance import pdist
from sklearn.decomposition import PCA
from sklearn.preprocessing import MinMaxScaler

folder, sae_file = sys.argv[1:3]
summary = json.load(open(os.path.join(folder, "subspace.json")))
sid = summary["subgraph_id"]
latents = summary["latents"]
df = pd.read_csv(os.path.join(folder, f"pca_df_subgraph_{sid}.csv"), keep_default_na=False)
cols = [f"latent_{f}" for f in latents]
assert list(df.columns[-len(cols):]) == cols and len(df) == summary["examples"]

# Representative points.
pcs = df[["PC1", "PC2", "PC3"]].to_numpy(dtype=np.float32)
scaled = MinMaxScaler().fit_transform(pcs)
d = np.linalg.norm(scaled - 0.5, axis=1)
extremes = d.argsort(kind="stable")[-3:][::-1]
middle = np.argsort(np.abs(d - np.median(d)), kind="stable")[:2]
want = [int(i) for i in list(extremes) + list(middle)]
got = [p["point_id"] for p in summary["representative_points"]]
assert got == want, (got, want)

# Heat map orders.
acts = df[cols].to_numpy(dtype=np.float32)
m = summary["heatmap"]["examples"]
assert m == min(len(df), 1000)
x = acts[:m]
rows = dendrogram(linkage(pdist(x), method="ward"), no_plot=True)["leaves"]
latent_rows = dendrogram(linkage(pdist(x.T), method="ward"), no_plot=True)["leaves"]
assert summary["heatmap"]["example_order"] == rows
assert summary["heatmap"]["latent_order"] == latent_rows

# Custom prompts: projected with the PCA fitted on the examples.
raw = open(sae_file, "rb").read()
n = int.from_bytes(raw[:8], "little")
header = json.loads(raw[8:8 + n])
start, end = header["W_dec"]["data_offsets"]
W = np.frombuffer(raw[8 + n + start:8 + n + end], dtype=np.float32).reshape(header["W_dec"]["shape"])
W = (W / np.linalg.norm(W, axis=1, keepdims=True)).astype(np.float32)[latents]
pca = PCA(n_components=3).fit((acts @ W).astype(np.float32))
ours = pcs.astype(np.float64)
ref = pca.transform((acts @ W).astype(np.float32))
scale = np.abs(ref).max()
signs = np.sign(np.sum(ours * ref, axis=0))
assert np.allclose(ours, ref * signs, atol=1e-3 * scale), np.abs(ours - ref * signs).max()
ratio = summary["pca"]["explained_variance_ratio"]
assert np.allclose(ratio, pca.explained_variance_ratio_, atol=1e-4), (ratio, pca.explained_variance_ratio_)
prompts = os.path.join(folder, f"prompts_subgraph_{sid}.csv")
if summary["prompts"] is not None:
    p = pd.read_csv(prompts, keep_default_na=False)
    assert len(p) == summary["prompts"]["examples"] and len(p) > 0
    placed = pca.transform((p[cols].to_numpy(dtype=np.float32) @ W).astype(np.float32)) * signs
    got = p[["PC1", "PC2", "PC3"]].to_numpy(dtype=np.float64)
    assert np.allclose(got, placed, atol=1e-3 * scale), np.abs(got - placed).max()
    # Projection, not a refit: a PCA refitted on the prompts would place them elsewhere.
print("ok", len(df), "examples,", 0 if summary["prompts"] is None else summary["prompts"]["examples"], "prompt tokens")
