"""Check of `saecooc cooc` outputs read back with numpy.

usage: check_cooc_outputs.py RESULTS_DIR EXPECTED_TOKENS

RESULTS_DIR is the n_batches_{N} results folder of a run over the 256-latent fixture, which
must have counted exactly EXPECTED_TOKENS tokens. For each threshold in run.json, checks the
total, Jaccard and activation matrices (dtype float32, shapes, symmetry, diagonal = per-latent
totals, bounds), the run's mean L0 and dead latents, and the Jaccard matrix against one
recomputed from the totals; then that higher thresholds fire less.
"""

import json
import sys

import numpy as np

d, expected_tokens = sys.argv[1], int(sys.argv[2])
run = json.load(open(f"{d}/run.json"))
assert run["tokens_counted"] == expected_tokens, run["tokens_counted"]
for th in run["thresholds"]:
    ts = th["tag"]
    C = np.load(f"{d}/feature_acts_cooc_total_threshold_{ts}.npz")["arr_0"]
    J = np.load(f"{d}/feature_acts_cooc_jaccard_threshold_{ts}.npz")["arr_0"]
    a = np.load(f"{d}/feature_acts_cooc_activations_threshold_{ts}.npz")["arr_0"]
    assert C.dtype == np.float32 and J.dtype == np.float32 and a.dtype == np.float32
    assert C.shape == (256, 256) and J.shape == (256, 256) and a.shape == (256,)
    assert (C == C.T).all() and (J == J.T).all()
    assert (np.diag(C) == a).all()
    assert (C <= np.minimum(a[:, None], a[None, :])).all()
    assert a.max() <= expected_tokens
    # Mean L0 = sum of per-latent totals / tokens.
    assert abs(a.sum() / expected_tokens - th["l0_mean"]) < 1e-9 * max(1, th["l0_mean"]), (a.sum(), th)
    assert th["dead_latents"] == int((a == 0).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = C / (a[:, None] + a[None, :] - C)
    ref = np.nan_to_num(ref, nan=0.0, posinf=1.0, neginf=0.0).astype(np.float32)
    assert np.array_equal(ref, J)
    assert set(np.unique(np.diag(J))) <= {0.0, 1.0}
    print(ts, int(a.sum()), float(J[np.triu_indices(256, 1)].max()))
# Higher thresholds fire less.
sums = [np.load(f"{d}/feature_acts_cooc_activations_threshold_{th['tag']}.npz")["arr_0"].sum() for th in run["thresholds"]]
assert sums[0] > sums[1] > sums[2] > 0, sums
