#!/usr/bin/env bash
# Checks the wheel `make wheel` wrote to dist/ as a user would get it: installs it into a fresh
# virtual environment holding nothing else from this checkout (its dependencies come from PyPI),
# then
#   1. runs `saecooc --version` from that environment's PATH;
#   2. checks that its binary is byte for byte the release binary `make build` made;
#   3. runs the package's tests (python/tests) against the installed package and binary
#      (`make pytest PYTEST_PACKAGE=installed`);
#   4. executes the notebooks on the tiny synthetic world (notebooks/run_notebooks.py) and checks
#      that each wrote its figures (into artifacts/notebooks/).
# Usage: scripts/wheel-check.sh [VENV_DIR]   (default: a temporary folder, removed afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
release_bin="${CARGO_TARGET_DIR:-$HOME/.cache/saecooc/target}/release/saecooc"

shopt -s nullglob
wheels=(dist/saecooc-*.whl)
[ "${#wheels[@]}" -eq 1 ] || { echo "error: expected one dist/saecooc-*.whl (run make wheel), found ${#wheels[@]}" >&2; exit 1; }
wheel=$repo/${wheels[0]}

started=$(date +%s)
# Prints how long the check has taken so far, after what it just did.
took() { echo "wheel-check: $1 after $(( $(date +%s) - started )) s"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
venv=${1:-$work/venv}
rm -rf "$venv"
python3 -m venv "$venv"
# The wheel with its `graph` extra (networkx, for Subgraph.graph()'s test); the notebooks' own
# needs (matplotlib, the Jupyter kernel and client) are not the package's.
"$venv/bin/pip" install --quiet "$wheel[graph]" pytest matplotlib nbclient nbformat ipykernel
took "installed the wheel and its dependencies"

# Nothing may come from the checkout: no SAECOOC_BIN override, the package and the binary are
# the environment's own.
unset SAECOOC_BIN
export PATH="$venv/bin:$PATH"
cd "$work"
echo "saecooc --version (from $venv/bin): $(saecooc --version)"
"$venv/bin/python" - "$venv" <<'EOF'
import os, sys, saecooc
venv = os.path.realpath(sys.argv[1])
where = {"package": saecooc.__file__, "binary": str(saecooc.binary())}
for what, path in where.items():
    if not os.path.realpath(path).startswith(venv + os.sep):
        sys.exit(f"error: the {what} is {path}, not the virtual environment's ({venv})")
print(f"package {where['package']}, binary {where['binary']}")
EOF
if ! cmp "$venv/bin/saecooc" "$release_bin"; then
  echo "error: the wheel's binary ($(saecooc --version)) differs from make build's," >&2
  echo "$release_bin ($("$release_bin" --version))" >&2
  exit 1
fi
echo "the wheel's binary is $release_bin byte for byte (sha256 $(sha256sum <"$release_bin" | cut -c1-16)…)"

make -C "$repo" --no-print-directory pytest PYTEST_PYTHON="$venv/bin/python" PYTEST_PACKAGE=installed
took "python/tests passed"

"$venv/bin/python" "$repo/notebooks/run_notebooks.py" --out "$repo/artifacts/notebooks"
took "the notebooks ran"
