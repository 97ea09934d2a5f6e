"""Errors name the file and what was expected, and nothing is read as what it is not."""

from __future__ import annotations

import sys

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse

import saecooc


def run_folder(tmp_path):
    folder = tmp_path / "results" / "m" / "r" / "sae" / "n_batches_2"
    folder.mkdir(parents=True)
    return folder


def jaccard_path(folder, t="1_5"):
    return folder / f"feature_acts_cooc_jaccard_threshold_{t}.npz"


def test_a_wrong_key_names_the_file_and_the_keys(tmp_path):
    folder = run_folder(tmp_path)
    np.savez(jaccard_path(folder), matrix=np.eye(3, dtype=np.float32))
    with pytest.raises(saecooc.FormatError) as err:
        saecooc.open_run(folder).jaccard(1.5)
    message = str(err.value)
    assert str(jaccard_path(folder)) in message and "'arr_0'" in message and "['matrix']" in message


def test_a_missing_file_names_the_path_and_the_thresholds_there(tmp_path):
    folder = run_folder(tmp_path)
    np.savez_compressed(jaccard_path(folder, "0_0"), np.eye(3, dtype=np.float32))
    run = saecooc.open_run(folder)
    with pytest.raises(saecooc.MissingFileError) as err:
        run.jaccard(1.5)
    assert str(jaccard_path(folder)) in str(err.value) and "[0.0]" in str(err.value)
    with pytest.raises(FileNotFoundError, match="feature_acts_cooc_total_threshold_"):
        run.counts()
    with pytest.raises(FileNotFoundError, match="node_info_df_1_5.csv"):
        run.node_table(1.5)


def test_several_thresholds_need_one_chosen(tmp_path):
    folder = run_folder(tmp_path)
    for t in ("0_0", "1_5"):
        np.savez_compressed(jaccard_path(folder, t), np.eye(3, dtype=np.float32))
    with pytest.raises(saecooc.NoMatchError, match=r"pass one of \[0.0, 1.5\]"):
        saecooc.open_run(folder).jaccard()


def write_csr(path, matrix, **changes):
    arrays = {"indices": matrix.indices, "indptr": matrix.indptr, "format": np.array(b"csr"),
              "shape": np.array(matrix.shape), "data": matrix.data}
    arrays.update(changes)
    np.savez_compressed(path, **arrays)


@pytest.mark.parametrize("change, expected", [
    ({"format": np.array(b"csc")}, "'format' is 'csc'"),
    ({"indices": np.array([0, 9], dtype=np.int32)}, "invalid CSR matrix"),
    ({"indptr": np.array([0, 1], dtype=np.int32)}, "indptr has 2 entries"),
    ({"shape": np.array([3, 4])}, "square matrix"),
    ({"data": np.array([b"a", b"b"])}, "real numbers"),
])
def test_bad_csr_files_are_refused(tmp_path, change, expected):
    folder = run_folder(tmp_path)
    matrix = scipy.sparse.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float32))
    write_csr(jaccard_path(folder), matrix, **change)
    with pytest.raises(saecooc.FormatError) as err:
        saecooc.open_run(folder).jaccard(1.5)
    assert str(jaccard_path(folder)) in str(err.value) and expected in str(err.value)


def test_scipy_csr_round_trips_and_dense_shapes_are_checked(tmp_path):
    folder = run_folder(tmp_path)
    matrix = scipy.sparse.random(6, 6, density=0.3, format="csr", dtype=np.float32, random_state=1)
    scipy.sparse.save_npz(jaccard_path(folder), matrix)
    got = saecooc.open_run(folder).jaccard(1.5)
    assert isinstance(got, scipy.sparse.csr_matrix)
    np.testing.assert_array_equal(got.toarray(), matrix.toarray())
    np.savez_compressed(jaccard_path(folder), np.zeros(6, dtype=np.float32))
    with pytest.raises(saecooc.FormatError, match="square matrix; found shape \\(6,\\)"):
        saecooc.open_run(folder).jaccard(1.5)
    np.save(folder / "x.npy", np.eye(2))
    (folder / "x.npy").rename(jaccard_path(folder))
    with pytest.raises(saecooc.FormatError, match="not an .npz archive"):
        saecooc.open_run(folder).jaccard(1.5)
    jaccard_path(folder).write_text("not a zip")
    with pytest.raises(saecooc.FormatError, match="not a readable .npz file"):
        saecooc.open_run(folder).jaccard(1.5)


def test_totals_must_be_a_dense_vector(tmp_path):
    folder = run_folder(tmp_path)
    path = folder / "feature_acts_cooc_activations_threshold_1_5.npz"
    np.savez_compressed(path, np.eye(2, dtype=np.float32))
    with pytest.raises(saecooc.FormatError, match="vector; found shape \\(2, 2\\)"):
        saecooc.open_run(folder).totals(1.5)


