"""Names in a results folder, as the original pipeline and saecooc write them (see
docs/formats.md, "Results folder layout")."""

from __future__ import annotations

import re


def threshold_tag(threshold: float) -> str:
    """The `{ts}` of file names: Python's ``str(float(t))`` with ``.`` replaced by ``_``
    (``1.5`` → ``1_5``, ``0`` → ``0_0``, ``1e-05`` → ``1e-05``)."""
    return str(float(threshold)).replace(".", "_")


def threshold_from_tag(tag: str):
    """The threshold a `{ts}` stands for (``_`` back to ``.``), or None when it is no number."""
    try:
        return float(tag.replace("_", "."))
    except ValueError:
        return None


def neat_sae_id(sae_id: str) -> str:
    """An SAE's folder name: its id with every ``.`` and ``/`` replaced by ``_``."""
    return sae_id.replace(".", "_").replace("/", "_")


def path_component(name: str) -> str:
    """The folder name of a model or release name: ``/`` becomes ``%2F``, and a ``%`` that
    would read back as the start of ``%2F`` or ``%25`` becomes ``%25``."""
    return re.sub(r"/|%(?=2F|25)", lambda m: "%2F" if m.group() == "/" else "%25", name)


def name_from_component(component: str) -> str:
    """The model or release name a folder written by :func:`path_component` stands for."""
    return re.sub(r"%2F|%25", lambda m: "/" if m.group() == "%2F" else "%", component)
