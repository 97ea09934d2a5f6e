"""Independent check of `saecooc graphs` outputs with numpy, scipy, pandas and networkx.

usage: check_graphs.py RESULTS_DIR MIN_SIZE MAX_SIZE NEURONPEDIA_ID MODEL_NAME

Recomputes, from the Jaccard and activation files alone, what the original pipeline would
produce (see docs/formats.md, "Graph files"), and compares it with what saecooc wrote: the
edge threshold (bisection re-implemented here with scipy's connected components), the thresholded
matrices (dense npz and scipy CSR), the node table read by pandas (columns, subgraph
partition and order, counts, metrics recomputed with networkx, links), and the GraphML files
read by networkx.
"""

import ast
import glob
import json
import math
import os
import sys
import urllib.parse

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse
from scipy.sparse.csgraph import connected_components

d, min_size, max_size, np_id, model_name = sys.argv[1:6]
min_size, max_size = int(min_size), int(max_size)

COLUMNS = [
    "node_id", "activity_threshold", "subgraph_id", "subgraph_size", "feature_activations",
    "top_10_tokens", "neuronpedia_link", "density", "max_avg_degree_ratio", "avg_clustering",
    "diameter", "single_node_score", "hub_spoke_score", "strongly_connected_score",
    "linear_score", "quicklist_link",
]


def lcc(S, t):
    A = S.copy()
    A.data = np.where(A.data >= t, 1, 0)
    A.eliminate_zeros()
    _, labels = connected_components(A, directed=True, connection="weak")
    return np.bincount(labels).max()


def find_threshold(J, lo_size, hi_size, tol=1e-3):
    S = scipy.sparse.csr_matrix(J)
    low, high, best = 0.0, 1.0, None
    centre = (lo_size + hi_size) / 2
    while high - low > tol:
        mid = (low + high) / 2
        size = lcc(S, mid)
        if lo_size <= size <= hi_size:
            return mid, size
        if size < lo_size:
            high = mid
        else:
            low = mid
        if best is None or abs(size - centre) < abs(best[1] - centre):
            best = (mid, size)
    return best


def structure_metrics(g):
    n = g.number_of_nodes()
    if n == 1:
        return dict(density=0.0, max_avg_degree_ratio=0.0, avg_clustering=0.0, diameter=0,
                    single_node_score=1.0, hub_spoke_score=0.0,
                    strongly_connected_score=0.0, linear_score=0.0)
    degrees = [deg for _, deg in g.degree()]
    density = nx.density(g)
    ratio = max(degrees) / (sum(degrees) / n)
    clustering = nx.average_clustering(g)
    diameter = nx.diameter(g) if nx.is_connected(g) else n - 1
    v = np.array([density, min(ratio, n - 1), clustering, diameter], dtype=float)
    ideal = {
        "hub_spoke_score": [2 / n, n - 1, 0, 2],
        "strongly_connected_score": [1, 1, 1, 1],
        "linear_score": [2 / (n - 1), 2, 0, n - 1],
    }
    dist = {k: float(np.linalg.norm(v - np.array(x, dtype=float))) for k, x in ideal.items()}
    total = sum(dist.values())
    scores = {k: (1 / 3 if total == 0 else 1 - x / total) for k, x in dist.items()}
    return dict(density=density, max_avg_degree_ratio=ratio, avg_clustering=clustering,
                diameter=diameter, single_node_score=0.0, **scores)


edges_csv = pd.read_csv(f"{d}/edge_thresholds.csv")
assert list(edges_csv.columns) == ["activation_threshold", "edge_threshold"], edges_csv.columns
files = sorted(glob.glob(f"{d}/feature_acts_cooc_jaccard_threshold_*.npz"))
assert len(files) == len(edges_csv), (files, edges_csv)

