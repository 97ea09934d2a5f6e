"""Independent check of `saecooc pca` outputs with h5py, numpy and scikit-learn.

usage: check_pca.py ROOT NEAT CAP NBATCH SAE_WEIGHTS SPECIAL_TOKEN [SPLIT_ROOT]

ROOT is the n_batches_{N} results folder; the run must have saved every dataset (all
save_options true). Checks each subgraph group's datasets (dtype, shape, values) against the
node table, the SAE's decoder and a scikit-learn PCA of the stored reconstructions; then opens
the files with the original app's loading logic (app_loader.py) and checks it sees the same
PCA points. With SPLIT_ROOT (a run with --split-mb), the app must see the same views there.
"""

import ast
import json
import os
import sys
from collections import Counter

import h5py
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

sys.path.insert(0, os.path.dirname(__file__))
import app_loader as app  # noqa: E402

root, neat, cap, nb, sae_file, special = sys.argv[1:7]
split_root = sys.argv[7] if len(sys.argv) > 7 else None


def load_safetensors(path):
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    out = {}
    for key, v in header.items():
        if key == "__metadata__":
            continue
        start, end = v["data_offsets"]
        assert v["dtype"] == "F32"
        out[key] = np.frombuffer(raw[8 + n + start:8 + n + end], dtype=np.float32).reshape(v["shape"])
    return out


W_dec = load_safetensors(sae_file)["W_dec"].astype(np.float64)
W = W_dec / np.linalg.norm(W_dec, axis=1, keepdims=True)  # folded, as the original
node_df = pd.read_csv(os.path.join(root, "dataframes", "node_info_df_1_5.csv"))
run = json.load(open(os.path.join(app.h5_dir(root, neat), "pca_run.json")))


def decode(a):
    return [x.decode("utf-8") for x in a]


written = {}
for rep in run["subgraphs"]:
    size, sid, F, n = rep["size"], rep["subgraph_id"], rep["latents"], rep["examples"]
    assert F == list(node_df[node_df.subgraph_id == sid].node_id), (sid, F)
    assert len(F) == size
    [path] = app.files_for_size(root, neat, cap, nb, size)
    with h5py.File(path, "r") as f:
        key = f"subgraph_{sid}"
        if rep["skipped"]:
            assert key not in f and n < 3, rep
            continue
        written.setdefault(size, []).append(sid)
        g = f[key]
        for name, kind in [("all_fired_tokens", "S"), ("top_3_tokens", "S"), ("example_context", "S"),
                           ("all_reconstructions", "f"), ("all_graph_feature_acts", "f"),
                           ("all_feature_acts", "f"), ("all_max_feature_info", "f")]:
            assert g[name].dtype.kind == kind, (name, g[name].dtype)
        tokens = decode(g["all_fired_tokens"][:])
        recon = g["all_reconstructions"][:]
        ga = g["all_graph_feature_acts"][:]
        fa = g["all_feature_acts"][:]
        mi = g["all_max_feature_info"][:]
        d_in, d_sae = W.shape[1], W.shape[0]
        assert recon.dtype == np.float32 and recon.shape == (n, d_in)
        assert ga.shape == (n, size) and fa.shape == (n, d_sae) and mi.shape == (n, 3)
        assert g["all_examples_found"][()] == n and g["all_examples_found"].dtype == np.int64
        assert len(tokens) == n and special not in tokens

        # Activations, reconstructions, max-latent info.
        assert np.array_equal(fa[:, F], ga)
        assert (ga > 0).any(axis=1).all()
        want = ga.astype(np.float64) @ W[F]
        assert np.abs(recon - want).max() <= 1e-5 * max(1.0, np.abs(want).max()), np.abs(recon - want).max()
        assert np.array_equal(mi[:, 0], fa.max(axis=1))
        assert np.array_equal(mi[:, 1].astype(int), fa.argmax(axis=1))
        assert np.array_equal(mi[:, 2], np.isin(fa.argmax(axis=1), F).astype(np.float32))

        # Token table, top tokens, example context.
        td = g["all_token_dfs"]
        assert decode(td["str_tokens"][:]) == tokens
        batch, pos = td["batch"][:], td["pos"][:]
        assert batch.dtype == np.int64 and pos.dtype == np.int64
        contexts = decode(td["context"][:])
        assert all(f"|{t}|" in c for t, c in zip(tokens, contexts))
        assert decode(td["unique_token"][:]) == [f"{t}/{p}" for t, p in zip(tokens, pos)]
        assert decode(td["label"][:]) == [f"{b}/{p}" for b, p in zip(batch, pos)]
        top3 = [ast.literal_eval(t) for t in decode(g["top_3_tokens"][:])]
        assert top3 == Counter(tokens).most_common(3), (top3, Counter(tokens).most_common(3))
        chars = decode(g["example_context"][:])
        assert all(len(c) == 1 for c in chars)
        assert "".join(chars) == contexts[tokens.index(top3[0][0])]

        # PCA against scikit-learn (exact solver), tolerance 1e-4 of the largest score.
        ref = PCA(n_components=3, svd_solver="full").fit(recon)
        scores = ref.transform(recon)
        p = g["pca_df"]
        pcs = np.stack([p["PC1"][:], p["PC2"][:], p["PC3"][:]], axis=1)
        assert pcs.dtype == np.float32 and pcs.shape == (n, 3)
        assert np.abs(pcs - scores).max() <= 1e-4 * max(1e-6, np.abs(scores).max()), np.abs(pcs - scores).max()
        assert np.allclose(ref.explained_variance_ratio_, rep["explained_variance_ratio"], rtol=1e-4, atol=1e-6)
        assert decode(p["tokens"][:]) == tokens and decode(p["context"][:]) == contexts
        assert np.array_equal(p["point_id"][:], np.arange(n))

    # The app sees the same points, labels and colours.
    view = app.load_subgraph(root, neat, cap, nb, size, sid)
    assert np.array_equal(view["pca_df"][["PC1", "PC2", "PC3"]].to_numpy(), pcs)
    assert top3[0][0] in view["label"] and view["example_context"] in view["label"]
    colours = app.point_colours(view, F)
    assert colours == [f"Feature {int(i)}" if i in F else "Not in graph" for i in fa.argmax(axis=1)]
    nodes, sub = app.subgraph_graph(root, "1_5", sid)
    assert nodes == F and sub.shape == (size, size)
    if split_root:
        other = app.load_subgraph(split_root, neat, cap, nb, size, sid)
        assert other["pca_df"].equals(view["pca_df"]) and other["label"] == view["label"]

sizes = sorted({r["size"] for r in run["subgraphs"]})
for size in sizes:
    assert app.subgraph_ids(root, neat, cap, nb, size) == sorted(written.get(size, [])), size
    if split_root:
        assert app.subgraph_ids(split_root, neat, cap, nb, size) == sorted(written.get(size, []))
assert app.available_sizes(root, neat, cap, nb) == sorted(set(run["sizes"])) and set(sizes) <= set(run["sizes"])
print("checked", sum(len(v) for v in written.values()), "subgraphs")
