"""The PCA h5 files: ``{neat}_pca_for_streamlit/{cap}graph_analysis_results_size_{k}_nbatch_{nb}[_chunk{i}].h5``
(``pca``, and the original's step 4) and a subspace folder's ``graph_analysis_results_subgraph_{sid}.h5``.
Each holds one group ``subgraph_{sid}`` per subgraph; see docs/formats.md, "PCA h5 files"."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import h5py
import numpy as np
import pandas as pd

from ._errors import FormatError, MissingFileError, NoMatchError

H5_NAME = re.compile(
    r"^(?:(?P<cap>\d+)cap_)?graph_analysis_results_size_(?P<size>\d+)_nbatch_(?P<nbatch>\d+)"
    r"(?:_chunk(?P<chunk>\d+))?\.h5$"
)
GROUP_NAME = re.compile(r"^subgraph_(-?\d+)$")
PCA_COLUMNS = ("PC1", "PC2", "PC3")


@dataclass(frozen=True)
class PcaFile:
    """One h5 file of a PCA folder, with what its name says."""

    path: Path
    size: int
    max_examples: Optional[int]
    n_batches: int
    chunk: Optional[int]

    @property
    def run(self) -> tuple:
        """The files of one ``pca`` run share (max_examples, n_batches)."""
        return (self.max_examples, self.n_batches)

    @staticmethod
    def parse(path: Path) -> Optional["PcaFile"]:
        match = H5_NAME.match(path.name)
        if match is None:
            return None
        number = lambda key: None if match[key] is None else int(match[key])  # noqa: E731
        return PcaFile(path, int(match["size"]), number("cap"), int(match["nbatch"]), number("chunk"))

    def describe(self) -> str:
        cap = "no cap" if self.max_examples is None else f"max_examples {self.max_examples}"
        return f"size {self.size}, {cap}, n_batches {self.n_batches}"


@dataclass
class PcaGroup:
    """One subgraph's group of a PCA h5 file, decoded.

    Attributes (``None`` where the file lacks the dataset, as ``[processing.save_options]``
    decide):

    - ``subgraph_id``, ``file`` (the h5 file), ``latents`` (the subgraph's latent ids in the
      column order of ``graph_feature_acts``; ``None`` when not known);
    - ``pca_df``: ``pandas.DataFrame`` with ``point_id, tokens, context, PC1, PC2, PC3``
      (``pca_df/``), tokens and contexts decoded to ``str``;
    - ``graph_feature_acts``: ``np.ndarray`` (examples × latents), ``all_graph_feature_acts``;
    - ``max_feature_info``: ``np.ndarray`` (examples × 3): max activation over all latents,
      its latent, 1.0 if that latent is in the subgraph;
    - ``top_3_tokens``: list of ``(token, count)``; ``example_context``: ``str`` (the stored
      characters joined);
    - ``fired_tokens`` (list of ``str``), ``reconstructions``, ``feature_acts`` (ndarrays),
      ``examples_found`` (int), ``token_dfs`` (``pandas.DataFrame`` of ``all_token_dfs/``).
    """

    subgraph_id: int
    file: Path
    latents: Optional[np.ndarray]
    pca_df: Optional[pd.DataFrame]
    graph_feature_acts: Optional[np.ndarray]
    max_feature_info: Optional[np.ndarray]
    top_3_tokens: Optional[list]
    example_context: Optional[str]
    fired_tokens: Optional[list]
    reconstructions: Optional[np.ndarray]
    feature_acts: Optional[np.ndarray]
    examples_found: Optional[int]
    token_dfs: Optional[pd.DataFrame]

    def frame(self) -> pd.DataFrame:
        """``pca_df`` with one column per subgraph latent (``latent_{id}``, or ``act_{k}`` when
        the latents are unknown) from ``graph_feature_acts``, and ``max_activation``,
        ``max_latent``, ``max_in_graph`` from ``max_feature_info`` (where the file has them)."""
        if self.pca_df is None:
            raise FormatError(f"{self.file}: group subgraph_{self.subgraph_id} has no pca_df")
        frame = self.pca_df.copy()
        if self.graph_feature_acts is not None:
            names = (
                [f"latent_{int(i)}" for i in self.latents]
                if self.latents is not None
                else [f"act_{k}" for k in range(self.graph_feature_acts.shape[1])]
            )
            for k, name in enumerate(names):
                frame[name] = self.graph_feature_acts[:, k]
        if self.max_feature_info is not None:
            frame["max_activation"] = self.max_feature_info[:, 0]
            frame["max_latent"] = self.max_feature_info[:, 1].astype(np.int64)
            frame["max_in_graph"] = self.max_feature_info[:, 2] == 1.0
        return frame


    def active_latents(self, above: float = 0.0) -> pd.Series:
        """Per example (index ``point_id``), the tuple of subgraph latents whose activation is
        above ``above``, in ``latents`` order: the latent combination each example shows (its
        positions in ``graph_feature_acts`` when the latents are unknown)."""
        if self.graph_feature_acts is None:
            raise FormatError(f"{self.file}: group subgraph_{self.subgraph_id} has no all_graph_feature_acts")
        ids = self.latents if self.latents is not None else np.arange(self.graph_feature_acts.shape[1])
        combos = [tuple(int(i) for i in ids[row > above]) for row in self.graph_feature_acts]
        index = self.pca_df["point_id"] if self.pca_df is not None else None
        return pd.Series(combos, index=index, name="active_latents")


def files_of(files: list, size, max_examples, n_batches) -> list:
    """The files of ``size``, ``max_examples`` and ``n_batches`` (None: any)."""
    return [
        f for f in files
        if (size is None or f.size == int(size))
        and (max_examples is None or f.max_examples == max_examples)
        and (n_batches is None or f.n_batches == n_batches)
    ]


def one_run(files: list, size, max_examples, n_batches, folder: Path) -> list:
    """The files of one ``pca`` run for ``size`` (chunks in order); none or several runs: a
    NoMatchError listing ``files``."""
    chosen = files_of(files, size, max_examples, n_batches)
    runs = sorted({f.run for f in chosen}, key=str)
    if len(runs) == 1:
        return sorted(chosen, key=lambda f: (f.chunk is not None, f.chunk or 0))
    listing = "\n".join(f"  {f.path.name} ({f.describe()})" for f in files) or "  (none)"
    problem = f"no PCA file of size {size}" if not runs else (
        f"files of {len(runs)} pca runs for size {size}; pass max_examples= or n_batches="
    )
    raise NoMatchError(f"{folder}: {problem}; files:\n{listing}")


def group_ids(path: Path) -> list:
    """The subgraph ids of the groups in one h5 file, ascending."""
    with _open_h5(path) as h5:
        return sorted(int(m.group(1)) for m in map(GROUP_NAME.match, h5.keys()) if m)


def read_group(path: Path, subgraph_id: int, latents=None) -> PcaGroup:
    """The group ``subgraph_{subgraph_id}`` of ``path``, checked as ``pca`` writes it: every
    ``pca_df`` column and ``graph_feature_acts``/``max_feature_info`` row per example, one
    ``graph_feature_acts`` column per latent when ``latents`` is given."""
    with _open_h5(path) as h5:
        name = f"subgraph_{subgraph_id}"
        if name not in h5:
            raise MissingFileError(
                f"{path}: no group {name!r} (groups: {sorted(h5.keys())[:20]})"
            )
        group = h5[name]
        where = f"{path}, group {name}"
        reader = _GroupReader(group, where)
        pca_df = reader.pca_df()
        latents = None if latents is None else np.asarray(latents, dtype=np.int64)
        result = PcaGroup(
            subgraph_id=subgraph_id,
            file=Path(path),
            latents=latents,
            pca_df=pca_df,
            graph_feature_acts=reader.array("all_graph_feature_acts", ndim=2),
            max_feature_info=reader.array("all_max_feature_info", ndim=2),
            top_3_tokens=reader.top_3_tokens(),
            example_context=reader.example_context(),
            fired_tokens=reader.strings("all_fired_tokens"),
            reconstructions=reader.array("all_reconstructions", ndim=2),
            feature_acts=reader.array("all_feature_acts", ndim=2),
            examples_found=reader.scalar("all_examples_found"),
            token_dfs=reader.table("all_token_dfs"),
        )
    _check_rows(result, where)
    return result


def _open_h5(path: Path):
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file (expected a PCA h5 file)")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise FormatError(f"{path}: not a readable HDF5 file: {err}") from err


def _check_rows(group: PcaGroup, where: str) -> None:
    per_example = {
        "pca_df": group.pca_df,
        "all_graph_feature_acts": group.graph_feature_acts,
        "all_max_feature_info": group.max_feature_info,
        "all_fired_tokens": group.fired_tokens,
        "all_reconstructions": group.reconstructions,
        "all_feature_acts": group.feature_acts,
        "all_token_dfs": group.token_dfs,
    }
    rows = {name: len(value) for name, value in per_example.items() if value is not None}
    if group.examples_found is not None:
        rows["all_examples_found"] = group.examples_found
    if len(set(rows.values())) > 1:
        raise FormatError(f"{where}: the datasets disagree on the number of examples: {rows}")
    info = group.max_feature_info
    if info is not None and info.shape[1] != 3:
        raise FormatError(f"{where}: all_max_feature_info has {info.shape[1]} columns, expected 3")
    acts = group.graph_feature_acts
    if acts is not None and group.latents is not None and acts.shape[1] != len(group.latents):
        raise FormatError(
            f"{where}: all_graph_feature_acts has {acts.shape[1]} columns, but the subgraph "
            f"has {len(group.latents)} latents ({group.latents.tolist()})"
        )


class _GroupReader:
    """Reads the datasets of one group, with errors naming the file, group and dataset."""

    def __init__(self, group, where: str):
        self.group = group
        self.where = where

    def dataset(self, name: str):
        item = self.group.get(name)
        if item is not None and not isinstance(item, h5py.Dataset):
            raise FormatError(f"{self.where}: {name} is a group, expected a dataset")
        return item

    def array(self, name: str, ndim: int):
        item = self.dataset(name)
        if item is None:
            return None
        array = item[()]
        if not isinstance(array, np.ndarray) or array.ndim != ndim or array.dtype.kind not in "fiu":
            raise FormatError(
                f"{self.where}: expected {name} to be a {ndim}-D numeric array; found "
                f"{getattr(array, 'dtype', type(array).__name__)} of shape {np.shape(array)}"
            )
        return array

    def scalar(self, name: str):
        item = self.dataset(name)
        if item is None:
            return None
        value = item[()]
        if np.ndim(value) != 0:
            raise FormatError(f"{self.where}: expected {name} to be a scalar; found shape {np.shape(value)}")
        return int(value)

    def strings(self, name: str):
        item = self.dataset(name)
        if item is None:
            return None
        return decode_strings(item[()], f"{self.where}: {name}")

    def top_3_tokens(self):
        reprs = self.strings("top_3_tokens")
        if reprs is None:
            return None
        return [_token_count(text, self.where) for text in reprs]

    def example_context(self):
        characters = self.strings("example_context")
        return None if characters is None else "".join(characters)

    def pca_df(self):
        columns = self.columns("pca_df")
        if columns is None:
            return None
        missing = [c for c in (*PCA_COLUMNS, "tokens") if c not in columns]
        if missing:
            raise FormatError(f"{self.where}: pca_df: missing {missing} (found {sorted(columns)})")
        if "point_id" not in columns:
            columns["point_id"] = np.arange(len(columns["tokens"]), dtype=np.int64)
        order = ["point_id", "tokens", "context", *PCA_COLUMNS]
        ordered = [c for c in order if c in columns] + sorted(set(columns) - set(order))
        return pd.DataFrame({c: columns[c] for c in ordered})

    def table(self, name: str):
        columns = self.columns(name)
        return None if columns is None else pd.DataFrame(columns)

    def columns(self, name: str):
        """The datasets of the subgroup ``name`` as ``{column: values}`` (strings decoded),
        all of one length; None without the subgroup."""
        group = self.group.get(name)
        if group is None:
            return None
        where = f"{self.where}: {name}"
        columns = {}
        for column in group.keys():
            if not isinstance(group[column], h5py.Dataset):
                raise FormatError(f"{where}/{column}: a group, expected a dataset")
            values = group[column][()]
            if np.ndim(values) != 1:
                raise FormatError(f"{where}/{column}: expected one value per example; found shape {np.shape(values)}")
            columns[column] = (
                decode_strings(values, f"{where}/{column}") if values.dtype.kind in "SOU" else values
            )
        lengths = {c: len(v) for c, v in columns.items()}
        if len(set(lengths.values())) > 1:
            raise FormatError(f"{where}: columns of different lengths {lengths}")
        return columns


def decode_strings(values, where: str) -> list:
    """A list of ``str`` from an h5 string dataset's value: fixed-length UTF-8 byte strings
    (numpy ``S``, as the original and saecooc write them) or variable-length strings. A scalar
    becomes a one-element list."""
    items = np.atleast_1d(values)
    if items.ndim != 1:
        raise FormatError(f"{where}: expected a vector of strings; found shape {items.shape}")
    out = []
    for item in items.tolist():
        if isinstance(item, bytes):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError as err:
                raise FormatError(f"{where}: not UTF-8 text: {item!r}") from err
        elif not isinstance(item, str):
            raise FormatError(f"{where}: expected strings; found {type(item).__name__}")
        out.append(item)
    return out


def _token_count(text: str, where: str) -> tuple:
    """``"(' the', 523)"`` → ``(' the', 523)``."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as err:
        raise FormatError(f"{where}: top_3_tokens entry {text!r} is not a (token, count) repr") from err
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)):
        raise FormatError(f"{where}: top_3_tokens entry {text!r} is not a (token, count) repr")
    return value
