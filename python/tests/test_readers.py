"""Every reader on results the binary wrote (dense and CSR), against an independent read of
the same files (numpy, scipy, pandas, h5py, xml) or a brute-force computation."""

from __future__ import annotations

import ast
import json
import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse

import saecooc
from conftest import SAE_ID, THRESHOLD


def raw_matrix(path):
    """The matrix in an npz file, read as the docs say: dense ``arr_0`` or ``load_npz``."""
    with np.load(path) as npz:
        if "arr_0" in npz.files:
            return npz["arr_0"]
    return scipy.sparse.load_npz(path).toarray()


def dense(matrix):
    return matrix.toarray() if scipy.sparse.issparse(matrix) else matrix


def test_open_finds_the_run_by_any_of_its_names(world):
    results = saecooc.open(world.results)
    assert len(results.runs) == 1
    run = results.runs[0]
    assert (run.model, run.release, run.sae, run.n_batches) == (
        "synthetic-gpt2", "synthetic", "blocks_1_hook_resid_pre", 8,
    )
    for query in ({"sae": SAE_ID}, {"sae": "blocks_1_hook_resid_pre"}, {"model": "synthetic-gpt2", "n_batches": 8}):
        assert results.run(**query).path == run.path
    with pytest.raises(saecooc.NoMatchError, match="(?s)no run matches model='gpt2-small'.*synthetic-gpt2"):
        results.run(model="gpt2-small")
    assert saecooc.open_run(run.path).path == run.path
    assert run.thresholds == [0.0, THRESHOLD]
    assert run.manifest["sae_id"] == SAE_ID == run.sae_id


def test_counts_and_jaccard_come_back_in_the_written_layout(world):
    run = world.run
    for kind, reader in (("total", run.counts), ("jaccard", run.jaccard)):
        for t in run.thresholds:
            matrix = reader(t)
            path = run.cooc_file(kind, t)
            if world.matrix_format == "csr":
                assert isinstance(matrix, scipy.sparse.csr_matrix), path
                reference = scipy.sparse.load_npz(path)
                assert (matrix != reference).nnz == 0
            else:
                assert isinstance(matrix, np.ndarray), path
                np.testing.assert_array_equal(matrix, np.load(path)["arr_0"])
            assert matrix.dtype == np.float32


def test_jaccard_is_counts_over_union_and_totals_are_the_diagonal(world):
    run = world.run
    for t in run.thresholds:
        counts = dense(run.counts(t)).astype(np.float64)
        totals = run.totals(t)
        np.testing.assert_array_equal(totals, np.diag(counts))
        assert totals.sum() > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = counts / (totals[:, None] + totals[None, :] - counts)
        expected = np.nan_to_num(expected, nan=0.0, posinf=1.0, neginf=0.0)
        np.testing.assert_allclose(dense(run.jaccard(t)), expected, rtol=0, atol=1e-6)


def test_node_table_is_the_csv_with_token_lists(world):
    run = world.run
    path = run.path / "dataframes" / "node_info_df_1_5.csv"
    raw = pd.read_csv(path)
    table = run.node_table(THRESHOLD)
    assert list(table.columns) == list(raw.columns)
    pd.testing.assert_frame_equal(table.drop(columns="top_10_tokens"), raw.drop(columns="top_10_tokens"))
    assert table["top_10_tokens"].tolist() == [ast.literal_eval(v) for v in raw["top_10_tokens"]]
    assert all(len(tokens) == 10 for tokens in table["top_10_tokens"])
    pd.testing.assert_frame_equal(run.node_table(THRESHOLD, parse_tokens=False), raw)
    np.testing.assert_array_equal(
        table.sort_values("node_id")["feature_activations"].to_numpy(), run.totals(THRESHOLD)
    )


def graphml(path):
    """Nodes and ``{(a, b): weight}`` of a GraphML file, read with the standard library."""
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    root = ET.parse(path).getroot()
    weight_key = next(k.get("id") for k in root.findall("g:key", ns) if k.get("attr.name") == "weight")
    nodes = {int(n.get("id")) for n in root.iter(f"{{{ns['g']}}}node")}
    edges = {}
    for edge in root.iter(f"{{{ns['g']}}}edge"):
        a, b = sorted((int(edge.get("source")), int(edge.get("target"))))
        value = next(d.text for d in edge.findall("g:data", ns) if d.get("key") == weight_key)
        edges[(a, b)] = float(value)
    return nodes, edges


