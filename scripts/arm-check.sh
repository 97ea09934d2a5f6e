#!/usr/bin/env bash
# The aarch64 Linux binary, run under qemu-user, counts the tiny world as this machine's binary
# does: `saecooc synth` (native) writes the world, both binaries run `saecooc cooc` on it with
# configs/tiny.toml's thresholds (0.0 and 1.5) and each threshold + 1e-5, and
# tests/python/compare_cross_counts.py compares the counts. Equal counts pass; a count that
# differs must be explained by activations within 1e-5 of the threshold (how many tokens of
# each latent fall between t and t + 1e-5, from the +1e-5 counts of either run).
#
# SAECOOC_BIN: the native binary; SAECOOC_ARM_BIN: the aarch64 one; SAECOOC_PYTHON: a Python
# with numpy. Needs qemu-aarch64-static (Debian: qemu-user-static) and the aarch64 C library
# (Debian: libc6-arm64-cross, which gcc-aarch64-linux-gnu brings). Where either is missing it
# prints `SKIPPED …` and exits 0, unless SAECOOC_REQUIRE_ARM=1 (CI), where it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

skip() {
  if [ "${SAECOOC_REQUIRE_ARM:-0}" = 1 ]; then
    echo "arm-check: FAILED: $* (SAECOOC_REQUIRE_ARM=1)" >&2
    exit 1
  fi
  echo "SKIPPED arm check: $*"
  exit 0
}
fail() {
  echo "arm-check: FAILED: $*" >&2
  exit 1
}

qemu="$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)"
[ -n "$qemu" ] || skip "qemu-aarch64-static is not installed (apt-get install qemu-user-static)"
sysroot="${SAECOOC_ARM_SYSROOT:-/usr/aarch64-linux-gnu}"
[ -e "$sysroot/lib/ld-linux-aarch64.so.1" ] ||
  skip "no aarch64 C library in $sysroot (apt-get install libc6-arm64-cross)"
native="$(realpath "${SAECOOC_BIN:?set SAECOOC_BIN to the native saecooc binary}")"
arm="$(realpath "${SAECOOC_ARM_BIN:?set SAECOOC_ARM_BIN to the aarch64 saecooc binary}")"
python="${SAECOOC_PYTHON:-python3}"
[ -x "$native" ] || fail "no native binary at $native"
[ -x "$arm" ] || fail "no aarch64 binary at $arm"
# ELF e_machine (offset 18) 0xb7: AArch64.
[ "$(od -An -tx1 -j18 -N2 "$arm" | tr -d ' ')" = b700 ] || fail "$arm is not an aarch64 executable"

work="$(mktemp -d /tmp/saecooc-arm-check.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cd "$work"
"$native" --quiet synth --out demo/tiny
# configs/tiny.toml with each threshold t and t + 1e-5.
sed 's/^activation_thresholds = .*/activation_thresholds = [0.0, 0.00001, 1.5, 1.50001]/' \
  "$repo/configs/tiny.toml" >tiny-cross.toml
grep -q '1.50001' tiny-cross.toml || fail "configs/tiny.toml has no activation_thresholds line"

start=$(date +%s)
"$native" --quiet cooc --config tiny-cross.toml --results-dir native
native_s=$(($(date +%s) - start))
start=$(date +%s)
QEMU_LD_PREFIX="$sysroot" "$qemu" "$arm" --quiet cooc --config tiny-cross.toml --results-dir arm
arm_s=$(($(date +%s) - start))
echo "arm-check: cooc on the tiny world: native ${native_s} s, aarch64 under $(basename "$qemu") ${arm_s} s"

folder=synthetic-gpt2/synthetic/blocks_1_hook_resid_pre/n_batches_8
"$python" "$repo/tests/python/compare_cross_counts.py" "native/$folder" "arm/$folder" \
  --thresholds 0.0 1.5 --delta 1e-5
