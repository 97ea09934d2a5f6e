"""A folder ``saecooc subspace`` wrote for one subgraph:
``{figures}/{model}/{release}/{neat}/pca_{ts}_subgraph_{sid}_n_batches_{N}_graphs_{id}/``
(see docs/formats.md, "One subspace in depth")."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd

from ._errors import FormatError, MissingFileError
from ._names import threshold_from_tag
from ._pca import PcaGroup, read_group
from ._tables import read_csv

FOLDER_NAME = re.compile(
    r"^pca_(?P<ts>.+?)_subgraph_(?P<sid>-?\d+)(?:_n_batches_(?P<n>\d+)_graphs_(?P<graphs>[0-9a-f]+))?$"
)
SUMMARY = "subspace.json"


@dataclass
class Subspace:
    """What ``saecooc subspace`` wrote for one subgraph.

    - ``folder``: the subspace folder; ``summary``: its ``subspace.json`` (dict: latents,
      examples, explained variance, representative points, …);
    - ``subgraph_id``, ``threshold``, ``latents`` (from the summary);
    - ``examples``: ``pca_df_subgraph_{sid}.csv`` (``pandas.DataFrame``: point_id, tokens,
      context, batch, pos, PC1..PC3, one ``latent_{id}`` column per latent);
    - ``decoder``: ``pca_decoder_df_subgraph_{sid}.csv`` (None with fewer than 3 latents);
    - ``prompts``: ``prompts_subgraph_{sid}.csv`` (None without ``--prompts``);
    - ``group``: the ``graph_analysis_results_subgraph_{sid}.h5`` group (:class:`PcaGroup`);
    - ``figures``: ``{name: Path}`` of every PNG figure, names relative to the folder without
      ``.png`` (``pca_plot_graph_{sid}_token``, ``rep_point_1/non_zero_feature_activations_comparison``);
      ``pages``: the same for the HTML pages.
    """

    folder: Path
    summary: dict
    subgraph_id: int
    threshold: float
    latents: list
    examples: pd.DataFrame
    decoder: Optional[pd.DataFrame]
    prompts: Optional[pd.DataFrame]
    group: PcaGroup
    figures: dict
    pages: dict


def read_subspace(folder: Path) -> Subspace:
    """Reads a subspace folder (its ``subspace.json`` must exist: it is written last)."""
    summary = _read_summary(folder / SUMMARY)
    sid = int(summary["subgraph_id"])
    latents = [int(i) for i in summary["latents"]]
    optional = lambda name, what: (  # noqa: E731
        read_csv(folder / name, what) if (folder / name).is_file() else None
    )
    return Subspace(
        folder=folder,
        summary=summary,
        subgraph_id=sid,
        threshold=float(summary["activation_threshold"]),
        latents=latents,
        examples=read_csv(folder / f"pca_df_subgraph_{sid}.csv", "the subspace's examples", ("point_id", "PC1")),
        decoder=optional(f"pca_decoder_df_subgraph_{sid}.csv", "the decoder PCA"),
        prompts=optional(f"prompts_subgraph_{sid}.csv", "the prompts' points"),
        group=read_group(folder / f"graph_analysis_results_subgraph_{sid}.h5", sid, latents),
        figures=_files(folder, ".png"),
        pages=_files(folder, ".html"),
    )


def subspace_folders(parent: Path, sid, threshold, n_batches: int, graphs_id) -> tuple:
    """The subspace folders in ``parent`` (an SAE's figures folder) of one results folder
    (``n_batches``): ``([(folder, sid)] of the graphs set ``graphs_id(threshold)`` names,
    [folders of another graphs set])``, for one subgraph (or every one, ``sid`` None) and
    threshold (or every one). Older folders, named without a results folder, count as current."""
    current, stale = [], []
    folders = sorted(p for p in parent.glob("pca_*_subgraph_*") if p.is_dir()) if parent.is_dir() else []
    for folder in folders:
        match = FOLDER_NAME.match(folder.name)
        if match is None or (sid is not None and int(match["sid"]) != sid):
            continue
        t = threshold_from_tag(match["ts"])
        if (threshold is not None and t != float(threshold)) or (
            match["n"] is not None and int(match["n"]) != n_batches
        ):
            continue
        if match["graphs"] is None or match["graphs"] == graphs_id(t):
            current.append((folder, int(match["sid"])))
        else:
            stale.append(folder)
    return current, stale


def _read_summary(path: Path) -> dict:
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file (expected the summary saecooc subspace writes)")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise FormatError(f"{path}: not a JSON file: {err}") from err
    missing = [k for k in ("subgraph_id", "latents", "activation_threshold") if k not in summary]
    if missing:
        raise FormatError(f"{path}: expected subspace.json keys {missing}")
    return summary


def _files(folder: Path, suffix: str) -> dict:
    return {
        path.relative_to(folder).with_suffix("").as_posix(): path
        for path in sorted(folder.rglob(f"*{suffix}"))
    }
