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


class Chunks:
    """A pipe stand-in whose reads return the given chunks."""

    def __init__(self, chunks):
        self.chunks = list(chunks)

    def read1(self, _size):
        return self.chunks.pop(0) if self.chunks else b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_output_split_inside_a_character_passes_through_whole():
    import io

    from saecooc import _cli

    text = "caf\u00e9 \u2192 done\n".encode()
    sink, kept = io.StringIO(), []
    _cli._pump(Chunks([text[:4], text[4:7], text[7:]]), sink, kept)
    assert sink.getvalue() == "caf\u00e9 \u2192 done\n" == "".join(kept)


def test_an_interrupted_run_interrupts_the_binary():
    import subprocess

    from saecooc import _cli

    process = subprocess.Popen(["sleep", "30"])
    _cli._stop(process)
    assert process.returncode is not None and process.returncode != 0