def test_subgraph_edges_equal_the_graphml_graphs_wrote(world):
    run = world.run
    table = run.node_table(THRESHOLD)
    multi = sorted(set(table.loc[table["subgraph_size"] > 2, "subgraph_id"]))
    assert multi
    cut = float(pd.read_csv(run.path / "edge_thresholds.csv").set_index("activation_threshold").loc[THRESHOLD, "edge_threshold"])
    for sid in multi[:5]:
        subgraph = run.subgraph(sid, THRESHOLD)
        nodes, edges = graphml(run.path / "subgraph_objects" / "activation_1_5" / f"subgraph_{sid}.graphml")
        assert set(subgraph.latents.tolist()) == nodes
        assert subgraph.latents.tolist() == table.loc[table["subgraph_id"] == sid, "node_id"].tolist()
        assert subgraph.edge_threshold == cut
        got = {(int(a), int(b)): w for a, b, w in subgraph.edges.itertuples(index=False)}
        assert got.keys() == edges.keys()
        for pair, weight in edges.items():
            assert got[pair] == pytest.approx(weight, abs=1e-7)
            assert weight >= cut


def test_subgraph_graph_is_networkx(world):
    nx = pytest.importorskip("networkx")
    subgraph = world.run.subgraph(world.subgraph, THRESHOLD)
    graph = subgraph.graph()
    assert isinstance(graph, nx.Graph)
    assert sorted(graph.nodes) == sorted(subgraph.latents.tolist())
    assert graph.number_of_edges() == len(subgraph.edges)
    assert nx.is_connected(graph)
    node = int(subgraph.latents[0])
    assert graph.nodes[node]["feature_activations"] == subgraph.nodes.loc[0, "feature_activations"]


def h5_strings(dataset):
    return [b.decode("utf-8") for b in dataset[()]]


def check_group_against_h5(group, h5_group):
    """A PcaGroup equals what h5py reads from the group, decoded by hand."""
    pca = h5_group["pca_df"]
    assert group.pca_df["tokens"].tolist() == h5_strings(pca["tokens"])
    assert group.pca_df["context"].tolist() == h5_strings(pca["context"])
    for column in ("PC1", "PC2", "PC3", "point_id"):
        np.testing.assert_array_equal(group.pca_df[column].to_numpy(), pca[column][()])
    np.testing.assert_array_equal(group.graph_feature_acts, h5_group["all_graph_feature_acts"][()])
    np.testing.assert_array_equal(group.max_feature_info, h5_group["all_max_feature_info"][()])
    assert group.example_context == "".join(h5_strings(h5_group["example_context"]))
    assert [f"({t!r}, {n})" for t, n in group.top_3_tokens] == h5_strings(h5_group["top_3_tokens"])


def test_pca_groups_equal_the_h5_files(world):
    run = world.run
    manifest = json.loads((run.pca_dir / "pca_run.json").read_text())
    latents = {s["subgraph_id"]: s["latents"] for s in manifest["subgraphs"]}
    table = pd.read_csv(run.path / "dataframes" / "node_info_df_1_5.csv")
    for sid, members in latents.items():
        assert members == table.loc[table["subgraph_id"] == sid, "node_id"].tolist()
    for size in manifest["sizes"]:
        groups = run.pca(size)
        (path,) = run.pca_dir.glob(f"*_size_{size}_nbatch_*.h5")
        with h5py.File(path, "r") as h5:
            assert sorted(groups) == sorted(int(name.split("_")[1]) for name in h5.keys())
            for sid, group in groups.items():
                check_group_against_h5(group, h5[f"subgraph_{sid}"])
                assert group.latents.tolist() == latents[sid]
                assert len(group.latents) == size
    assert run.pca_subgraph(world.subgraph).pca_df.equals(
        run.pca(len(latents[world.subgraph]))[world.subgraph].pca_df
    )


def test_pca_scores_are_centred_and_ordered(world):
    """PC scores of a mean-centred PCA average 0 and their variances decrease (tolerance:
    1e-4 of the PC1 scale, float32 scores)."""
    for group in world.run.pca(len(world.run.pca_subgraph(world.subgraph).latents)).values():
        scores = group.pca_df[["PC1", "PC2", "PC3"]].to_numpy(np.float64)
        scale = np.abs(scores[:, 0]).max()
        np.testing.assert_allclose(scores.mean(axis=0), 0, atol=1e-4 * scale)
        variances = scores.var(axis=0)
        assert variances[0] >= variances[1] >= variances[2]


