#!/usr/bin/env bash
# Side-by-side CPU throughput: `saecooc bench` against the original's libraries
# (TransformerLens forward + SAELens encode + a dense BᵀB count, torch on PyPI) on the same
# shapes, token counts and thread count, run alternately. Prints one markdown table.
#
#   scripts/bench/compare-torch.sh                   # GPT-2 small, SmolLM2-135M, Gemma-2-2b
#   SHAPES=gpt2-small ROUNDS=3 scripts/bench/compare-torch.sh
#
# Environment: BENCH_VENV (default ~/.cache/saecooc/bench-venv; created and filled from PyPI
# when it lacks torch/transformer-lens/sae-lens), THREADS (2), ROUNDS (2: alternating runs, the
# best of each side is kept), SHAPES, SAECOOC (the binary; default: the release build).
# Not part of CI: the venv is ~6 GB and Gemma-2-2b needs ~14 GB of memory per side.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${BENCH_VENV:-$HOME/.cache/saecooc/bench-venv}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
SHAPES=${SHAPES:-"gpt2-small smollm2-135m gemma2-2b"}
SAECOOC=${SAECOOC:-${CARGO_TARGET_DIR:-$HOME/.cache/saecooc/target}/release/saecooc}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

if ! "$VENV/bin/python" -c "import torch, transformer_lens, sae_lens" 2>/dev/null; then
  echo "installing torch, transformer-lens and sae-lens into $VENV (PyPI, several GB)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet torch==2.15.0 transformer-lens==3.9.0 sae-lens==6.54.12
fi
[ -x "$SAECOOC" ] || { echo "no saecooc binary at $SAECOOC (run: make build)" >&2; exit 1; }

tokens_of() { case $1 in gemma2-2b) echo 512 ;; *) echo 4096 ;; esac; }
ours_shape() { case $1 in gpt2-small) echo gpt2-small ;; smollm2-135m) echo smollm2-135m ;; gemma2-2b) echo gemma2-2b ;; esac; }
load() { cut -d' ' -f1 /proc/loadavg; }

# best <file> <stage>: the highest tokens/s of a stage over the rounds in a file
best() { awk -F'\t' -v s="$2" '$1 == s && $3 > m { m = $3 } END { printf "%d", m }' "$1"; }

export RAYON_NUM_THREADS=$THREADS
for shape in $SHAPES; do
  n=$(tokens_of "$shape")
  count=0; [ "$shape" = gpt2-small ] && count=1024
  for r in $(seq "$ROUNDS"); do
    echo "round $r $shape: saecooc (load $(load))" >&2
    "$SAECOOC" bench --shape "$(ours_shape "$shape")" --shape-tokens "$n" --repeats 2 \
      | awk '/^(forward to the hook|SAE encode) /{ s = $1; for (i = 2; i <= NF - 2; i++) s = s " " $i; printf "%s\t%s\t%s\n", s, $(NF-1), $NF }' \
      >> "$OUT/ours-$shape"
    echo "round $r $shape: torch (load $(load))" >&2
    "$VENV/bin/python" scripts/bench/compare_torch.py --shape "$shape" --tokens "$n" \
      --repeats 2 --threads "$THREADS" --count-tokens "$count" | grep -v '^#' >> "$OUT/torch-$shape"
    count=0
  done
done
if [[ " $SHAPES " == *" gpt2-small "* ]]; then
  for r in $(seq "$ROUNDS"); do
    echo "round $r: saecooc bench --end-to-end (load $(load))" >&2
    "$SAECOOC" bench --end-to-end --dir "${BENCH_DIR:-bench/gpt2-small-shaped}" \
      | awk '/^(count|whole pass)/{ s = $1; for (i = 2; i <= NF - 2; i++) s = s " " $i; printf "%s\t%s\t%s\n", s, $(NF-1), $NF }' \
      >> "$OUT/ours-e2e"
  done
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "-" }'; }
echo
echo "CPU, $THREADS threads, $(nproc) cores, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| shape | stage | saecooc tok/s | TransformerLens/SAELens tok/s | ratio |"
echo "|---|---|---|---|---|"
for shape in $SHAPES; do
  for stage in "forward to the hook" "SAE encode"; do
    a=$(best "$OUT/ours-$shape" "$stage"); b=$(best "$OUT/torch-$shape" "$stage")
    echo "| $shape | $stage | $a | $b | $(ratio "$a" "$b") |"
  done
done
if [ -s "${OUT}/ours-e2e" ]; then
  f=$(best "$OUT/torch-gpt2-small" "forward to the hook"); e=$(best "$OUT/torch-gpt2-small" "SAE encode")
  c=$(best "$OUT/torch-gpt2-small" "count (dense BᵀB)")
  a=$(best "$OUT/ours-e2e" "count"); w=$(best "$OUT/ours-e2e" "whole pass (tokenize..count)")
  theirs=$(awk -v f="$f" -v e="$e" -v c="$c" 'BEGIN { printf "%d", 1 / (1/f + 1/e + 1/c) }')
  echo "| gpt2-small | count (ours sparse vs their dense BᵀB) | $a | $c | $(ratio "$a" "$c") |"
  echo "| gpt2-small | whole pass (\`cooc\` run vs forward+encode+count) | $w | $theirs | $(ratio "$w" "$theirs") |"
fi
