#!/usr/bin/env bash
# The first run of saecooc on a GPU, as one short prepared script:
#   1. the golden fixtures' models on the device, every hook within 1e-4 of the references;
#   2. a tiny `cooc` on the device whose counts must equal the CPU run's;
#   3. `bench --end-to-end` (GPT-2-small shape) and `bench --shape gemma2-2b` on the device,
#      in f32 and then bf16 (f16 on the CPU), tokens/s per stage, with the peak GPU memory seen
#      by nvidia-smi;
#   4. `bench --sweep feature-splitting` on the device: 8 SAEs in one `cooc` run against one at
#      a time (seconds, SAE-tokens/s, peak host memory, speed-up; the outputs must be identical),
#      with the peak GPU memory. SWEEP_TOKENS (16384) sets its tokens.
# DEVICE=cpu runs the same steps on the CPU (what can be checked on a machine without a GPU).
#
#   scripts/gpu-check.sh                      # DEVICE=cuda, binary built by `make check-cuda`
#   DEVICE=cpu scripts/gpu-check.sh
# Environment: DEVICE (cuda), SAECOOC (the binary), GEMMA_TOKENS (1024), SWEEP_TOKENS (16384),
# WORK (a temp folder).
#
#   scripts/gpu-check.sh build                # what `make check-cuda` runs: compile, no GPU needed
set -euo pipefail
cd "$(dirname "$0")/.."
CUDA_TARGET_DIR=${CUDA_TARGET_DIR:-$HOME/.cache/saecooc/target-cuda}

# Compiles `--features cuda` on a machine without a GPU: nvcc and the CUDA libraries from pinned
# PyPI wheels (CUDA 13.0; a newer nvvm emits PTX that ptxas 13.0 rejects), and for the link a
# stub libcuda.so (the driver is not on PyPI) holding every driver symbol the build refers to.
build_cuda() {
  local venv=${CUDA_VENV:-$HOME/.cache/saecooc/cuda-venv}
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet nvidia-cuda-nvcc==13.0.88 nvidia-cuda-runtime==13.0.96 \
    nvidia-cuda-crt==13.0.88 nvidia-cuda-cccl==13.0.85 nvidia-nvvm==13.0.88 \
    nvidia-cuda-nvrtc==13.0.88 nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
  local cuda; cuda=$(echo "$venv"/lib/python3*/site-packages/nvidia/cu13)
  [ -x "$cuda/bin/nvcc" ] || { echo "no nvcc under $cuda" >&2; exit 1; }
  export CUDA_HOME=$cuda CUDA_PATH=$cuda PATH="$cuda/bin:$PATH"
  export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90} CARGO_TARGET_DIR=$CUDA_TARGET_DIR
  local stub=$CUDA_TARGET_DIR/cuda-link
  mkdir -p "$stub"
  for lib in nvrtc cublas cublasLt curand cudart; do
    local so; so=$(find "$venv" -name "lib$lib.so.*" | sort | head -1)
    [ -n "$so" ] || { echo "lib$lib.so.* not found in $venv" >&2; exit 1; }
    ln -sf "$so" "$stub/lib$lib.so"
  done
  # The library first (candle-kernels runs nvcc; nothing links libcuda yet) ...
  cargo build --release --locked --features cuda --lib
  # ... then a stub of the driver symbols it refers to, and the binary linked against it.
  nm -u "$CUDA_TARGET_DIR"/release/deps/*.rlib "$CUDA_TARGET_DIR"/release/build/*/out/*.a 2>/dev/null \
    | awk '{ print $NF }' | grep -E '^cu[A-Z]' | sort -u | sed 's/.*/void &(void) {}/' > "$stub/cuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub/libcuda.so" "$stub/cuda_stub.c"
  LIBRARY_PATH="$stub${LIBRARY_PATH:+:$LIBRARY_PATH}" cargo build --release --locked --features cuda
  echo "built $CUDA_TARGET_DIR/release/saecooc (needs libcuda.so.1 from the driver and the CUDA 13 libraries at run time)"
}
if [ "${1:-}" = build ]; then
  build_cuda
  exit 0
fi

DEVICE=${DEVICE:-cuda}
if [ "$DEVICE" = cuda ]; then
  default_bin=$CUDA_TARGET_DIR/release/saecooc
