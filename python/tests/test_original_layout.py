"""A copy of the original pipeline's results layout, written here with numpy, pandas, scipy and
h5py exactly as its scripts name and lay out the files (no saecooc manifest), read back with the
package."""

from __future__ import annotations

import ast
import json
import urllib.parse
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse

import saecooc

REPO = Path(__file__).resolve().parents[2]
MODEL, RELEASE, SAE_ID, N_BATCHES = "gpt2-small", "res-jb", "blocks.8.hook_resid_pre", 4
NEAT = "blocks_8_hook_resid_pre"
D_SAE, TOKENS = 40, 600
THRESHOLDS = (0.0, 1.5)
TOKEN_NAMES = [" the", "'s", ' "', " café", "\n", " a", " of", " é", " x", " y"]


def cooccurrence(active: np.ndarray):
    """C and J as the original computes them, in float32, from a tokens × latents 0/1 matrix."""
    counts = (active.T.astype(np.float32) @ active.astype(np.float32)).astype(np.float32)
    n = np.diag(counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = counts / ((n[:, None] + n[None, :]) - counts)
    jaccard = np.nan_to_num(jaccard, nan=0.0, posinf=1.0, neginf=0.0).astype(np.float32)
    return counts, jaccard


def components(thresholded: np.ndarray) -> list:
    """Connected components of the non-zero entries, numbered by their smallest latent."""
    n_comp, labels = scipy.sparse.csgraph.connected_components(scipy.sparse.csr_matrix(thresholded), directed=False)
    members = [sorted(np.nonzero(labels == c)[0].tolist()) for c in range(n_comp)]
    return sorted(members, key=lambda m: m[0])


def node_table(t: float, comps: list, totals: np.ndarray) -> pd.DataFrame:
    rows = []
    for sid, members in enumerate(comps):
        # the original kept CPython set order inside a subgraph: not sorted
        for node in reversed(members):
            layer = "8-res-jb"
            quick = urllib.parse.quote(json.dumps([{"modelId": MODEL, "layer": layer, "index": str(node)}]))
            rows.append({
                "node_id": node,
                "activity_threshold": t,
                "subgraph_id": sid,
                "subgraph_size": len(members),
                "feature_activations": float(totals[node]),
                "top_10_tokens": str(TOKEN_NAMES),
                "neuronpedia_link": f"https://neuronpedia.org/gpt2-small/8-res-jb/{node}",
                "quicklist_link": f"https://neuronpedia.org/quick-list/?name=temporary_list&features={quick}",
            })
    return pd.DataFrame(rows)


def write_h5_group(h5: h5py.File, sid: int, latents: list, rng) -> dict:
    """One group as the original's step 4 writes it (its shipped save options)."""
    n = 7
    tokens = [TOKEN_NAMES[i % len(TOKEN_NAMES)] for i in range(n)]
    contexts = [f"before|{tok}|after é" for tok in tokens]
    acts = rng.random((n, len(latents)), dtype=np.float32)
    pcs = rng.standard_normal((n, 3)).astype(np.float32)
    group = h5.create_group(f"subgraph_{sid}")
    group.create_dataset("top_3_tokens", data=np.array([str((" the", 5)).encode(), str(("'s", 2)).encode()]))
    # the context string iterated per character: one UTF-8 byte string per element
    group.create_dataset("example_context", data=np.array([c.encode() for c in contexts[0]]))
    group.create_dataset("all_graph_feature_acts", data=acts)
    group.create_dataset("all_max_feature_info", data=np.column_stack(
        [acts.max(axis=1), np.array(latents, dtype=np.float32)[acts.argmax(axis=1)], np.ones(n, np.float32)]))
    pca = group.create_group("pca_df")
    for k in range(3):
        pca.create_dataset(f"PC{k + 1}", data=pcs[:, k])
    pca.create_dataset("tokens", data=np.array([t.encode() for t in tokens]))
    pca.create_dataset("context", data=np.array([c.encode() for c in contexts]))
    pca.create_dataset("point_id", data=np.arange(n, dtype=np.int64))
    return {"tokens": tokens, "contexts": contexts, "acts": acts, "pcs": pcs}


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("original") / "results"
    folder = root / MODEL / RELEASE / NEAT / f"n_batches_{N_BATCHES}"
    (folder / "dataframes").mkdir(parents=True)
    (folder / "thresholded_matrices").mkdir()
    pca_dir = folder / f"{NEAT}_pca_for_streamlit"
    pca_dir.mkdir()
    # Planted groups of co-firing latents, so that components of several latents exist.
    base = rng.random((TOKENS, D_SAE)) < 0.05
    for group in (range(0, 4), range(10, 13), range(20, 23)):
        fire = rng.random(TOKENS) < 0.2
        base[np.ix_(fire, list(group))] = True
    data = {"folder": folder, "root": root, "by_threshold": {}}
    cuts = []
    for t in THRESHOLDS:
        active = base if t == 0.0 else base & (rng.random(base.shape) < 0.9)
        counts, jaccard = cooccurrence(active)
        ts = str(float(t)).replace(".", "_")
        np.savez_compressed(folder / f"feature_acts_cooc_total_threshold_{ts}.npz", counts)
        np.savez_compressed(folder / f"feature_acts_cooc_jaccard_threshold_{ts}.npz", jaccard)
        np.savez_compressed(folder / f"feature_acts_cooc_activations_threshold_{ts}.npz", np.diag(counts))
        cut = 0.25
        thresholded = jaccard.copy()
        np.fill_diagonal(thresholded, 0)
        thresholded[thresholded < cut] = 0
        np.savez_compressed(folder / "thresholded_matrices" / f"thresholded_matrix_{ts}.npz", thresholded)
        scipy.sparse.save_npz(folder / "thresholded_matrices" / f"sparse_thresholded_matrix_{ts}.npz",
                              scipy.sparse.csr_matrix(thresholded))
        comps = components(thresholded)
        table = node_table(t, comps, np.diag(counts))
        table.to_csv(folder / "dataframes" / f"node_info_df_{ts}.csv", index=False)
        cuts.append({"activation_threshold": t, "edge_threshold": cut})
        data["by_threshold"][t] = {"counts": counts, "jaccard": jaccard, "thresholded": thresholded,
                                   "comps": comps, "table": table}
    pd.DataFrame(cuts).to_csv(folder / "edge_thresholds.csv", index=False)
    # PCA files of the app's threshold (1.5): one per size, size 3 split into two chunks.
    comps = data["by_threshold"][1.5]["comps"]
    by_size = {}
    for sid, members in enumerate(comps):
        by_size.setdefault(len(members), []).append(sid)
    data["groups"] = {}
    for size, sids in by_size.items():
        if size < 3:
            continue
        stem = f"1000cap_graph_analysis_results_size_{size}_nbatch_10"
        chunks = [sids] if size != 3 else [sids[:1], sids[1:]]
        for i, chunk in enumerate(chunks, start=1):
            name = f"{stem}.h5" if len(chunks) == 1 else f"{stem}_chunk{i}.h5"
            with h5py.File(pca_dir / name, "w") as h5:
                for sid in chunk:
                    latents = list(reversed(comps[sid]))
                    data["groups"][sid] = (size, latents, write_h5_group(h5, sid, latents, rng))
    assert any(len(m) == 3 for m in comps) and len(data["groups"]) >= 2
    return data


def test_the_run_is_found_without_a_manifest(original):
    results = saecooc.open(original["root"])
    run = results.run(model=MODEL, release=RELEASE, sae=SAE_ID, n_batches=N_BATCHES)
    assert run.path == original["folder"] and run.manifest is None and run.sae_id is None
    assert run.thresholds == list(THRESHOLDS)


@pytest.mark.parametrize("t", THRESHOLDS)
def test_matrices_and_tables_read_back(original, t):
    run = saecooc.open_run(original["folder"])
    expected = original["by_threshold"][t]
    np.testing.assert_array_equal(run.counts(t), expected["counts"])
    np.testing.assert_array_equal(run.jaccard(t), expected["jaccard"])
    np.testing.assert_array_equal(run.totals(t), np.diag(expected["counts"]))
    table = run.node_table(t)
    pd.testing.assert_frame_equal(table.drop(columns="top_10_tokens"), expected["table"].drop(columns="top_10_tokens"),
                                  check_dtype=False)
    assert all(tokens == TOKEN_NAMES for tokens in table["top_10_tokens"])
    assert run.edge_threshold(t) == 0.25


def test_subgraph_edges_are_the_thresholded_matrix(original):
    run = saecooc.open_run(original["folder"])
    expected = original["by_threshold"][1.5]
    for sid, members in enumerate(expected["comps"]):
        if len(members) < 2:
            continue
        subgraph = run.subgraph(sid, threshold=1.5)
        assert subgraph.latents.tolist() == list(reversed(members))
        block = expected["thresholded"][np.ix_(members, members)]
        pairs = {(members[i], members[j]): float(block[i, j])
                 for i in range(len(members)) for j in range(i + 1, len(members)) if block[i, j] > 0}
        got = {(a, b): w for a, b, w in subgraph.edges.itertuples(index=False)}
        assert got == pairs


def test_subgraph_edges_come_from_the_jaccard_file_without_thresholded_matrices(original, tmp_path):
    import shutil
    folder = tmp_path / MODEL / RELEASE / NEAT / f"n_batches_{N_BATCHES}"
    shutil.copytree(original["folder"], folder)
    shutil.rmtree(folder / "thresholded_matrices")
    run = saecooc.open_run(folder)
    sid = next(s for s, m in enumerate(original["by_threshold"][1.5]["comps"]) if len(m) > 2)
    subgraph = run.subgraph(sid, threshold=1.5)
    assert subgraph.matrix_file.name == "feature_acts_cooc_jaccard_threshold_1_5.npz"
    reference = saecooc.open_run(original["folder"]).subgraph(sid, threshold=1.5)
    assert reference.matrix_file.name == "sparse_thresholded_matrix_1_5.npz"
    pd.testing.assert_frame_equal(subgraph.edges, reference.edges)
    (folder / "feature_acts_cooc_jaccard_threshold_1_5.npz").unlink()
    with pytest.raises(saecooc.MissingFileError, match="sparse_thresholded_matrix_1_5.npz or feature_acts_cooc_jaccard"):
        run.subgraph(sid, threshold=1.5)


def test_a_node_table_the_original_wrote_reads_back(tmp_path):
    """The first rows of a node table of the paper's 768-latent GPT-2 SAE, as the original wrote
    them (kept in the crate's tests)."""
    written = REPO / "src" / "stages" / "graph" / "testdata" / "node_info_df_1_5_head.csv"
    folder = tmp_path / MODEL / "res-jb-feature-splitting" / "blocks_8_hook_resid_pre_768" / "n_batches_500"
    (folder / "dataframes").mkdir(parents=True)
    (folder / "dataframes" / "node_info_df_1_5.csv").write_bytes(written.read_bytes())
    run = saecooc.open_run(folder)
    table = run.node_table()
    raw = pd.read_csv(written)
    pd.testing.assert_frame_equal(table.drop(columns="top_10_tokens"), raw.drop(columns="top_10_tokens"))
    assert table["top_10_tokens"].tolist() == [ast.literal_eval(v) for v in raw["top_10_tokens"]]
    assert table.loc[table["subgraph_id"] == 1, "node_id"].tolist() == [1, 763, 718]
    assert run.thresholds == [1.5]


def test_raw_cooc_subfolder_is_read_as_the_original_loaders_do(original, tmp_path):
    folder = tmp_path / "results" / MODEL / RELEASE / NEAT / f"n_batches_{N_BATCHES}"
    raw = folder / f"raw_cooc_{NEAT}"
    raw.mkdir(parents=True)
    for path in original["folder"].glob("feature_acts_cooc_*.npz"):
        (raw / path.name).write_bytes(path.read_bytes())
    run = saecooc.open(tmp_path / "results").run()
    assert run.thresholds == list(THRESHOLDS)
    np.testing.assert_array_equal(run.jaccard(1.5), original["by_threshold"][1.5]["jaccard"])


def test_pca_groups_read_back_with_chunks_and_joined_contexts(original):
    run = saecooc.open_run(original["folder"])
    for sid, (size, latents, written) in original["groups"].items():
        group = run.pca_subgraph(sid)
        assert group.latents.tolist() == latents
        assert group.pca_df["tokens"].tolist() == written["tokens"]
        assert group.pca_df["context"].tolist() == written["contexts"]
        np.testing.assert_array_equal(group.pca_df[["PC1", "PC2", "PC3"]].to_numpy(), written["pcs"])
        np.testing.assert_array_equal(group.graph_feature_acts, written["acts"])
        assert group.example_context == written["contexts"][0]
        assert group.top_3_tokens == [(" the", 5), ("'s", 2)]
        assert sid in run.pca(size)
    sizes3 = [sid for sid, (size, _, _) in original["groups"].items() if size == 3]
    assert sorted(run.pca(3)) == sorted(sizes3)
    assert {f.chunk for f in run.pca_files() if f.size == 3} == {1, 2}
