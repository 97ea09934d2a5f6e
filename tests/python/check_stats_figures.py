"""Check of the per-SAE figures of `saecooc stats` (heat map, count and Jaccard histograms,
edge-cutoff sweep) against a brute-force recomputation from the count matrices and node tables,
with numpy, pandas and scipy's connected components.

usage: check_stats_figures.py RESULTS_ROOT STATS_OUT

RESULTS_ROOT holds one cooc + graphs run (model/release/sae/n_batches_{N}); STATS_OUT is the
folder `saecooc stats` wrote. Counts must match exactly; Jaccard to 1e-6 relative (it is
computed in float32 from the counts, as cooc and graphs compute it).
"""

import glob
import sys

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

results, out = sys.argv[1:3]
run_dir = glob.glob(f"{results}/*/*/*/n_batches_*")[0]
summary = pd.read_csv(f"{out}/summary.csv")
checked = 0
for _, r in summary.iterrows():
    ts = str(float(r.activation_threshold)).replace(".", "_")
    C = np.load(f"{run_dir}/feature_acts_cooc_total_threshold_{ts}.npz")["arr_0"].astype(np.float32)
    n = len(C)
    a = np.diag(C).copy()
    i, j = np.triu_indices(n, 1)
    c = C[i, j]
    seen = c > 0
    i, j, c = i[seen], j[seen], c[seen]
    J = c / (a[i] + a[j] - c)  # float32, as cooc and graphs
    (stem,) = glob.glob(f"{out}/edge_cutoff_sweep_*_{ts}.csv")
    tail = stem.split("edge_cutoff_sweep_")[1]

    # The sweep: components of {pairs that co-occurred with J >= cutoff}, at the notebook's cutoffs.
    sweep = pd.read_csv(stem)
    assert np.allclose(sweep.cutoff, np.linspace(0, 0.2, 100), rtol=0, atol=1e-15), sweep.cutoff
    for _, p in sweep.iterrows():
        keep = J.astype(np.float64) >= p.cutoff
        g = coo_matrix((np.ones(keep.sum()), (i[keep], j[keep])), shape=(n, n))
        count, labels = connected_components(g, directed=False)
        sizes = np.bincount(labels)
        got = (p.largest_subgraph, p.subgraphs, p.subgraphs_2plus)
        want = (sizes.max(), count, (sizes > 1).sum())
        assert got == want, (ts, p.cutoff, got, want)
    assert sweep.largest_subgraph.iloc[0] > sweep.largest_subgraph.iloc[-1], sweep

    # The histograms of the pairs that co-occurred.
    h = pd.read_csv(f"{out}/count_vs_jaccard_{tail}")
    jac = h[h.histogram == "jaccard"].pairs.to_numpy()
    want = np.bincount(np.minimum((J.astype(np.float64) * 50).astype(int), 49), minlength=50)
    assert (jac == want).all(), (jac, want)
    counts = h[h.histogram == "count"]
    bins = np.floor((np.log10(c.astype(np.float64)) + 8.0) / 16.0 * 160).astype(int)
    for _, b in counts.iterrows():
        k = int(round((np.log10(b.bin_left) + 8.0) * 10))
        assert b.pairs == (bins == k).sum(), (b, (bins == k).sum())
    assert counts.pairs.sum() == len(c)

    # The heat map: the first latents of the node table by subgraph size, its C and J.
    nodes = pd.read_csv(f"{run_dir}/dataframes/node_info_df_{ts}.csv")
    order = nodes.sort_values(["subgraph_size", "subgraph_id", "node_id"], ascending=[False, True, True])
    top = order.node_id.to_numpy()[:80]
    heat = pd.read_csv(f"{out}/heatmap_{tail}")
    assert len(heat) == len(top) ** 2
    diag = heat[heat.row == heat.column]
    assert (diag.row_latent.to_numpy() == top).all(), (diag.row_latent, top)
    assert (diag.cooccurrence == 0).all() and (diag.jaccard == 0).all()
    off = heat[heat.row != heat.column]
    x, y = off.row_latent.to_numpy(), off.column_latent.to_numpy()
    assert (off.cooccurrence.to_numpy() == C[x, y]).all()
    Jxy = (C[x, y] / (a[x] + a[y] - C[x, y])).astype(np.float64)
    Jxy = np.nan_to_num(Jxy)
    assert np.allclose(off.jaccard.to_numpy(), Jxy, rtol=1e-6, atol=0), "jaccard"
    sid = dict(zip(nodes.node_id, nodes.subgraph_id))
    assert (off.row_subgraph.to_numpy() == [sid[v] for v in x]).all()
    checked += 1
assert checked == len(summary) == 3, (checked, len(summary))
print("ok")

# The distributions: rates per token over all pairs i < j, zeros included.
run = __import__("json").load(open(f"{run_dir}/run.json"))
T = float(run["tokens_counted"])
boxes = pd.read_csv(f"{out}/combined_boxplot_observed_expected.csv")
assert len(boxes) == 2 * len(summary), boxes
for _, r in summary.iterrows():
    ts = str(float(r.activation_threshold)).replace(".", "_")
    C = np.load(f"{run_dir}/feature_acts_cooc_total_threshold_{ts}.npz")["arr_0"].astype(np.float64)
    a = np.diag(C).copy()
    i, j = np.triu_indices(len(a), 1)
    rates = {"observed": C[i, j] / T, "expected": a[i] * a[j] / (T * T)}
    max_rate = a.max() / T
    (hist,) = glob.glob(f"{out}/distribution_*_{ts}.csv")
    h = pd.read_csv(hist)
    for kind, v in rates.items():
        bins = np.minimum(np.floor(v / max_rate * 100), 99).astype(int)
        share = np.bincount(bins, minlength=100) / len(v)
        assert np.allclose(h[f"{kind}_share"], share, rtol=1e-12, atol=0), kind
        b = boxes[(boxes.activation_threshold == r.activation_threshold) & (boxes.distribution == kind)]
        assert len(b) == 1, b
        b = b.iloc[0]
        q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
        assert np.allclose([b.q1, b["median"], b.q3], [q1, med, q3], rtol=1e-12, atol=1e-300), (kind, b, q1, med, q3)
        iqr = q3 - q1
        inside = v[(v >= q1 - 1.5 * iqr) & (v <= q3 + 1.5 * iqr)]
        assert (b["min"], b["max"]) == (v.min(), v.max())
        assert np.isclose(b.whisker_low, inside.min(), rtol=1e-12) and np.isclose(b.whisker_high, inside.max(), rtol=1e-12)
print("distributions ok")
