"""Check that two folders hold the same h5 files with identical contents, with h5py and numpy.

usage: same_h5.py A_DIR B_DIR

Both folders must hold the same, non-empty set of *.h5 file names; in each pair of files every
dataset (walked through all groups) must exist in both and be equal.
"""

import glob
import os
import sys

import h5py
import numpy as np

a_dir, b_dir = sys.argv[1:3]
names = sorted(os.path.basename(p) for p in glob.glob(f"{a_dir}/*.h5"))
assert names and names == sorted(os.path.basename(p) for p in glob.glob(f"{b_dir}/*.h5"))


def walk(g, prefix=""):
    out = {}
    for k, v in g.items():
        if isinstance(v, h5py.Group):
            out.update(walk(v, prefix + k + "/"))
        else:
            out[prefix + k] = v[()]
    return out


for n in names:
    a, b = walk(h5py.File(f"{a_dir}/{n}")), walk(h5py.File(f"{b_dir}/{n}"))
    assert a.keys() == b.keys(), n
    for k in a:
        assert np.array_equal(a[k], b[k]), (n, k)
print(len(names), "files identical")
