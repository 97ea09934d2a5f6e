"""Finding runs in a results folder: ``saecooc.open``, ``open_run`` and :class:`Results`.

A run is one SAE's results folder, ``{results}/{model}/{release}/{neat_sae_id}/n_batches_{N}/``,
found as ``saecooc export`` and ``stats`` find them (a folder with ``dataframes/`` or
``run.json``) or holding co-occurrence files only (the original's step 1 writes no manifest)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ._errors import FormatError, MissingFileError, NoMatchError
from ._names import name_from_component
from ._run import DATAFRAMES, RUN_JSON, Run


def open_results(results_dir, figures_dir=None) -> "Results":
    """``saecooc.open``: the runs under a results folder (``results/`` by default in saecooc's configs).

    ``figures_dir`` is where ``saecooc subspace`` wrote (default: ``figures`` beside the
    results folder, as the CLI's default). Example::

        results = saecooc.open("results")
        run = results.run(sae="blocks.8.hook_resid_pre")
    """
    return Results(results_dir, figures_dir)


def open_run(folder, figures_dir=None) -> "Run":
    """One run from its own folder, ``{results}/{model}/{release}/{neat_sae_id}/n_batches_{N}``."""
    folder = Path(folder).absolute()
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: no such folder (expected a run's n_batches_N folder)")
    n_batches = _n_batches(folder.name)
    if n_batches is None:
        raise FormatError(f"{folder}: a run's folder is named n_batches_N, not {folder.name!r}")
    sae, release, model = folder.parent, folder.parent.parent, folder.parent.parent.parent
    figures = Path(figures_dir) if figures_dir is not None else model.parent.parent / "figures"
    return Run(folder, name_from_component(model.name), name_from_component(release.name), sae.name, n_batches, figures)


class Results:
    """A results folder: ``root``, ``figures_dir`` and ``runs`` (a list of :class:`Run`,
    sorted by model, release, SAE folder and n_batches)."""

    def __init__(self, results_dir, figures_dir=None):
        self.root = Path(results_dir)
        if not self.root.is_dir():
            raise MissingFileError(f"{self.root}: no such folder (expected a results folder)")
        self.figures_dir = Path(figures_dir) if figures_dir is not None else self.root.parent / "figures"
        self.runs = _find_runs(self.root, self.figures_dir)

    def run(self, model=None, release=None, sae=None, n_batches=None) -> "Run":
        """The one run matching every given name: ``model``, ``release`` (``sae_release_short``),
        ``sae`` (the SAE id, ``blocks.8.hook_resid_pre``, or its folder name,
        ``blocks_8_hook_resid_pre``) and ``n_batches``. No match or several: a
        :class:`NoMatchError` listing the candidates."""
        matches = [r for r in self.runs if r.matches(model, release, sae, n_batches)]
        if len(matches) == 1:
            return matches[0]
        asked = ", ".join(
            f"{k}={v!r}" for k, v in (("model", model), ("release", release), ("sae", sae), ("n_batches", n_batches))
            if v is not None
        ) or "no filter"
        listing = "\n".join(f"  {r.describe()}" for r in self.runs) or (
            "  (none: runs are {model}/{release}/{sae}/n_batches_{N} folders inside it; "
            "saecooc.open_run reads one such folder)"
        )
        problem = "no run matches" if not matches else f"{len(matches)} runs match"
        raise NoMatchError(f"{self.root}: {problem} {asked}; its runs:\n{listing}")

    def __iter__(self):
        return iter(self.runs)

    def __len__(self):
        return len(self.runs)

    def __repr__(self):
        return f"Results({str(self.root)!r}, {len(self.runs)} runs)"


def _find_runs(root: Path, figures_dir: Path) -> list:
    runs = []
    for model in _subdirs(root):
        for release in _subdirs(model):
            for sae in _subdirs(release):
                for folder in _subdirs(sae):
                    n_batches = _n_batches(folder.name)
                    if n_batches is not None and _holds_results(folder):
                        runs.append(Run(
                            folder, name_from_component(model.name), name_from_component(release.name),
                            sae.name, n_batches, figures_dir,
                        ))
    return runs


def _holds_results(folder: Path) -> bool:
    return (
        (folder / DATAFRAMES).is_dir()
        or (folder / RUN_JSON).is_file()
        or any(folder.glob("feature_acts_cooc_*.npz"))
        or any(folder.glob("raw_cooc_*/feature_acts_cooc_*.npz"))
    )


def _subdirs(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _n_batches(name: str) -> Optional[int]:
    digits = name[len("n_batches_"):] if name.startswith("n_batches_") else ""
    return int(digits) if digits.isdigit() else None