else
  default_bin=${CARGO_TARGET_DIR:-$HOME/.cache/saecooc/target}/release/saecooc
fi
SAECOOC=${SAECOOC:-$default_bin}
WORK=${WORK:-$(mktemp -d)}
GEMMA_TOKENS=${GEMMA_TOKENS:-1024}
SWEEP_TOKENS=${SWEEP_TOKENS:-16384}
[ -x "$SAECOOC" ] || { echo "no saecooc binary at $SAECOOC" >&2; exit 1; }
echo "saecooc: $SAECOOC, device: $DEVICE, work: $WORK"

peak_file="$WORK/gpu-memory.csv"
watch_memory() {
  if [ "$DEVICE" = cuda ] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$peak_file" &
    echo $!
  fi
}
report_peak() {
  [ -n "${1:-}" ] && kill "$1" 2>/dev/null && wait "$1" 2>/dev/null || true
  [ -s "$peak_file" ] && echo "peak GPU memory: $(sort -n "$peak_file" | tail -1) MiB" || true
}

echo "== 1. golden fixtures on $DEVICE"
"$SAECOOC" bench --golden tests/fixtures --device "$DEVICE"

echo "== 2. tiny cooc: $DEVICE counts must equal the CPU's"
"$SAECOOC" --quiet synth --out "$WORK/tiny" --documents 400
for d in $(printf "%s\n" cpu "$DEVICE" | sort -u); do
  sed -e "s|^device = .*|device = \"$d\"|" \
      -e "s|^results_dir = .*|results_dir = \"$WORK/results-$d\"|" "$WORK/tiny/cooc.toml" > "$WORK/cooc-$d.toml"
  grep -q "^device = \"$d\"" "$WORK/cooc-$d.toml" || sed -i "s|^\[run\]|[run]\ndevice = \"$d\"|" "$WORK/cooc-$d.toml"
  grep -q "^results_dir = " "$WORK/cooc-$d.toml" || sed -i "s|^\[run\]|[run]\nresults_dir = \"$WORK/results-$d\"|" "$WORK/cooc-$d.toml"
  "$SAECOOC" --quiet cooc --config "$WORK/cooc-$d.toml"
done
results_b=$WORK/results-$DEVICE
if [ "$DEVICE" = cpu ]; then
  # The same path twice: at least checks that a rerun gives identical counts.
  sed -e "s|results-cpu|results-cpu2|" "$WORK/cooc-cpu.toml" > "$WORK/cooc-cpu2.toml"
  "$SAECOOC" --quiet cooc --config "$WORK/cooc-cpu2.toml"
  results_b=$WORK/results-cpu2
fi
python3 - "$WORK/results-cpu" "$results_b" <<'PY'
import sys, zipfile, pathlib
a, b = map(pathlib.Path, sys.argv[1:])
files = sorted(p.relative_to(a) for p in a.rglob("*.npz"))
assert files, f"no npz files under {a}"
for rel in files:
    za, zb = zipfile.ZipFile(a / rel), zipfile.ZipFile(b / rel)
    for name in za.namelist():
        assert za.read(name) == zb.read(name), f"{rel}:{name} differs between CPU and device"
print(f"{len(files)} npz files: counts identical")
PY

echo "== 3. throughput on $DEVICE"
pid=$(watch_memory)
"$SAECOOC" bench --end-to-end --device "$DEVICE" --dir "$WORK/bench-gpt2"
report_peak "$pid"
pid=$(watch_memory)
"$SAECOOC" bench --shape gemma2-2b --shape-tokens "$GEMMA_TOKENS" --repeats 2 --device "$DEVICE"
report_peak "$pid"
# The reduced-precision option: bf16 on the GPU (f16 on the CPU, which has no bf16 product).
half=bf16; [ "$DEVICE" = cpu ] && half=f16
pid=$(watch_memory)
"$SAECOOC" bench --shape gemma2-2b --shape-tokens "$GEMMA_TOKENS" --repeats 2 --device "$DEVICE" --dtype "$half"
report_peak "$pid"

echo "== 4. a sweep in one run against one SAE at a time on $DEVICE"
pid=$(watch_memory)
"$SAECOOC" bench --sweep feature-splitting --tokens "$SWEEP_TOKENS" --device "$DEVICE" --dir "$WORK/bench-gpt2"
report_peak "$pid"
echo "gpu-check: all steps passed on $DEVICE"
