"""Check with h5py that the given subgraphs have no group in any h5 file of a folder.

usage: check_no_subgraph_groups.py H5_DIR [SUBGRAPH_ID ...]

H5_DIR is a {neat}_pca_for_streamlit folder; no *.h5 file in it may have a top-level group
subgraph_{SUBGRAPH_ID} for any SUBGRAPH_ID given (subgraphs `saecooc pca` skipped).
"""

import glob
import sys

import h5py

groups = set()
for path in glob.glob(sys.argv[1] + "/*.h5"):
    groups |= set(h5py.File(path).keys())
for sid in sys.argv[2:]:
    assert f"subgraph_{sid}" not in groups, sid
