"""The original explorer app's loading logic (see docs/formats.md, "Explorer export"),
reimplemented without Streamlit: which sizes and subgraphs exist, and what the app would draw
for one subgraph.
Used by check_pca.py to show that the app opens saecooc's h5 files unchanged.
"""

import glob
import os
import re

import h5py
import numpy as np
import pandas as pd
import scipy.sparse


def h5_dir(root, neat):
    return os.path.join(root, f"{neat}_pca_for_streamlit")


def available_sizes(root, neat, cap, nb):
    pattern = os.path.join(h5_dir(root, neat), f"{cap}graph_analysis_results_size_*_nbatch_{nb}*.h5")
    sizes = set()
    for path in glob.glob(pattern):
        m = re.search(r"size_(\d+)_nbatch_", path)
        if m:
            sizes.add(int(m.group(1)))
    return sorted(sizes)


def files_for_size(root, neat, cap, nb, size):
    base = os.path.join(h5_dir(root, neat), f"{cap}graph_analysis_results_size_{size}_nbatch_{nb}")
    chunks = sorted(glob.glob(base + "_chunk*.h5"))
    return chunks if chunks else [base + ".h5"]


def subgraph_ids(root, neat, cap, nb, size):
    ids = []
    for path in files_for_size(root, neat, cap, nb, size):
        with h5py.File(path, "r") as f:
            ids += [int(k.split("_")[1]) for k in f.keys() if re.fullmatch(r"subgraph_\d+", k)]
    return sorted(ids)


def top_tokens_label(tuples):
    # The app strips the counts from the stored tuple reprs.
    out = []
    for t in tuples:
        s = re.sub(r"(?<=', )\d+|(?<=\", )\d+", "", t)
        s = re.sub(r"^\(", "", s)
        s = re.sub(r"\)$", "", s)
        out.append(s)
    return " ".join(out)


def load_subgraph(root, neat, cap, nb, size, sid):
    for path in files_for_size(root, neat, cap, nb, size):
        with h5py.File(path, "r") as f:
            key = f"subgraph_{sid}"
            if key not in f:
                continue
            g = f[key]
            pca = g["pca_df"]
            pca_df = pd.DataFrame({
                "PC1": pca["PC1"][:], "PC2": pca["PC2"][:], "PC3": pca["PC3"][:],
                "tokens": [t.decode("utf-8") for t in pca["tokens"][:]],
                "context": [c.decode("utf-8") for c in pca["context"][:]],
                "point_id": pca["point_id"][:],
            })
            top = [t.decode("utf-8") for t in g["top_3_tokens"][:]]
            context = "".join(c.decode("utf-8") for c in g["example_context"][:])
            return {
                "pca_df": pca_df,
                "label": f"Subgraph {sid} - Top tokens: {top_tokens_label(top)} | Example: '{context}'",
                "top_3_tokens": top,
                "example_context": context,
                "graph_feature_acts": g["all_graph_feature_acts"][:],
                "max_feature_info": g["all_max_feature_info"][:],
            }
    raise KeyError(sid)


def point_colours(view, node_ids):
    """Each point's trace: its max-activating latent if in the subgraph, else 'Not in graph'."""
    out = []
    for value, index, in_graph in view["max_feature_info"]:
        out.append(f"Feature {int(index)}" if in_graph and int(index) in node_ids else "Not in graph")
    return out


def subgraph_graph(root, ts, sid):
    node_df = pd.read_csv(os.path.join(root, "dataframes", f"node_info_df_{ts}.csv"))
    nodes = list(node_df[node_df.subgraph_id == sid].node_id)
    matrix = scipy.sparse.load_npz(os.path.join(root, "thresholded_matrices", f"sparse_thresholded_matrix_{ts}.npz"))
    sub = matrix[nodes][:, nodes].toarray()
    return nodes, sub
