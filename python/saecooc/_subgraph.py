"""One subgraph of a node table, with its edges from the Jaccard matrix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse


@dataclass
class Subgraph:
    """A subgraph (connected component) of ``graphs`` at one activation threshold.

    - ``id``, ``threshold``;
    - ``latents``: its latent ids (``np.ndarray``), in node-table order;
    - ``nodes``: its rows of the node table (``pandas.DataFrame``);
    - ``edges``: ``pandas.DataFrame`` with ``source, target, weight``, one row per pair of its
      latents (``source < target``) whose Jaccard similarity is at least ``edge_threshold``
      (the cut ``graphs`` chose, from ``edge_thresholds.csv``; without that file, every pair
      with a non-zero value), the larger of the two triangles' entries;
    - ``edge_threshold`` (``None`` when unknown) and ``matrix_file`` (the file the edges come from).
    """

    id: int
    threshold: float
    latents: np.ndarray
    nodes: pd.DataFrame
    edges: pd.DataFrame
    edge_threshold: Optional[float]
    matrix_file: Path

    def graph(self):
        """The subgraph as a ``networkx.Graph``: nodes are latent ids with the node table's
        columns as attributes, edges carry ``weight``. Needs networkx (an optional
        dependency: ``pip install networkx``)."""
        try:
            import networkx as nx
        except ImportError as err:
            raise ImportError(
                "Subgraph.graph() needs networkx, an optional dependency of saecooc: "
                "pip install networkx"
            ) from err
        graph = nx.Graph()
        for row in self.nodes.to_dict("records"):
            graph.add_node(int(row["node_id"]), **row)
        for source, target, weight in self.edges[["source", "target", "weight"]].itertuples(index=False):
            graph.add_edge(int(source), int(target), weight=float(weight))
        return graph


def subgraph_edges(matrix, latents: np.ndarray, cut: Optional[float]) -> pd.DataFrame:
    """The pairs of ``latents`` whose entry (the larger of ``[a, b]`` and ``[b, a]``) is at
    least ``cut`` (``None``: non-zero), ``source < target``, sorted."""
    index = np.asarray(latents, dtype=np.int64)
    if scipy.sparse.issparse(matrix):
        block = matrix[index][:, index].toarray()
    else:
        block = np.asarray(matrix[np.ix_(index, index)])
    block = np.maximum(block, block.T).astype(np.float64)
    np.fill_diagonal(block, 0.0)
    keep = block > 0 if cut is None else (block > 0) & (block >= cut)
    a, b = np.nonzero(np.triu(keep, k=1))
    source = np.minimum(index[a], index[b])
    target = np.maximum(index[a], index[b])
    edges = pd.DataFrame({"source": source, "target": target, "weight": block[a, b]})
    return edges.sort_values(["source", "target"], ignore_index=True)