for path in files:
    ts = path.split("threshold_")[-1].split(".npz")[0]
    t = float(ts.replace("_", "."))
    J = np.load(path)["arr_0"].astype(np.float32)
    acts = np.load(f"{d}/feature_acts_cooc_activations_threshold_{ts}.npz")["arr_0"]
    n = J.shape[0]
    np.fill_diagonal(J, 0)

    # Edge threshold: the original's bisection, recomputed.
    edge, size = find_threshold(J, min_size, max_size)
    row = edges_csv[edges_csv.activation_threshold == t]
    assert len(row) == 1, (t, edges_csv)
    assert row.edge_threshold.iloc[0] == edge, (t, row.edge_threshold.iloc[0], edge)

    # Thresholded matrices: T = J with entries < edge zeroed, dense and CSR.
    T = J.copy()
    T[T < edge] = 0
    dense = np.load(f"{d}/thresholded_matrices/thresholded_matrix_{ts}.npz")["arr_0"]
    assert dense.dtype == np.float32 and np.array_equal(dense, T)
    sparse = scipy.sparse.load_npz(f"{d}/thresholded_matrices/sparse_thresholded_matrix_{ts}.npz")
    assert sparse.format == "csr" and sparse.shape == (n, n) and sparse.dtype == np.float32
    assert sparse.has_sorted_indices
    assert np.array_equal(sparse.toarray(), T) and sparse.nnz == np.count_nonzero(T)

    # Subgraphs: connected components of T, numbered by smallest member, nodes ascending.
    graph = nx.from_numpy_array(T)
    components = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: c[0])
    assert max(len(c) for c in components) == size

    df = pd.read_csv(f"{d}/dataframes/node_info_df_{ts}.csv")
    assert list(df.columns) == COLUMNS, list(df.columns)
    assert len(df) == n and sorted(df.node_id) == list(range(n))
    assert (df.activity_threshold == t).all()
    expected_nodes = [node for c in components for node in c]
    assert list(df.node_id) == expected_nodes
    expected_sid = [sid for sid, c in enumerate(components) for _ in c]
    assert list(df.subgraph_id) == expected_sid
    assert list(df.subgraph_size) == [len(c) for c in components for _ in c]
    assert np.array_equal(df.feature_activations.to_numpy(np.float32), acts[df.node_id])

    for sid, nodes in enumerate(components):
        rows = df[df.subgraph_id == sid]
        want = structure_metrics(graph.subgraph(nodes))
        for key, value in want.items():
            got = rows[key].to_numpy()
            assert np.allclose(got, value, rtol=1e-12, atol=1e-12), (sid, key, got, value)
        # GraphML: the same nodes and weighted edges.
        gml = f"{d}/subgraph_objects/activation_{ts}/subgraph_{sid}.graphml"
        h = nx.read_graphml(gml, node_type=int)
        assert sorted(h.nodes) == nodes, (sid, sorted(h.nodes), nodes)
        sub = graph.subgraph(nodes)
        assert {frozenset(e) for e in h.edges} == {frozenset(e) for e in sub.edges}
        for a, b, w in h.edges(data="weight"):
            assert w == float(T[a, b]), (a, b, w, T[a, b])
        for node in nodes:
            assert h.nodes[node]["feature_activations"] == float(acts[node])

        # Links: dashboard per node, quick-lists in batches of 10 nodes.
        for b, start in enumerate(range(0, len(nodes), 10)):
            batch = nodes[start:start + 10]
            for node in batch:
                r = df[df.node_id == node].iloc[0]
                if np_id == "-":
                    assert isinstance(r.neuronpedia_link, float) and math.isnan(r.neuronpedia_link)
                    assert isinstance(r.quicklist_link, float) and math.isnan(r.quicklist_link)
                    continue
                assert r.neuronpedia_link == f"https://neuronpedia.org/{np_id}/{node}"
                url = urllib.parse.urlparse(r.quicklist_link)
                query = urllib.parse.parse_qs(url.query)
                assert query["name"] == [f"Subgraph_{sid}_Batch_{b}"], query
                features = json.loads(query["features"][0])
                assert features == [
                    {"modelId": model_name, "layer": np_id.split("/")[1], "index": str(x)}
                    for x in batch
                ], features

    # Top tokens: a Python list of 10 strings per latent.
    for cell in df.top_10_tokens:
        tokens = ast.literal_eval(cell)
        assert isinstance(tokens, list) and len(tokens) == 10 and all(isinstance(x, str) for x in tokens)

    assert os.path.getsize(f"{d}/histograms/subgraph_density_{ts}.png") > 1000
    print(ts, edge, size, len(components))
