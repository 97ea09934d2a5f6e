"""Calling the ``saecooc`` binary from Python."""

from __future__ import annotations

import codecs
import collections
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path

from ._errors import CommandError, MissingFileError

BINARY_ENV = "SAECOOC_BIN"
STDERR_TAIL_LINES = 40


def binary() -> Path:
    """The ``saecooc`` binary this package calls: ``$SAECOOC_BIN`` when set, else the one in
    this Python environment's scripts folder (where the wheel installs it), else the first on
    ``PATH``."""
    override = os.environ.get(BINARY_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise MissingFileError(f"{path}: no such file (named by ${BINARY_ENV})")
        return path
    name = "saecooc.exe" if os.name == "nt" else "saecooc"
    scripts = Path(sysconfig.get_path("scripts")) / name
    if scripts.is_file():
        return scripts
    found = shutil.which("saecooc")
    if found:
        return Path(found)
    raise MissingFileError(
        f"no saecooc binary: not in {scripts.parent} (this Python's scripts folder) nor on PATH, "
        f"and ${BINARY_ENV} is unset; install the wheel (pip install saecooc) or set ${BINARY_ENV}"
    )


def command_line(command: str, config=None, **overrides) -> list:
    """The argument list of ``saecooc {command}``: ``config`` becomes ``--config``, and each
    override a flag, ``_`` written ``-``: ``True`` → the bare flag, ``False``/``None`` → left
    out, a list or tuple → the flag once per item, anything else → the flag and ``str(value)``
    (``sae_id=["a", "b"]`` → ``--sae-id a --sae-id b``, ``resume=True`` → ``--resume``)."""
    args = [str(binary()), command]
    if config is not None:
        args += ["--config", os.fspath(config)]
    for key, value in overrides.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                args += [flag, _text(item)]
        else:
            args += [flag, _text(value)]
    return args


def run(command: str, config=None, *, cwd=None, **overrides) -> subprocess.CompletedProcess:
    """Runs ``saecooc {command}`` (see :func:`command_line` for how ``config`` and the
    overrides become flags), passing its output through to this process's stdout and stderr
    as it comes (so progress shows in a terminal or a notebook). Returns the
    ``subprocess.CompletedProcess`` with ``stdout`` and ``stderr`` as text; a non-zero exit
    raises :class:`CommandError` with the exit code and the last lines of stderr. Example::

        saecooc.run("cooc", config="configs/tiny.toml", sae_id=["blocks.1.hook_resid_pre"], resume=True)
    """
    args = command_line(command, config, **overrides)
    process = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = [], []
    pumps = [
        threading.Thread(target=_pump, args=(process.stdout, sys.stdout, stdout), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, sys.stderr, stderr), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    try:
        returncode = process.wait()
    except KeyboardInterrupt:
        _stop(process)
        raise
    for pump in pumps:
        pump.join()
    out, err = "".join(stdout), "".join(stderr)
    if returncode != 0:
        tail = "\n".join(collections.deque(err.splitlines(), maxlen=STDERR_TAIL_LINES))
        raise CommandError(args, returncode, tail)
    return subprocess.CompletedProcess(args, returncode, out, err)


def _stop(process: subprocess.Popen) -> None:
    """Interrupts the binary as Ctrl-C in a terminal would (a notebook's interrupt reaches only
    Python), then kills it if it has not stopped within 10 seconds."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _pump(source, sink, kept: list) -> None:
    """Copies ``source`` (a pipe) to ``sink`` as it arrives, keeping the text in ``kept``."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    with source:
        for chunk in iter(lambda: source.read1(8192), b""):
            _write(decoder.decode(chunk), sink, kept)
        _write(decoder.decode(b"", final=True), sink, kept)


def _write(text: str, sink, kept: list) -> None:
    if text:
        kept.append(text)
        sink.write(text)
        sink.flush()


def _text(value) -> str:
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)
