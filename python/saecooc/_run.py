"""One run's files: :class:`Run`, every reader of one SAE's results folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

import numpy as np

from ._errors import FormatError, MissingFileError, NoMatchError
from ._matrices import load_square_matrix, load_vector
from ._names import neat_sae_id, path_component, threshold_from_tag, threshold_tag
from ._pca import PcaFile, PcaGroup, files_of, group_ids, one_run, read_group
from ._subgraph import Subgraph, subgraph_edges
from ._subspace import SUMMARY, Subspace, read_subspace, subspace_folders
from ._tables import read_edge_thresholds, read_node_table

COOC_KINDS = {
    "total": "the pair counts C",
    "jaccard": "the Jaccard matrix J",
    "activations": "the per-latent totals diag(C)",
}
DATAFRAMES = "dataframes"
NODE_TABLE_PREFIX = "node_info_df_"
RUN_JSON = "run.json"
GRAPHS_JSON = "graphs_run.json"
PCA_RUN_JSON = "pca_run.json"
APP_THRESHOLD = 1.5


class Run:
    """One SAE's results folder, ``path``, with ``model``, ``release``, ``sae`` (the folder
    name: the neat SAE id) and ``n_batches``. Every reader takes the activation threshold
    (``None``: the only one there is) and names the file and what it expected when it fails."""

    def __init__(self, path: Path, model: str, release: str, sae: str, n_batches: int, figures_dir: Path):
        self.path = Path(path)
        self.model = model
        self.release = release
        self.sae = sae
        self.n_batches = n_batches
        self.figures_dir = Path(figures_dir)

    def __repr__(self):
        return f"Run({self.describe()})"

    def describe(self) -> str:
        return f"model={self.model!r}, release={self.release!r}, sae={self.sae!r}, n_batches={self.n_batches}"

    def matches(self, model=None, release=None, sae=None, n_batches=None) -> bool:
        return (
            (model is None or model == self.model)
            and (release is None or release == self.release)
            and (sae is None or sae == self.sae or neat_sae_id(sae) == self.sae)
            and (n_batches is None or int(n_batches) == self.n_batches)
        )

    # Manifests

    @property
    def sae_id(self) -> Optional[str]:
        """The SAE id (``blocks.8.hook_resid_pre``) the manifests record, or None (the folder
        name ``sae`` is all the original's files say)."""
        for manifest in (self.manifest, self.graphs_manifest, self.pca_manifest):
            if manifest and manifest.get("sae_id"):
                return manifest["sae_id"]
        return None

    @property
    def manifest(self) -> Optional[dict]:
        """``run.json`` (written by ``cooc``), or None (the original wrote none)."""
        return _read_json(self.path / RUN_JSON)

    @property
    def graphs_manifest(self) -> Optional[dict]:
        """``graphs_run.json``, or None."""
        return _read_json(self.path / GRAPHS_JSON)

    @property
    def pca_manifest(self) -> Optional[dict]:
        """``{sae}_pca_for_streamlit/pca_run.json``, or None."""
        return _read_json(self.pca_dir / PCA_RUN_JSON)

    # Thresholds and co-occurrence files

    @property
    def thresholds(self) -> list:
        """Every activation threshold with a co-occurrence file or a node table, ascending."""
        found = set(self._node_tables())
        for kind in COOC_KINDS:
            found.update(self._cooc_files(kind))
        return sorted(found)

    def cooc_file(self, kind: str, threshold=None) -> Path:
        """The path of ``feature_acts_cooc_{kind}_threshold_{ts}.npz`` (kind: ``total``,
        ``jaccard`` or ``activations``); also found in a ``raw_cooc_*`` subfolder, as the
        original's loaders look."""
        if kind not in COOC_KINDS:
            raise ValueError(f"kind must be one of {list(COOC_KINDS)}, not {kind!r}")
        expected = lambda ts: f"feature_acts_cooc_{kind}_threshold_{ts}.npz"  # noqa: E731
        return _pick(self._cooc_files(kind), threshold, f"{COOC_KINDS[kind]}", self.path, expected)

    def counts(self, threshold=None):
        """C: how many tokens each pair of latents was active on together (diagonal: each
        latent's own count). ``np.ndarray`` when the file is dense, ``scipy.sparse.csr_matrix``
        when it is CSR."""
        return load_square_matrix(self.cooc_file("total", threshold), COOC_KINDS["total"])

    def jaccard(self, threshold=None):
        """J, the Jaccard similarity of every pair of latents; dense or CSR as :meth:`counts`."""
        return load_square_matrix(self.cooc_file("jaccard", threshold), COOC_KINDS["jaccard"])

    def totals(self, threshold=None):
        """diag(C): how many tokens each latent was active on (``np.ndarray``, one per latent)."""
        return load_vector(self.cooc_file("activations", threshold), COOC_KINDS["activations"])

    def _cooc_files(self, kind: str) -> dict:
        found = _tagged_files(self.path, f"feature_acts_cooc_{kind}_threshold_", ".npz")
        if not found:
            for sub in sorted(p for p in self.path.glob("raw_cooc_*") if p.is_dir()):
                for t, path in _tagged_files(sub, f"feature_acts_cooc_{kind}_threshold_", ".npz").items():
                    found.setdefault(t, path)
        return found

    # Graph outputs

    def node_table_file(self, threshold=None) -> Path:
        """The path of ``dataframes/node_info_df_{ts}.csv``."""
        expected = lambda ts: f"{DATAFRAMES}/{NODE_TABLE_PREFIX}{ts}.csv"  # noqa: E731
        return _pick(self._node_tables(), threshold, "a node table", self.path, expected)

    def node_table(self, threshold=None, parse_tokens: bool = True):
        """The node table (``pandas.DataFrame``): one row per latent, ``node_id``,
        ``subgraph_id``, ``subgraph_size``, ``feature_activations``, ``top_10_tokens`` (a list
        of strings; the CSV's text with ``parse_tokens=False``), links and metrics."""
        return read_node_table(self.node_table_file(threshold), parse_tokens)

    def edge_thresholds(self):
        """``edge_thresholds.csv``: the Jaccard cut ``graphs`` chose per activation threshold."""
        return read_edge_thresholds(self.path / "edge_thresholds.csv")

    def edge_threshold(self, threshold) -> Optional[float]:
        """The Jaccard cut of one activation threshold, or None without ``edge_thresholds.csv``
        or a row for it."""
        if not (self.path / "edge_thresholds.csv").is_file():
            return None
        table = self.edge_thresholds()
        rows = table[table["activation_threshold"] == float(threshold)]
        return None if rows.empty else float(rows["edge_threshold"].iloc[0])

    def thresholded_matrix(self, threshold=None):
        """J with the diagonal and every entry below the edge cut set to 0, as ``graphs``
        wrote it: ``thresholded_matrices/sparse_thresholded_matrix_{ts}.npz`` (CSR), else the
        dense ``thresholded_matrix_{ts}.npz``."""
        folder = self.path / "thresholded_matrices"
        files = _tagged_files(folder, "sparse_thresholded_matrix_", ".npz")
        for t, path in _tagged_files(folder, "thresholded_matrix_", ".npz").items():
            files.setdefault(t, path)
        expected = lambda ts: f"thresholded_matrices/sparse_thresholded_matrix_{ts}.npz"  # noqa: E731
        path = _pick(files, threshold, "the thresholded Jaccard matrix", self.path, expected)
        return load_square_matrix(path, "the thresholded Jaccard matrix")

    def subgraph(self, subgraph_id: int, threshold=None) -> Subgraph:
        """One subgraph of the node table, its edges read from the Jaccard matrix cut at the
        edge threshold: ``thresholded_matrices/sparse_thresholded_matrix_{ts}.npz`` (small),
        else the Jaccard file itself."""
        table_file = self.node_table_file(threshold)
        t = threshold_from_tag(table_file.stem[len(NODE_TABLE_PREFIX):])
        table = read_node_table(table_file)
        nodes = table[table["subgraph_id"] == int(subgraph_id)].reset_index(drop=True)
        if nodes.empty:
            raise NoMatchError(
                f"{table_file}: no subgraph {subgraph_id} (ids {table['subgraph_id'].min()}"
                f"..{table['subgraph_id'].max()})"
            )
        matrix_file = self._edge_matrix_file(t)
        matrix = load_square_matrix(matrix_file, COOC_KINDS["jaccard"])
        latents = nodes["node_id"].to_numpy()
        if latents.max() >= matrix.shape[0] or latents.min() < 0:
            raise FormatError(
                f"{table_file}: subgraph {subgraph_id} names latents outside {matrix_file} "
                f"({matrix.shape[0]} latents): {latents.tolist()}"
            )
        cut = self.edge_threshold(t)
        return Subgraph(int(subgraph_id), t, latents, nodes, subgraph_edges(matrix, latents, cut), cut, matrix_file)

    def _edge_matrix_file(self, t: float) -> Path:
        sparse = self.path / "thresholded_matrices" / f"sparse_thresholded_matrix_{threshold_tag(t)}.npz"
        if sparse.is_file():
            return sparse
        jaccard = self._cooc_files("jaccard").get(t)
        if jaccard is not None:
            return jaccard
        raise MissingFileError(
            f"{self.path}: no Jaccard matrix for threshold {t}: expected "
            f"{sparse.relative_to(self.path)} or feature_acts_cooc_jaccard_threshold_{threshold_tag(t)}.npz"
        )

    def _node_tables(self) -> dict:
        return _tagged_files(self.path / DATAFRAMES, NODE_TABLE_PREFIX, ".csv")

    # PCA files

    @property
    def pca_dir(self) -> Path:
        """``{sae}_pca_for_streamlit/``, the folder of the PCA h5 files."""
        return self.path / f"{self.sae}_pca_for_streamlit"

    def pca_files(self) -> list:
        """The PCA h5 files (:class:`PcaFile`: path, size, max_examples, n_batches, chunk):
        those ``pca_run.json`` lists when it lists files, else every file with the original's
        name pattern."""
        if not self.pca_dir.is_dir():
            raise MissingFileError(f"{self.pca_dir}: no such folder (expected the PCA h5 files of `saecooc pca`)")
        files = [f for f in map(PcaFile.parse, sorted(self.pca_dir.glob("*.h5"))) if f is not None]
        listed = (self.pca_manifest or {}).get("files")
        if listed:
            names = {Path(entry["path"]).name for entry in listed}
            files = [f for f in files if f.path.name in names]
        return files

    def pca(self, size: int, threshold=None, max_examples=None, n_batches=None) -> dict:
        """Every subgraph of ``size`` latents in the PCA h5 files: ``{subgraph_id: PcaGroup}``,
        ids ascending. ``max_examples`` and ``n_batches`` choose among files of several
        ``pca`` runs; ``threshold`` the node table that gives each group's latents (default:
        the one ``pca_run.json`` records, else the only one, else 1.5 as the original app)."""
        files = one_run(self.pca_files(), size, max_examples, n_batches, self.pca_dir)
        latents = self._pca_latents(threshold)
        groups = [(sid, f.path) for f in files for sid in group_ids(f.path)]
        return {sid: self._read_pca_group(path, sid, latents) for sid, path in sorted(groups)}

    def pca_subgraph(self, subgraph_id: int, threshold=None, max_examples=None, n_batches=None) -> PcaGroup:
        """One subgraph's group of the PCA h5 files (:class:`PcaGroup`), whatever its size."""
        sid = int(subgraph_id)
        files = files_of(self.pca_files(), None, max_examples, n_batches)
        holding = [f for f in files if sid in group_ids(f.path)]
        runs = sorted({f.run for f in holding}, key=str)
        if len(runs) != 1:
            listing = "\n".join(f"  {f.path.name}" for f in holding or files) or "  (none)"
            problem = f"no PCA file holds subgraph {sid}" if not runs else (
                f"subgraph {sid} is in the files of {len(runs)} pca runs; pass max_examples= or n_batches="
            )
            raise NoMatchError(f"{self.pca_dir}: {problem}; files:\n{listing}")
        return self._read_pca_group(holding[0].path, sid, self._pca_latents(threshold))

    def _read_pca_group(self, path: Path, sid: int, latents) -> PcaGroup:
        """One group, with its latents from ``latents`` (``(node table, {sid: latents})`` or
        None); a group the node table does not have is refused."""
        if latents is None:
            return read_group(path, sid)
        table, by_subgraph = latents
        if sid not in by_subgraph:
            raise FormatError(
                f"{path}: group subgraph_{sid} is no subgraph of {table} (the PCA was computed "
                f"from another node table? pass threshold=)"
            )
        return read_group(path, sid, by_subgraph[sid])

    def _pca_latents(self, threshold) -> Optional[tuple]:
        """``(source, {subgraph_id: latents})``: the latents ``pca_run.json`` records (unless
        another threshold is asked for), else those of the node table the PCA was computed
        from (the manifest's threshold, else the only table, else the original app's 1.5)."""
        manifest = self.pca_manifest or {}
        recorded = manifest.get("activation_threshold")
        if manifest.get("subgraphs") and (threshold is None or float(threshold) == recorded):
            latents = {int(s["subgraph_id"]): np.asarray(s["latents"], dtype=np.int64) for s in manifest["subgraphs"]}
            return self.pca_dir / PCA_RUN_JSON, latents
        tables = self._node_tables()
        if threshold is None:
            if recorded is not None:
                threshold = recorded
            elif len(tables) == 1:
                threshold = next(iter(tables))
            elif APP_THRESHOLD in tables:
                threshold = APP_THRESHOLD
            else:
                return None
        path = self.node_table_file(threshold)
        table = read_node_table(path, parse_tokens=False)
        return path, {int(sid): rows["node_id"].to_numpy() for sid, rows in table.groupby("subgraph_id", sort=False)}

    # Subspaces

    def subspace_ids(self, threshold=None) -> list:
        """The subgraph ids with a finished ``subspace`` folder of this run's current graphs
        set, ascending (of one threshold when given)."""
        current, _ = self._subspace_folders(None, threshold)
        return sorted({sid for folder, sid in current if (folder / SUMMARY).is_file()})

    def subspace(self, subgraph_id: int, threshold=None) -> Subspace:
        """What ``saecooc subspace`` wrote for a subgraph of this run (:class:`Subspace`):
        the folder under the figures folder whose name holds this run's ``n_batches`` and its
        graphs set (or an older folder named ``pca_{ts}_subgraph_{sid}``)."""
        sid = int(subgraph_id)
        current, stale = self._subspace_folders(sid, threshold)
        parent = self._subspace_parent()
        if len(current) > 1:
            listing = "\n".join(f"  {folder.name}" for folder, _ in current)
            raise NoMatchError(f"{parent}: several subspace folders of subgraph {sid}; pass threshold=:\n{listing}")
        if current:
            return read_subspace(current[0][0])
        hint = f" (folders of another graphs set: {[f.name for f in stale]}; rerun saecooc subspace)" if stale else ""
        raise MissingFileError(
            f"{parent}: no subspace folder pca_{{ts}}_subgraph_{sid}_n_batches_{self.n_batches}_graphs_{{id}} "
            f"of this run's graphs set{hint}"
        )

    def _subspace_parent(self) -> Path:
        return self.figures_dir / path_component(self.model) / path_component(self.release) / self.sae

    def _subspace_folders(self, sid, threshold) -> tuple:
        return subspace_folders(self._subspace_parent(), sid, threshold, self.n_batches, self._graphs_id)

    def _graphs_id(self, t: float) -> Optional[str]:
        """The first 8 hex digits of the graphs set id, else of the node table's SHA-256."""
        set_id = (self.graphs_manifest or {}).get("set_id")
        if set_id:
            return set_id[:8]
        table = self._node_tables().get(t)
        return None if table is None else hashlib.sha256(table.read_bytes()).hexdigest()[:8]


def _tagged_files(folder: Path, prefix: str, suffix: str) -> dict:
    """``{threshold: path}`` of the files ``{prefix}{ts}{suffix}`` in ``folder``."""
    found = {}
    if folder.is_dir():
        for path in sorted(folder.glob(f"{prefix}*{suffix}")):
            t = threshold_from_tag(path.name[len(prefix):-len(suffix)])
            if t is not None:
                found.setdefault(t, path)
    return found


def _pick(files: dict, threshold, what: str, folder: Path, expected) -> Path:
    """The file of ``threshold`` (None: the only one) among ``{threshold: path}``."""
    available = sorted(files)
    if threshold is None:
        if len(available) == 1:
            return files[available[0]]
        if not available:
            raise MissingFileError(f"{folder / expected('{ts}')}: no such file (expected {what})")
        raise NoMatchError(f"{folder}: {what} exists for several thresholds; pass one of {available}")
    t = float(threshold)
    if t in files:
        return files[t]
    raise MissingFileError(
        f"{folder / expected(threshold_tag(t))}: no such file (expected {what} of threshold {t}; "
        f"thresholds with one: {available})"
    )


def _read_json(path: Path) -> Optional[dict]:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise FormatError(f"{path}: not a JSON file: {err}") from err
