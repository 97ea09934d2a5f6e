"""The exceptions the package raises. Each message names the file (or folder) involved and
what was expected there."""

from __future__ import annotations


class SaecoocError(Exception):
    """Base class of every error this package raises."""


class FormatError(SaecoocError, ValueError):
    """A file exists but does not hold what saecooc or the original pipeline writes there."""


class MissingFileError(SaecoocError, FileNotFoundError):
    """A file the request needs does not exist; the message names the path looked for."""


class NoMatchError(SaecoocError, LookupError):
    """A request (a run, a threshold, a subgraph, a PCA file) matched nothing, or more than one
    thing; the message lists the candidates."""


class CommandError(SaecoocError, RuntimeError):
    """The saecooc binary exited with a non-zero status.

    Attributes: ``returncode``, ``args`` (the command line) and ``stderr_tail`` (the last lines
    it wrote on stderr).
    """

    def __init__(self, args: list, returncode: int, stderr_tail: str):
        self.args_list = list(args)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        command = " ".join(str(a) for a in args[:2])
        super().__init__(
            f"{command} failed with exit code {returncode}"
            + (f":\n{stderr_tail}" if stderr_tail else " (nothing on stderr)")
        )
