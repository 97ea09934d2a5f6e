"""Results written by the real ``saecooc`` binary (``saecooc.binary()``: ``$SAECOOC_BIN``,
else the one installed beside this Python), once per session: the synthetic world of
``saecooc synth`` through cooc → graphs → pca → subspace, with the tiny configs of configs/,
once with dense matrices and once with ``[run] matrix_format = "csr"``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import saecooc

REPO = Path(__file__).resolve().parents[2]
SAE_ID = "blocks.1.hook_resid_pre"
THRESHOLD = 1.5


class World:
    """One results folder written by the binary, and what the tests need to find in it."""

    def __init__(self, root: Path, matrix_format: str):
        self.root = root
        self.matrix_format = matrix_format
        self.results = root / "results"
        self.figures = root / "figures"
        self.run_config = root / "tiny.toml"
        self.pca_config = root / "tiny-pca.toml"
        self.prompts = root / "prompts.txt"

    @property
    def run(self) -> saecooc.Run:
        return saecooc.open(self.results).run(sae=SAE_ID)


def adapted_config(source: Path, root: Path, matrix_format: str) -> str:
    """A config of configs/ with its demo paths and results folder moved into ``root``."""
    text = source.read_text(encoding="utf-8")
    text = text.replace('"demo/tiny/', f'"{root.as_posix()}/demo/tiny/')
    text = re.sub(r'(?m)^results_dir = .*$', f'results_dir = "{(root / "results").as_posix()}"', text)
    return text.replace("[run]\n", f'[run]\nmatrix_format = "{matrix_format}"\n', 1)


def build_world(root: Path, matrix_format: str) -> World:
    world = World(root, matrix_format)
    saecooc.run("synth", out=root / "demo" / "tiny", quiet=True)
    world.run_config.write_text(adapted_config(REPO / "configs" / "tiny.toml", root, matrix_format))
    world.pca_config.write_text(adapted_config(REPO / "configs" / "tiny-pca.toml", root, matrix_format))
    corpus = (root / "demo" / "tiny" / "corpus.txt").read_text(encoding="utf-8").splitlines()
    world.prompts.write_text("\n".join(corpus[:6]) + "\n", encoding="utf-8")
    saecooc.run("cooc", config=world.run_config, quiet=True)
    saecooc.run("graphs", config=world.run_config, quiet=True)
    saecooc.run("pca", config=world.pca_config, quiet=True)
    world.subgraph = first_pca_subgraph(world)
    saecooc.run(
        "subspace", config=world.pca_config, subgraph=world.subgraph, points="0,3",
        prompts=world.prompts, out=world.figures, quiet=True,
    )
    return world


def first_pca_subgraph(world: World) -> int:
    manifest = next(world.results.rglob("pca_run.json"))
    written = [s for s in json.loads(manifest.read_text())["subgraphs"] if not s["skipped"]]
    return written[0]["subgraph_id"]


@pytest.fixture(scope="session", params=["dense", "csr"])
def world(request, tmp_path_factory) -> World:
    return build_world(tmp_path_factory.mktemp(request.param), request.param)
