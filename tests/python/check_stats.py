"""Check of `saecooc stats` against a direct computation from the node tables and count
matrices, with pandas and numpy.

usage: check_stats.py RESULTS_ROOT STATS_OUT

RESULTS_ROOT holds one cooc + graphs run (model/release/sae/n_batches_{N}) with three
thresholds; STATS_OUT is the folder `saecooc stats` wrote. Checks summary.csv row by row (mean
subgraph sizes, fraction in subgraphs, pair counts against the independence expectation, mean
L0, tokens) and the L0 histogram in run.json, and that the figures and summary.json exist.
"""

import glob
import json
import os
import sys

import numpy as np
import pandas as pd

results, out = sys.argv[1:3]
s = pd.read_csv(f"{out}/summary.csv")
assert len(s) == 3, s
run_dir = glob.glob(f"{results}/*/*/*/n_batches_*")[0]
run = json.load(open(f"{run_dir}/run.json"))
T = run["tokens_counted"]
for _, r in s.iterrows():
    ts = str(float(r.activation_threshold)).replace(".", "_")
    sizes = pd.read_csv(f"{run_dir}/dataframes/node_info_df_{ts}.csv").subgraph_size
    assert np.isclose(r.mean_subgraph_size, sizes.mean(), rtol=1e-12), (r, sizes.mean())
    assert np.isclose(r.mean_subgraph_size_without_singletons, sizes[sizes > 1].mean(), rtol=1e-12)
    assert np.isclose(r.fraction_in_subgraphs, (sizes > 1).mean(), rtol=1e-12)
    C = np.load(f"{run_dir}/feature_acts_cooc_total_threshold_{ts}.npz")["arr_0"].astype(np.float64)
    a = np.diag(C)
    iu = np.triu_indices(len(a), 1)
    E = np.outer(a, a)[iu] / T
    assert r.pairs == len(iu[0]) and r.pairs_observed == int((C[iu] > 0).sum())
    assert r.pairs_above_expected == int((C[iu] > E).sum()), (r.pairs_above_expected, int((C[iu] > E).sum()))
    th = [t for t in run["thresholds"] if t["tag"] == ts][0]
    assert np.isclose(r.l0_mean, th["l0_mean"]) and r.tokens == T
    assert sum(th["l0_histogram"]) == T
    hist = np.array(th["l0_histogram"])
    assert np.isclose((hist * np.arange(len(hist))).sum() / T, th["l0_mean"])
for f in ["size_effects.png", "summary.json"]:
    assert os.path.getsize(f"{out}/{f}") > 100, f
assert len(glob.glob(f"{out}/cooccurrence_*.png")) == 3
print("ok")
