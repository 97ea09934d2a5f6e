#!/usr/bin/env bash
# Prints the path of a cmake that can build the bundled HDF5 (it needs CMake 3.26 or newer), for
# `make` builds with HDF5=static (the default when no system HDF5 is found):
#   1. $CMAKE, if set (it must be new enough);
#   2. else `cmake` on PATH, if new enough;
#   3. else cmake from PyPI, installed once into the virtual environment given as $1 (.venv).
# Usage: scripts/ensure-cmake.sh VENV_DIR
set -euo pipefail
MIN_MAJOR=3
MIN_MINOR=26
VENV=${1:?usage: scripts/ensure-cmake.sh VENV_DIR}

# True when "$1 --version" reports at least $MIN_MAJOR.$MIN_MINOR.
new_enough() {
  local version major minor
  version=$("$1" --version 2>/dev/null | sed -n '1s/^cmake version \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p') || return 1
  [ -n "$version" ] || return 1
  major=${version%%.*}
  minor=${version#*.}
  [ "$major" -gt "$MIN_MAJOR" ] || { [ "$major" -eq "$MIN_MAJOR" ] && [ "$minor" -ge "$MIN_MINOR" ]; }
}

fail() {
  echo "error: $1" >&2
  echo "The static HDF5 build needs CMake $MIN_MAJOR.$MIN_MINOR+. Install one (apt-get install cmake," >&2
  echo "or pip install cmake) and put it on PATH or set CMAKE=/path/to/cmake; or install the" >&2
  echo "system HDF5 (Debian/Ubuntu: libhdf5-dev) and build with HDF5=system." >&2
  exit 1
}

if [ -n "${CMAKE:-}" ]; then
  new_enough "$CMAKE" || fail "CMAKE=$CMAKE is not a cmake $MIN_MAJOR.$MIN_MINOR or newer"
  echo "$CMAKE"
  exit 0
fi

on_path=$(command -v cmake || true)
if [ -n "$on_path" ] && new_enough "$on_path"; then
  echo "$on_path"
  exit 0
fi

venv_cmake="$VENV/bin/cmake"
if [ -x "$venv_cmake" ] && new_enough "$venv_cmake"; then
  echo "$venv_cmake"
  exit 0
fi

echo "no cmake $MIN_MAJOR.$MIN_MINOR+ on PATH: installing cmake from PyPI into $VENV" >&2
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" >&2 || fail "could not create the virtual environment $VENV (Debian/Ubuntu: apt-get install python3-venv)"
fi
"$VENV/bin/python" -m pip install --quiet "cmake>=$MIN_MAJOR.$MIN_MINOR,<5" >&2 ||
  fail "pip could not install cmake from PyPI into $VENV"
new_enough "$venv_cmake" || fail "$venv_cmake, just installed, does not run"
echo "$venv_cmake"
