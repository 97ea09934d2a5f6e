#!/usr/bin/env bash
# Cross-compiles saecooc for the other targets researchers run it on (`make cross-check`, CI):
#   setup   Rust targets (rustup), gcc-aarch64-linux-gnu and qemu-user-static (apt), zig and
#           cargo-zigbuild (PyPI, pinned) in ~/.cache/saecooc/cross-venv
#   linux   the release binary for aarch64-unknown-linux-gnu with the bundled HDF5 (hdf5-static,
#           cross-built with CMake), zstd and ring (TLS) built by gcc-aarch64-linux-gnu, into
#           $CARGO_TARGET_DIR-aarch64
#   run     that binary under qemu-user on the tiny world against SAECOOC_BIN
#           (scripts/arm-check.sh)
#   macos   `cargo clippy --all-targets` (a `cargo check` with clippy's lints) for
#           aarch64-apple-darwin and x86_64-apple-darwin, warnings denied, C code (zstd, ring) compiled by zig against its macOS headers, HDF5
#           in its system-library mode (HDF5_DIR: Debian's libhdf5-dev standing in for
#           Homebrew's), into $CARGO_TARGET_DIR-macos. Nothing is linked: there is no macOS
#           SDK here.
#   all     the four in this order (default)
# Each step prints the seconds it took. CMAKE: CMake 3.26+ for the bundled HDF5.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/saecooc/target}"
venv="$HOME/.cache/saecooc/cross-venv"
linux=aarch64-unknown-linux-gnu
macs=(aarch64-apple-darwin x86_64-apple-darwin)
arm_bin="$target_dir-aarch64/$linux/release/saecooc"

setup() {
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if ! { command -v aarch64-linux-gnu-gcc && command -v qemu-aarch64-static; } >/dev/null; then
    $sudo apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user-static
  fi
  rustup target add "$linux" "${macs[@]}"
  if ! [ -x "$venv/bin/cargo-zigbuild" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet ziglang==0.17.1 cargo-zigbuild==0.24.1
  fi
}

build_linux() {
  CARGO_TARGET_DIR="$target_dir-aarch64" \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++ \
    AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    cargo build --release --locked --features hdf5-static --target "$linux"
  echo "cross-check: built $arm_bin"
}

run_linux() {
  SAECOOC_ARM_BIN="$arm_bin" scripts/arm-check.sh
}

check_macos() {
  # hdf5-metno-sys in system mode reads the headers' version and loads the library to compare:
  # the system HDF5 of this machine (Debian's libhdf5-dev) stands in for Homebrew's.
  local hdf5=/usr/lib/x86_64-linux-gnu/hdf5/serial
  [ -f "$hdf5/include/H5pubconf.h" ] ||
    { echo "cross-check: no HDF5 headers in $hdf5 (apt-get install libhdf5-dev)" >&2; exit 1; }
  local target
  for target in "${macs[@]}"; do
    PATH="$venv/bin:$PATH" CARGO_TARGET_DIR="$target_dir-macos" HDF5_DIR="$hdf5" \
      RUSTFLAGS="-D warnings" cargo-zigbuild clippy --locked --all-targets --target "$target" -- -D warnings
    echo "cross-check: $target checked"
  done
}

timed() {
  local start=$SECONDS
  "$@"
  echo "cross-check: $1 took $((SECONDS - start)) s"
}

case "${1:-all}" in
  setup) timed setup ;;
  linux) timed build_linux ;;
  run) timed run_linux ;;
  macos) timed check_macos ;;
  all) timed setup && timed build_linux && timed run_linux && timed check_macos ;;
  *) echo "usage: $0 [setup|linux|run|macos|all]" >&2; exit 2 ;;
esac
