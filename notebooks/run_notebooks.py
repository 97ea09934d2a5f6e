#!/usr/bin/env python3
"""Executes the notebooks of this folder headless on the tiny synthetic world, as CI does.

Builds the world in a temporary folder with the installed ``saecooc`` (package and binary):
``saecooc synth`` at three SAE widths, then ``cooc``, ``graphs`` and ``pca`` with
configs/tiny.toml and configs/tiny-pca.toml (release ``synthetic-{width}``, so that the widths
get folders of their own), and ``stats`` over all three. Then it runs each notebook with nbclient,
pointing it at that world through the environment variables the notebooks read, and checks that
each wrote its figures (non-empty PNG files) into ``--out``, beside the executed notebook.

Usage: python notebooks/run_notebooks.py --out DIR [--world DIR]
Needs the saecooc wheel (or SAECOOC_BIN and python/ on PYTHONPATH), matplotlib, nbclient,
nbformat and ipykernel.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

import saecooc

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs"
WIDTHS = (256, 512, 1024)
# The width whose subgraphs the subspace notebook analyses (the demo's own).
ANALYSED_WIDTH = 512
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOTEBOOK_TIMEOUT_S = 600

# Each notebook and the figures it must write.
NOTEBOOKS = {
    "analyse_subspace.ipynb": [
        "pca_by_token.png",
        "pca_by_strongest_latent.png",
        "pca_by_context_group.png",
        "pca_by_latent_combination.png",
        "latent_combinations_stacked_bars.png",
        "regex_groups_pca.png",
        "regex_groups_stacked_bars.png",
        "regex_groups_area.png",
    ],
    "size_effects.ipynb": [
        "active_latents_per_token.png",
        "subgraph_sizes.png",
        "l0_latents_vs_subgraphs.png",
        "cooccurrence_observed_vs_expected.png",
    ],
}


def release(width: int) -> str:
    return f"synthetic-{width}"


def width_config(name: str, width: int) -> str:
    """A tiny config of configs/ for the world of one width: its own SAE folder and release."""
    text = (CONFIGS / name).read_text(encoding="utf-8")
    text = text.replace('"demo/tiny/', f'"demo/tiny-{width}/')
    return text.replace('sae_release_short = "synthetic"', f'sae_release_short = "{release(width)}"')


def build_world(world: Path) -> None:
    """Every width's results under ``world/results``, ``stats`` under ``world/stats``; the
    paths of the configs are relative to ``world``, where the binary runs."""
    for width in WIDTHS:
        run_config = world / f"tiny-{width}.toml"
        pca_config = world / f"tiny-pca-{width}.toml"
        run_config.write_text(width_config("tiny.toml", width), encoding="utf-8")
        pca_config.write_text(width_config("tiny-pca.toml", width), encoding="utf-8")
        saecooc.run("synth", out=f"demo/tiny-{width}", d_sae=width, quiet=True, cwd=world)
        for command, config in (("cooc", run_config), ("graphs", run_config), ("pca", pca_config)):
            saecooc.run(command, config=config, quiet=True, cwd=world)
    analysed = world / f"tiny-{ANALYSED_WIDTH}.toml"
    saecooc.run("stats", results_dir="results", out="stats", config=analysed, quiet=True, cwd=world)


def stored_outputs(nb) -> bool:
    """Whether a notebook as kept in git holds outputs (it should not: they are stripped)."""
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    return any(cell.get("outputs") or cell.get("execution_count") is not None for cell in code)


def execute(notebook: str, out: Path) -> None:
    """Runs one notebook (its working folder: this one) and saves it, with outputs, to ``out``."""
    nb = nbformat.read(HERE / notebook, as_version=4)
    if stored_outputs(nb):
        raise SystemExit(f"error: {HERE / notebook} holds outputs; strip them before committing")
    NotebookClient(nb, timeout=NOTEBOOK_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, out / notebook)


def check_figures(out: Path, names: list) -> list:
    """The problems with the figures a notebook should have written (none: empty list)."""
    problems = []
    for name in names:
        path = out / name
        if not path.is_file():
            problems.append(f"{path}: not written")
        elif path.stat().st_size <= len(PNG_SIGNATURE) or path.read_bytes()[:8] != PNG_SIGNATURE:
            problems.append(f"{path}: not a non-empty PNG file ({path.stat().st_size} bytes)")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the figures and executed notebooks")
    parser.add_argument("--world", type=Path, help="build the tiny world here (default: a temporary folder)")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        world = (args.world or Path(tmp)).resolve()
        world.mkdir(parents=True, exist_ok=True)
        build_world(world)
        os.environ.update(
            SAECOOC_RESULTS=str(world / "results"),
            SAECOOC_STATS=str(world / "stats"),
            SAECOOC_RELEASE=release(ANALYSED_WIDTH),
            SAECOOC_NOTEBOOK_FIGURES=str(out),
        )
        problems = []
        for notebook, figures in NOTEBOOKS.items():
            execute(notebook, out)
            problems += check_figures(out, figures)
            print(f"{notebook}: executed, {len(figures)} figures in {out}")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