def test_pca_frame_joins_activations_by_latent(world):
    group = world.run.pca_subgraph(world.subgraph)
    frame = group.frame()
    for k, latent in enumerate(group.latents):
        np.testing.assert_array_equal(frame[f"latent_{latent}"].to_numpy(), group.graph_feature_acts[:, k])
    np.testing.assert_array_equal(frame["max_latent"].to_numpy(), group.max_feature_info[:, 1].astype(int))


def test_active_latents_are_the_positive_activations(world):
    group = world.run.pca_subgraph(world.subgraph)
    combos = group.active_latents()
    assert combos.index.tolist() == group.pca_df["point_id"].tolist()
    for row, combo in zip(group.graph_feature_acts, combos):
        assert combo == tuple(int(latent) for latent, act in zip(group.latents, row) if act > 0)
    assert all(len(combo) >= 1 for combo in combos)  # examples are where the subgraph fired
    assert len(set(combos)) > 1


def test_subspace_is_what_the_folder_holds(world):
    run = world.run
    subspace = run.subspace(world.subgraph)
    folder = subspace.folder
    assert folder.parent == world.figures / "synthetic-gpt2" / "synthetic" / "blocks_1_hook_resid_pre"
    assert subspace.summary == json.loads((folder / "subspace.json").read_text())
    sid = world.subgraph
    pd.testing.assert_frame_equal(subspace.examples, pd.read_csv(folder / f"pca_df_subgraph_{sid}.csv"))
    pd.testing.assert_frame_equal(subspace.prompts, pd.read_csv(folder / f"prompts_subgraph_{sid}.csv"))
    assert subspace.latents == subspace.summary["latents"]
    assert (subspace.decoder is None) == (len(subspace.latents) < 3)
    with h5py.File(folder / f"graph_analysis_results_subgraph_{sid}.h5", "r") as h5:
        check_group_against_h5(subspace.group, h5[f"subgraph_{sid}"])
    # The CSV's PCs are the h5's float32 values, written in shortest round-trip form.
    for column in ("PC1", "PC2", "PC3"):
        np.testing.assert_array_equal(
            subspace.examples[column].to_numpy(np.float32), subspace.group.pca_df[column].to_numpy()
        )
    assert subspace.figures[f"pca_plot_graph_{sid}_token"] == folder / f"pca_plot_graph_{sid}_token.png"
    assert subspace.figures["point_3/bar_plot_point_3"].is_file()
    assert set(subspace.pages) >= {name for name in subspace.figures}


def test_thresholded_matrix_is_jaccard_cut_at_the_edge_threshold(world):
    run = world.run
    for t in run.thresholds:
        matrix = run.thresholded_matrix(t)
        ts = saecooc.threshold_tag(t)
        reference = scipy.sparse.load_npz(run.path / "thresholded_matrices" / f"sparse_thresholded_matrix_{ts}.npz")
        assert (matrix != reference).nnz == 0
        expected = dense(run.jaccard(t)).copy()
        np.fill_diagonal(expected, 0)
        expected[expected < run.edge_threshold(t)] = 0
        np.testing.assert_array_equal(dense(matrix), expected)


def test_subspace_ids_and_stale_folders(world, tmp_path):
    run = world.run
    assert run.subspace_ids() == [world.subgraph]
    assert run.subspace_ids(threshold=0.0) == []
    with pytest.raises(saecooc.MissingFileError, match=f"pca_{{ts}}_subgraph_{world.subgraph + 1}_n_batches_8"):
        run.subspace(world.subgraph + 1)
    # A folder of another graphs set is named, not read.
    import shutil
    figures = tmp_path / "figures"
    folder = run.subspace(world.subgraph).folder
    relative = folder.relative_to(world.figures)
    stale = figures / relative.parent / (folder.name[: -len("deadbeef")] + "deadbeef")
    shutil.copytree(folder, stale)
    moved = saecooc.open(world.results, figures_dir=figures).run()
    assert moved.subspace_ids() == []
    with pytest.raises(saecooc.MissingFileError, match="another graphs set.*deadbeef"):
        moved.subspace(world.subgraph)
