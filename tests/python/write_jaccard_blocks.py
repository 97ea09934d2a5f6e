"""Writes Jaccard and activation matrices with numpy's `savez_compressed`, as the original
pipeline wrote them, for `saecooc graphs` to read.

usage: write_jaccard_blocks.py OUT_DIR

Writes OUT_DIR/feature_acts_cooc_jaccard_threshold_1_5.npz, a 256×256 float32 matrix with a
block of 5 latents at 0.8, 3 at 0.4 and 2 at 0.2 (the original's test_find_threshold case) and
1 on the diagonal, and OUT_DIR/feature_acts_cooc_activations_threshold_1_5.npz, 0..255 as
float32.
"""

import sys

import numpy as np

d = sys.argv[1]
J = np.zeros((256, 256), dtype=np.float32)
for nodes, w in [(range(0, 5), 0.8), (range(10, 13), 0.4), (range(20, 22), 0.2)]:
    for i in nodes:
        for j in nodes:
            J[i, j] = w
np.fill_diagonal(J, 1.0)
np.savez_compressed(f"{d}/feature_acts_cooc_jaccard_threshold_1_5.npz", J)
np.savez_compressed(f"{d}/feature_acts_cooc_activations_threshold_1_5.npz", np.arange(256, dtype=np.float32))
