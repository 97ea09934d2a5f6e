"""The CSV tables of a results folder: node tables (``dataframes/node_info_df_{ts}.csv``) and
``edge_thresholds.csv``, as ``graphs`` and the original pipeline write them."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from ._errors import FormatError, MissingFileError

NODE_TABLE_COLUMNS = ("node_id", "subgraph_id", "subgraph_size")
EDGE_THRESHOLD_COLUMNS = ("activation_threshold", "edge_threshold")


def read_csv(path, what: str, required=()) -> pd.DataFrame:
    """``pandas.read_csv(path)``, with errors that name the file: missing, unreadable, or
    lacking one of the ``required`` columns."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file (expected {what})")
    try:
        table = pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise FormatError(f"{path}: not a readable CSV file (expected {what}): {err}") from err
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise FormatError(
            f"{path}: expected {what} with the columns {list(required)}; missing {missing} "
            f"(found {list(table.columns)})"
        )
    return table


def read_node_table(path, parse_tokens: bool = True) -> pd.DataFrame:
    """A node table: one row per latent. With ``parse_tokens`` the ``top_10_tokens`` column
    (Python list reprs) becomes lists of strings."""
    table = read_csv(path, "a node table", NODE_TABLE_COLUMNS)
    for column in NODE_TABLE_COLUMNS:
        if not pd.api.types.is_integer_dtype(table[column]):
            raise FormatError(
                f"{path}: expected integers in the node table's column {column!r}; found "
                f"{table[column].dtype}"
            )
    if parse_tokens and "top_10_tokens" in table.columns:
        table["top_10_tokens"] = [
            _token_list(value, path, node)
            for value, node in zip(table["top_10_tokens"], table["node_id"])
        ]
    return table


def _token_list(value, path, node):
    if not isinstance(value, str):
        return []
    try:
        tokens = ast.literal_eval(value)
    except (ValueError, SyntaxError) as err:
        raise FormatError(
            f"{path}: top_10_tokens of node {node} is not a Python list repr: {value!r}"
        ) from err
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise FormatError(
            f"{path}: top_10_tokens of node {node} is not a list of strings: {value!r}"
        )
    return tokens


def read_edge_thresholds(path) -> pd.DataFrame:
    """``edge_thresholds.csv``: ``activation_threshold, edge_threshold``, one row per threshold."""
    return read_csv(path, "the edge thresholds", EDGE_THRESHOLD_COLUMNS)
