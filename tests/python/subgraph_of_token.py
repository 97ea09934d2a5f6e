"""The subgraph `saecooc subspace --subgraph-of-token` must pick, computed independently with
h5py and pandas from `pca`'s h5 files (those pca_run.json lists) and the node table.

usage: subgraph_of_token.py SAE_RESULTS_FOLDER NEAT_SAE_ID NODE_TABLE [TOKEN]

Without TOKEN, the token found in the examples of the most subgraphs (ties: the most examples,
then the smallest string) is used, so that subgraphs compete for it. Prints JSON {"token",
"subgraph", "count", "examples", "competitors"}.

The rule: among the subgraphs of 2+ latents in the h5 files, the one with the most examples
whose token (subgraph_{sid}/pca_df/tokens) is TOKEN exactly; ties: the larger share of its
examples, then the lower id.
"""
import json
import os
import sys
from collections import Counter
from fractions import Fraction

import h5py
import pandas as pd

folder, neat, table = sys.argv[1:4]
sizes = pd.read_csv(table, keep_default_na=False).groupby("subgraph_id")["subgraph_size"].first()
run = json.load(open(os.path.join(folder, f"{neat}_pca_for_streamlit", "pca_run.json")))
tokens = {}
for entry in run["files"]:
    if not entry["path"].endswith(".h5"):
        continue
    with h5py.File(os.path.join(folder, entry["path"]), "r") as f:
        for name in f:
            sid = int(name.removeprefix("subgraph_"))
            if sizes.get(sid, 0) >= 2:
                tokens[sid] = [t.decode("utf-8", "replace") for t in f[name]["pca_df"]["tokens"][:]]

if len(sys.argv) > 4:
    token = sys.argv[4]
else:
    spread = Counter(t for ts in tokens.values() for t in set(ts))
    total = Counter(t for ts in tokens.values() for t in ts)
    token = min(spread, key=lambda t: (-spread[t], -total[t], t))

having = [(sid, ts.count(token), len(ts)) for sid, ts in tokens.items() if token in ts]
having.sort(key=lambda x: (-x[1], -Fraction(x[1], x[2]), x[0]))
best = having[0] if having else (None, 0, 0)
print(json.dumps({"token": token, "subgraph": best[0], "count": best[1], "examples": best[2],
                  "competitors": len(having)}))
