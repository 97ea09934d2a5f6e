#!/usr/bin/env bash
# Redraws README's figures ("The paper's figures") into docs/figures/:
# - the per-SAE ones from the stats/ folder that `make demo` wrote (run `make demo` first);
# - the across-width ones from two synthetic releases of four widths each (the SAEs of
#   synthetic-layer0 read layer 0, those of synthetic-layer1 layer 1, of one random model),
#   counted, graphed and analysed here in a temporary folder.
# Usage: scripts/readme-figures.sh   (uses make build's binary; not run by CI)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bin="${CARGO_TARGET_DIR:-$HOME/.cache/saecooc/target}/release/saecooc"
demo_sae=smollm2-135m_saecooc-demo_blocks_2_hook_resid_post_0_0
[ -x "$bin" ] || { echo "error: no $bin (run make build)" >&2; exit 1; }
[ -f "stats/heatmap_$demo_sae.png" ] || { echo "error: no stats/heatmap_$demo_sae.png (run make demo)" >&2; exit 1; }

mkdir -p docs/figures
for figure in heatmap count_vs_jaccard edge_cutoff_sweep distribution; do
  cp "stats/${figure}_$demo_sae.png" "docs/figures/$figure.png"
done
cp "stats/cooccurrence_$demo_sae.png" docs/demo-cooccurrence.png

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
for layer in 0 1; do
  mkdir "sae-layer$layer"
  for width in 128 256 512 1024; do
    "$bin" --quiet synth --out "world-$layer-$width" --d-sae "$width" --hook-layer "$layer"
    cp -r "world-$layer-$width/sae/blocks.$layer.hook_resid_pre" "sae-layer$layer/w$width"
  done
  # configs/tiny.toml with this release's SAEs and the (shared) model and corpus.
  sed -e "s#^sae_release_short = .*#sae_release_short = \"synthetic-layer$layer\"#" \
      -e "s#^sae_ids = .*#sae_ids = [\"w128\", \"w256\", \"w512\", \"w1024\"]#" \
      -e "s#^sae = .*#sae = \"sae-layer$layer\"#" \
      -e "s#^model = .*#model = \"world-0-128/model\"#" \
      -e "s#^dataset = .*#dataset = \"world-0-128/corpus.txt\"#" \
      "$repo/configs/tiny.toml" > "layer$layer.toml"
  "$bin" --quiet cooc --config "layer$layer.toml"
  "$bin" --quiet graphs --config "layer$layer.toml"
done
"$bin" --quiet stats --results-dir results --out stats --config layer1.toml
for figure in combined_boxplot_observed_expected subgraph_size_vs_width subgraph_size_vs_l0 feature_graph_l0_normalised; do
  cp "stats/$figure.png" "$repo/docs/figures/"
done
echo "redrew docs/figures/ and docs/demo-cooccurrence.png"
