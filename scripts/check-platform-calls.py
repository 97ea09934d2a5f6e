#!/usr/bin/env python3
"""Checks that every Linux-only call is gated (run by `make lint`).

saecooc builds for Linux and macOS (x86-64 and ARM). A call that only Linux has must sit in an
item (function, block, statement, module) under `#[cfg(...)]` whose `target_os` names only
linux/android and that has no `not(...)`, with a portable fallback beside it; a file may gate
itself with `#![cfg(target_os = "linux")]`. What counts as Linux-only:
- the `libc` items that exist on Linux but not on macOS (syncfs, mallopt, epoll, ...; the list
  below), and `std::os::linux`;
- in src/ only, the Linux kernel's files (`"/proc...`, `"/sys/...`): they compile everywhere
  but mean nothing elsewhere. Tests may read them (the tests run on Linux).
`cfg!(...)` in an `if` does not count: both branches still compile.
This is a quick guard; CI's cross-compiles (`.ci/run`, "cross-compile") are the real check.

Usage: check-platform-calls.py             check src/ and tests/ (not tests/fixtures/)
       check-platform-calls.py FILE...     check these files (as src/)
       check-platform-calls.py --self-test check tests/fixtures/platform-calls/: exactly the
                                           lines marked `// ungated` must be reported
Prints each violation as FILE:LINE and exits 1 if there is any.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "platform-calls"

LINUX_ONLY_LIBC = (
    r"syncfs|sync_file_range|mallopt|malloc_trim|M_MMAP_THRESHOLD|M_TRIM_THRESHOLD|M_ARENA_MAX"
    r"|prctl|PR_[A-Z_]+|epoll_\w+|EPOLL\w+|inotify_\w+|eventfd|signalfd|timerfd_\w+"
    r"|memfd_create|fallocate|posix_fadvise|POSIX_FADV_\w+|sched_setaffinity|sched_getaffinity"
    r"|cpu_set_t|CPU_SET|CPU_ZERO|CPU_ISSET|statx|splice|copy_file_range|pipe2|accept4|dup3"
    r"|gettid|SYS_\w+|sysinfo|mremap|getrandom|O_DIRECT|O_TMPFILE|O_PATH|MAP_POPULATE"
    r"|MAP_HUGETLB|MADV_HUGEPAGE|MADV_DONTDUMP|RLIMIT_RTPRIO|SOCK_CLOEXEC|SOCK_NONBLOCK"
)
ALWAYS = re.compile(r"\blibc::(?:" + LINUX_ONLY_LIBC + r")\b|\bstd::os::(?:linux|android)\b")
KERNEL_FILES = re.compile(r"\"/(?:proc|sys)(?:/|\")")
CFG = re.compile(r"#!?\[cfg\((.*?)\)\]", re.S)
LINUXES = {"linux", "android"}


def blank(text: str, keep_strings: bool) -> str:
    """`text` with comments (and, unless `keep_strings`, string and char literals' contents)
    replaced by spaces; newlines and offsets are kept."""
    out = list(text)
    i, n = 0, len(text)

    def wipe(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            wipe(i, j)
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            wipe(i, j)
            i = j
        elif (m := re.compile(r'b?r(#*)"').match(text, i)) and (i == 0 or not text[i - 1].isalnum()):
            end = text.find('"' + m.group(1), m.end())
            end = n if end < 0 else end
            if not keep_strings:
                wipe(m.end(), end)
            i = end + 1 + len(m.group(1))
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if not keep_strings:
                wipe(i + 1, j)
            i = j + 1
        elif c == "'":
            m = re.compile(r"'(?:\\[^']{1,10}|[^\\'])'").match(text, i)
            if m:
                wipe(i + 1, m.end() - 1)
                i = m.end()
            else:
                i += 1  # a lifetime
        else:
            i += 1
    return "".join(out)


def linux_only(predicate: str) -> bool:
    """Whether a cfg predicate holds only on Linux (or Android)."""
    oses = re.findall(r'target_os\s*=\s*"([^"]*)"', predicate)
    return bool(oses) and set(oses) <= LINUXES and "not(" not in predicate


def gated_header(header: str) -> bool:
    """Whether the text before an item or statement carries a Linux-only `#[cfg]`."""
    return any(linux_only(p) for p in CFG.findall(header))


def header_before(skeleton: str, code: str, pos: int) -> str:
    """The text of the item or statement that starts before `pos`: back to the previous `;`,
    `{` or `}`."""
    k = max(skeleton.rfind(ch, 0, pos) for ch in ";{}")
    return code[k + 1 : pos]


def enclosing_braces(skeleton: str, pos: int) -> list:
    """Offsets of the `{` that enclose `pos`, innermost first."""
    stack = []
    for k, ch in enumerate(skeleton[:pos]):
        if ch == "{":
            stack.append(k)
        elif ch == "}" and stack:
            stack.pop()
    return stack[::-1]


def is_gated(skeleton: str, code: str, pos: int) -> bool:
    if any(linux_only(p) for p in re.findall(r"#!\[cfg\((.*?)\)\]", code, re.S)):
        return True
    starts = [pos] + enclosing_braces(skeleton, pos)
    return any(gated_header(header_before(skeleton, code, s)) for s in starts)


def violations(path: pathlib.Path, in_src: bool) -> list:
    text = path.read_text(encoding="utf-8")
    code = blank(text, keep_strings=True)
    skeleton = blank(text, keep_strings=False)
    # Symbols are looked for outside strings, the kernel's files inside them.
    searches = [(ALWAYS, skeleton)] + ([(KERNEL_FILES, code)] if in_src else [])
    found = []
    for pattern, text in searches:
        for m in pattern.finditer(text):
            if not is_gated(skeleton, code, m.start()):
                found.append((code.count("\n", 0, m.start()) + 1, m.group(0)))
    return sorted(set(found))


def report(files) -> int:
    bad = 0
    for path, in_src in files:
        for line, what in violations(path, in_src):
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}: "
                  f"`{what}` is Linux-only: put it under #[cfg(target_os = \"linux\")] with a "
                  "fallback for the other targets")
            bad += 1
    return bad


def self_test() -> int:
    """The fixtures mark with `// ungated` exactly the lines the check must report."""
    failures = 0
    fixtures = sorted(FIXTURES.glob("*.rs"))
    assert fixtures, f"no fixtures in {FIXTURES}"
    for path in fixtures:
        lines = path.read_text(encoding="utf-8").splitlines()
        expected = {k + 1 for k, l in enumerate(lines) if l.rstrip().endswith("// ungated")}
        got = {line for line, _ in violations(path, in_src=True)}
        if got != expected:
            print(f"self-test: {path.name}: reported lines {sorted(got)}, expected {sorted(expected)}")
            failures += 1
    print(f"check-platform-calls self-test: {len(fixtures)} fixtures, "
          f"{'all as expected' if not failures else f'{failures} wrong'}")
    return failures


def main() -> int:
    args = sys.argv[1:]
    if args == ["--self-test"]:
        return 1 if self_test() else 0
    if args:
        files = [(pathlib.Path(a).resolve(), True) for a in args]
    else:
        files = [(p, True) for p in sorted((ROOT / "src").rglob("*.rs"))] + [
            (p, False) for p in sorted((ROOT / "tests").rglob("*.rs")) if FIXTURES not in p.parents
        ]
    bad = report(files)
    if bad:
        print(f"{bad} ungated Linux-only call(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
