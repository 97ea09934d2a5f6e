"""Calling the binary: which one, the flags overrides become, failures."""

from __future__ import annotations

import stat
import sysconfig
from pathlib import Path

import pytest

import saecooc


def test_binary_honours_saecooc_bin(monkeypatch, tmp_path):
    fake = tmp_path / "saecooc"
    fake.write_text("#!/bin/sh\n")
    monkeypatch.setenv("SAECOOC_BIN", str(fake))
    assert saecooc.binary() == fake
    monkeypatch.setenv("SAECOOC_BIN", str(tmp_path / "missing"))
    with pytest.raises(saecooc.MissingFileError, match="SAECOOC_BIN"):
        saecooc.binary()


def test_binary_without_override_is_the_scripts_one_else_on_path(monkeypatch, tmp_path):
    on_path = tmp_path / "saecooc"
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(on_path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.delenv("SAECOOC_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    beside_python = Path(sysconfig.get_path("scripts")) / "saecooc"
    assert saecooc.binary() == (beside_python if beside_python.is_file() else on_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    if not beside_python.is_file():
        with pytest.raises(saecooc.MissingFileError, match="nor on PATH"):
            saecooc.binary()


def test_overrides_become_flags(tmp_path):
    args = saecooc.command_line(
        "cooc", config=tmp_path / "run.toml", sae_id=["a.b", "c"], resume=True, replace=False,
        shard=None, checkpoint_every=5, results_dir=tmp_path / "r",
    )
    assert args[0] == str(saecooc.binary())
    assert args[1:] == [
        "cooc", "--config", str(tmp_path / "run.toml"), "--sae-id", "a.b", "--sae-id", "c",
        "--resume", "--checkpoint-every", "5", "--results-dir", str(tmp_path / "r"),
    ]


def test_version_runs_and_its_output_comes_back():
    done = saecooc.run("--version")
    assert done.returncode == 0 and done.stdout.startswith("saecooc ")


def test_a_failing_command_raises_with_the_exit_code_and_stderr(tmp_path, capfd):
    missing = tmp_path / "missing.toml"
    with pytest.raises(saecooc.CommandError) as err:
        saecooc.run("cooc", config=missing)
    assert err.value.returncode != 0
    assert str(missing) in err.value.stderr_tail
    assert f"exit code {err.value.returncode}" in str(err.value)
    # what the binary said was also passed through to stderr as it came
    assert str(missing) in capfd.readouterr().err
