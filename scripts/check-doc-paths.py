#!/usr/bin/env python3
"""Checks that every repository path the documentation names exists (run by `make lint`).

Scans README.md and docs/*.md for
- paths in backticks (code spans and fenced blocks) that start with a repository folder
  (src/, tests/, scripts/, configs/, docs/, assets/, .ci/, benches/) or are a top-level file
  (Makefile, Cargo.toml, build.rs), taken from the repository root;
- targets of markdown links and images, taken from the folder of the document (URLs and
  in-page anchors are skipped).
A `{placeholder}` or `*` in a path matches any name. Outputs such as results/, site/ or demo/
are not repository paths and are not checked.

Prints `file:line: missing path` for each one that does not exist and exits 1 if there is any.
Usage: check-doc-paths.py [ROOT] (default: the repository holding this script).
"""
import glob
import pathlib
import re
import sys

REPO_FOLDERS = ("src/", "tests/", "scripts/", "configs/", "docs/", "assets/", ".ci/", "benches/")
TOP_LEVEL_FILES = {"Makefile", "Cargo.toml", "build.rs"}
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
PLACEHOLDER = re.compile(r"\{[^}/]*\}")
URL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def documents(root: pathlib.Path) -> list:
    return [root / "README.md"] + sorted((root / "docs").glob("*.md"))


def split_fences(text: str):
    """The text with fenced blocks blanked (line numbers kept), and the fenced lines."""
    kept, fenced, inside = [], [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            inside = not inside
            kept.append("")
        elif inside:
            fenced.append((number, line))
            kept.append("")
        else:
            kept.append(line)
    return "\n".join(kept), fenced


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def repo_path(token: str):
    """The repository path a word of code names, or None."""
    token = token.strip("'\"()[],;:")
    token = token.rstrip(".")
    if token in TOP_LEVEL_FILES:
        return token
    if token.startswith(REPO_FOLDERS) and "://" not in token:
        return token
    return None


def code_paths(text: str):
    """(line, path) for each repository path in code spans and fenced blocks."""
    prose, fenced = split_fences(text)
    for match in CODE_SPAN.finditer(prose):
        for word in match.group(2).split():
            path = repo_path(word)
            if path:
                yield line_of(prose, match.start(2)), path
    for number, line in fenced:
        for word in line.split():
            path = repo_path(word)
            if path:
                yield number, path


def link_targets(text: str):
    """(line, target) for each relative link or image target outside code."""
    prose, _ = split_fences(text)
    prose = CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), prose)
    for match in LINK.finditer(prose):
        target = match.group(1).split("#", 1)[0]
        if target and not URL.match(target):
            yield line_of(prose, match.start(1)), target


def exists(base: pathlib.Path, path: str) -> bool:
    pattern = PLACEHOLDER.sub("*", path)
    if "*" in pattern or "?" in pattern:
        return bool(glob.glob(str(base / pattern)))
    return (base / path).exists()


def check(root: pathlib.Path) -> list:
    missing = []
    for doc in documents(root):
        text = doc.read_text(encoding="utf-8")
        name = doc.relative_to(root)
        found = [(line, path, root) for line, path in code_paths(text)]
        found += [(line, target, doc.parent) for line, target in link_targets(text)]
        for line, path, base in sorted(found, key=lambda f: f[0]):
            if not exists(base, path):
                missing.append(f"{name}:{line}: missing path {path}")
    return missing


def main() -> int:
    default = pathlib.Path(__file__).resolve().parent.parent
    root = pathlib.Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else default
    missing = check(root)
    for problem in missing:
        print(problem)
    if missing:
        print(f"{len(missing)} path(s) named in the docs do not exist", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
