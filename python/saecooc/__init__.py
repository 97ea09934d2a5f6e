"""saecooc's results in Python.

Reads what the ``saecooc`` binary (and the original Python pipeline of Clarke, Bhatnagar &
Bloom, 2024) writes into a results folder, and calls the binary. Example::

    import saecooc
    run = saecooc.open("results").run(sae="blocks.8.hook_resid_pre")
    nodes = run.node_table(1.5)            # pandas.DataFrame, one row per latent
    J = run.jaccard(1.5)                   # np.ndarray, or scipy.sparse.csr_matrix when CSR
    group = run.pca_subgraph(42)           # pca_df (decoded), graph_feature_acts, ...
    saecooc.run("cooc", config="run.toml", resume=True)

See docs/python.md for the whole API.
"""

from ._cli import binary, command_line, run
from ._errors import CommandError, FormatError, MissingFileError, NoMatchError, SaecoocError
from ._matrices import load_square_matrix, load_vector
from ._names import neat_sae_id, threshold_tag
from ._pca import PcaFile, PcaGroup, read_group
from ._results import Results, open_results, open_run
from ._run import Run
from ._subgraph import Subgraph
from ._subspace import Subspace, read_subspace

open = open_results  # noqa: A001 (saecooc.open, as the issue names it)

__all__ = [
    "open",
    "open_run",
    "Results",
    "Run",
    "Subgraph",
    "PcaFile",
    "PcaGroup",
    "Subspace",
    "run",
    "binary",
    "command_line",
    "read_group",
    "read_subspace",
    "load_square_matrix",
    "load_vector",
    "neat_sae_id",
    "threshold_tag",
    "SaecoocError",
    "FormatError",
    "MissingFileError",
    "NoMatchError",
    "CommandError",
]
