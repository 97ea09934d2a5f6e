"""Writes the same arrays in Fortran and C order with numpy (for tests/it/sae_files.rs).

A Gemma Scope-style params.npz whose W_enc is W_dec.T (a Fortran-ordered view, as np.savez
writes it) and its C-ordered copy, every dtype saecooc reads as 2-D and 3-D transposes, and a
compressed Fortran-ordered matrix.

usage: write_both_orders.py OUT_DIR   (OUT_DIR/fortran and OUT_DIR/c must exist)
"""
import sys
import numpy as np
out = sys.argv[1]
rng = np.random.default_rng(7)
d_in, d_sae = 6, 10
W_dec = rng.normal(size=(d_sae, d_in)).astype(np.float32) * 1.7
W_enc = W_dec.T  # a view: Fortran-ordered
assert W_enc.flags.f_contiguous and not W_enc.flags.c_contiguous
params = dict(W_enc=W_enc, W_dec=W_dec,
              b_enc=rng.normal(size=d_sae).astype(np.float32) * 0.1,
              b_dec=rng.normal(size=d_in).astype(np.float32) * 0.1,
              threshold=np.abs(rng.normal(size=d_sae)).astype(np.float32) * 0.2)
np.savez(f"{out}/fortran/params.npz", **params)
np.savez(f"{out}/c/params.npz", **{k: np.ascontiguousarray(v) for k, v in params.items()})
with np.load(f"{out}/fortran/params.npz") as f:
    assert f["W_enc"].flags.f_contiguous and not f["W_enc"].flags.c_contiguous
# Every dtype saecooc reads, as 2-D and 3-D transposes.
m = rng.normal(size=(3, 5))
arrays = {
    "f2": m.astype(np.float16).T, "f4": m.astype(np.float32).T, "f8": m.T,
    "i4": (m * 100).astype(np.int32).T, "i8": (m * 100).astype(np.int64).T,
    "u4": np.abs(m * 100).astype(np.uint32).T, "u8": np.abs(m * 100).astype(np.uint64).T,
    "u1": np.abs(m * 10).astype(np.uint8).T, "b1": (m > 0).T,
    "S": np.array([[b"a", b"bc"], [b"def", b""]]).T,
    "cube": rng.normal(size=(2, 3, 4)).astype(np.float32).transpose(2, 1, 0),
}
for v in arrays.values():
    assert v.flags.f_contiguous and not v.flags.c_contiguous
np.savez(f"{out}/arrays_f.npz", **arrays)
np.savez(f"{out}/arrays_c.npz", **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
J = rng.random(size=(4, 7)).astype(np.float32)
np.savez_compressed(f"{out}/matrix_f.npz", np.asfortranarray(J))
np.savez_compressed(f"{out}/matrix_c.npz", J)