def test_a_node_table_without_its_columns_is_refused(tmp_path):
    folder = run_folder(tmp_path)
    (folder / "dataframes").mkdir()
    path = folder / "dataframes" / "node_info_df_1_5.csv"
    pd.DataFrame({"node_id": [0], "subgraph_id": [0]}).to_csv(path, index=False)
    with pytest.raises(saecooc.FormatError) as err:
        saecooc.open_run(folder).node_table(1.5)
    assert str(path) in str(err.value) and "['subgraph_size']" in str(err.value)
    pd.DataFrame({"node_id": [0], "subgraph_id": [0], "subgraph_size": [1], "top_10_tokens": ["[' a'"]}).to_csv(path, index=False)
    with pytest.raises(saecooc.FormatError, match="top_10_tokens of node 0"):
        saecooc.open_run(folder).node_table(1.5)


def test_h5_groups_whose_rows_disagree_are_refused(tmp_path):
    path = tmp_path / "graph_analysis_results_size_2_nbatch_1.h5"
    with h5py.File(path, "w") as h5:
        group = h5.create_group("subgraph_3")
        pca = group.create_group("pca_df")
        for name in ("PC1", "PC2", "PC3"):
            pca.create_dataset(name, data=np.zeros(4, np.float32))
        pca.create_dataset("tokens", data=np.array([b"a"] * 4))
        group.create_dataset("all_graph_feature_acts", data=np.zeros((5, 2), np.float32))
    with pytest.raises(saecooc.FormatError) as err:
        saecooc.read_group(path, 3)
    assert str(path) in str(err.value) and "subgraph_3" in str(err.value)
    assert "disagree on the number of examples: {'pca_df': 4, 'all_graph_feature_acts': 5}" in str(err.value)
    with pytest.raises(saecooc.MissingFileError, match="no group 'subgraph_4'"):
        saecooc.read_group(path, 4)


def test_an_unknown_run_lists_the_runs(tmp_path):
    folder = run_folder(tmp_path)
    np.savez_compressed(jaccard_path(folder), np.eye(2, dtype=np.float32))
    results = saecooc.open(tmp_path / "results")
    with pytest.raises(saecooc.NoMatchError, match="(?s)no run matches sae='other'.*sae='sae'"):
        results.run(sae="other")
    with pytest.raises(saecooc.MissingFileError, match="expected a results folder"):
        saecooc.open(tmp_path / "nowhere")


def test_subgraph_graph_says_networkx_is_optional(tmp_path, monkeypatch):
    subgraph = saecooc.Subgraph(0, 1.5, np.array([0]), pd.DataFrame({"node_id": [0]}),
                                pd.DataFrame(columns=["source", "target", "weight"]), None, tmp_path)
    monkeypatch.setitem(sys.modules, "networkx", None)
    with pytest.raises(ImportError, match="pip install networkx"):
        subgraph.graph()


def test_pca_groups_must_match_the_node_table(tmp_path):
    folder = run_folder(tmp_path)
    (folder / "dataframes").mkdir()
    table = folder / "dataframes" / "node_info_df_1_5.csv"
    pd.DataFrame({"node_id": [4, 2, 7], "subgraph_id": [0, 0, 1], "subgraph_size": [2, 2, 1]}).to_csv(table, index=False)
    pca_dir = folder / "sae_pca_for_streamlit"
    pca_dir.mkdir()
    path = pca_dir / "graph_analysis_results_size_2_nbatch_1.h5"
    with h5py.File(path, "w") as h5:
        for sid, columns in ((0, 3), (5, 2)):
            group = h5.create_group(f"subgraph_{sid}")
            group.create_dataset("all_graph_feature_acts", data=np.zeros((4, columns), np.float32))
    run = saecooc.open_run(folder)
    with pytest.raises(saecooc.FormatError) as err:
        run.pca_subgraph(0)
    assert str(path) in str(err.value) and "3 columns, but the subgraph has 2 latents ([4, 2])" in str(err.value)
    with pytest.raises(saecooc.FormatError) as err:
        run.pca_subgraph(5)
    assert str(path) in str(err.value) and f"no subgraph of {table}" in str(err.value)
    with pytest.raises(saecooc.NoMatchError, match="no PCA file holds subgraph 6"):
        run.pca_subgraph(6)
    with pytest.raises(saecooc.NoMatchError, match="(?s)no PCA file of size 3.*size 2, no cap, n_batches 1"):
        run.pca(3)


def test_pca_files_of_several_runs_need_choosing(tmp_path):
    folder = run_folder(tmp_path)
    pca_dir = folder / "sae_pca_for_streamlit"
    pca_dir.mkdir(parents=True)
    for name, rows in (("1000cap_graph_analysis_results_size_2_nbatch_10.h5", 3),
                       ("graph_analysis_results_size_2_nbatch_20.h5", 5)):
        with h5py.File(pca_dir / name, "w") as h5:
            h5.create_group("subgraph_1").create_dataset("all_graph_feature_acts", data=np.zeros((rows, 2), np.float32))
    run = saecooc.open_run(folder)
    with pytest.raises(saecooc.NoMatchError, match="2 pca runs for size 2; pass max_examples= or n_batches="):
        run.pca(2)
    with pytest.raises(saecooc.NoMatchError, match="subgraph 1 is in the files of 2 pca runs"):
        run.pca_subgraph(1)
    assert run.pca(2, max_examples=1000)[1].graph_feature_acts.shape == (3, 2)
    assert run.pca_subgraph(1, n_batches=20).graph_feature_acts.shape == (5, 2)
