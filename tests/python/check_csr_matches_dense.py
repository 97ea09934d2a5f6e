"""Check with numpy and scipy that CSR count matrices equal their dense counterparts.

usage: check_csr_matches_dense.py DENSE_DIR CSR_DIR

DENSE_DIR and CSR_DIR are n_batches_{N} results folders of the same run, with dense and with
sparse (CSR) outputs. For the total and Jaccard matrices at thresholds 0_0, 1_5 and 3_0, the
CSR file must load with scipy.sparse.load_npz as float32 CSR with sorted indices, hold exactly
the dense matrix's nonzeros and equal it.
"""

import sys

import numpy as np
import scipy.sparse as sp

dense, csr = sys.argv[1:3]
for kind in ["total", "jaccard"]:
    for tag in ["0_0", "1_5", "3_0"]:
        name = f"feature_acts_cooc_{kind}_threshold_{tag}.npz"
        d = np.load(f"{dense}/{name}")["arr_0"]
        s = sp.load_npz(f"{csr}/{name}")
        assert s.format == "csr" and s.dtype == np.float32 and s.has_sorted_indices, name
        assert np.array_equal(s.toarray(), d), name
        assert s.nnz == int((d != 0).sum()), name
print("ok")
