"""The ``.npz`` matrices of a results folder: a dense array under ``arr_0`` (the layout of
``np.savez_compressed(path, a)``, which the original pipeline always wrote) or a scipy CSR
matrix (the layout of ``scipy.sparse.save_npz``, which saecooc writes above 65,536 latents or
with ``[run] matrix_format = "csr"``). Anything else is refused, naming the file and what it
holds: a file is never read as a matrix it is not."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse

from ._errors import FormatError, MissingFileError

DENSE_KEYS = frozenset({"arr_0"})
CSR_KEYS = frozenset({"data", "indices", "indptr", "format", "shape"})
LAYOUTS = (
    "a dense array under the key 'arr_0' (np.savez) or a scipy CSR matrix "
    "(scipy.sparse.save_npz: keys data, format, indices, indptr, shape)"
)


def load_square_matrix(path, what: str):
    """The square matrix in ``path``: a float ``np.ndarray`` when the file is dense, a
    ``scipy.sparse.csr_matrix`` when it is CSR. ``what`` names the matrix in errors."""
    with _open_npz(path, what) as npz:
        keys = frozenset(npz.files)
        if keys == DENSE_KEYS:
            matrix = _numeric(npz["arr_0"], path, "arr_0", what)
        elif keys == CSR_KEYS:
            matrix = _csr(npz, path, what)
        else:
            raise FormatError(
                f"{path}: expected {what} as {LAYOUTS}; found the keys {sorted(keys)}"
            )
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise FormatError(
            f"{path}: expected {what} as a square matrix; found shape {tuple(matrix.shape)}"
        )
    return matrix


def load_vector(path, what: str) -> np.ndarray:
    """The one-dimensional dense array under ``arr_0`` in ``path`` (per-latent totals)."""
    with _open_npz(path, what) as npz:
        keys = frozenset(npz.files)
        if keys != DENSE_KEYS:
            raise FormatError(
                f"{path}: expected {what} as a dense vector under the key 'arr_0' "
                f"(np.savez); found the keys {sorted(keys)}"
            )
        vector = _numeric(npz["arr_0"], path, "arr_0", what)
    if vector.ndim != 1:
        raise FormatError(
            f"{path}: expected {what} as a vector; found shape {tuple(vector.shape)}"
        )
    return vector


def _open_npz(path, what: str):
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file (expected {what})")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise FormatError(f"{path}: not a readable .npz file (expected {what}): {err}") from err
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise FormatError(
            f"{path}: a single .npy array, not an .npz archive (expected {what} as {LAYOUTS})"
        )
    return npz


def _numeric(array: np.ndarray, path, key: str, what: str) -> np.ndarray:
    """``array`` if it holds real numbers, else a FormatError naming the file and key."""
    kind = array.dtype.kind
    if kind not in "fiu":
        raise FormatError(
            f"{path}: expected {what}, key {key!r}, to hold real numbers; found dtype {array.dtype}"
        )
    return array


def _csr(npz, path, what: str) -> scipy.sparse.csr_matrix:
    layout = npz["format"].item()
    if isinstance(layout, bytes):
        layout = layout.decode("ascii", "replace")
    if layout != "csr":
        raise FormatError(
            f"{path}: expected {what} as a CSR matrix; the file's 'format' is {layout!r}"
        )
    shape = npz["shape"]
    if shape.shape != (2,) or shape.dtype.kind not in "iu":
        raise FormatError(f"{path}: expected 'shape' to be two integers; found {shape!r}")
    data = _numeric(npz["data"], path, "data", what)
    indices, indptr = npz["indices"], npz["indptr"]
    for key, array in (("indices", indices), ("indptr", indptr)):
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise FormatError(
                f"{path}: expected {key!r} to be a vector of integers; found dtype "
                f"{array.dtype}, shape {array.shape}"
            )
    rows, cols = (int(n) for n in shape)
    if len(indptr) != rows + 1 or len(indices) != len(data):
        raise FormatError(
            f"{path}: inconsistent CSR arrays for shape ({rows}, {cols}): indptr has "
            f"{len(indptr)} entries (expected {rows + 1}), indices {len(indices)}, data {len(data)}"
        )
    try:
        matrix = scipy.sparse.csr_matrix((data, indices, indptr), shape=(rows, cols))
        matrix.check_format(full_check=True)
    except ValueError as err:
        raise FormatError(f"{path}: invalid CSR matrix ({what}): {err}") from err
    return matrix
