# saecooc: `make demo` runs the offline demo, `make test` runs the tests.
# Everything builds once, in release mode, into a target folder outside the clone so that
# repeated checkouts (and CI runs on the same machine) reuse it.
CARGO_TARGET_DIR ?= $(HOME)/.cache/saecooc/target
export CARGO_TARGET_DIR
BIN := $(CARGO_TARGET_DIR)/release/saecooc
# Python with numpy, scipy, pandas, networkx, h5py and scikit-learn, used by the tests that read
# our outputs back like a user would (and re-implement the original's graph stage, PCA and app
# loader independently).
VENV := $(CURDIR)/.venv
PYTHON_OK := $(shell python3 -c "import numpy, scipy, pandas, networkx, h5py, sklearn" 2>/dev/null && echo yes)
ifeq ($(PYTHON_OK),yes)
  TEST_PYTHON := python3
  TEST_PYTHON_DEP :=
else
  TEST_PYTHON := $(VENV)/bin/python
  TEST_PYTHON_DEP := $(VENV)/.saecooc-deps
endif

.PHONY: build demo test lint fmt bench-cooc clean-demo

build:
	cargo build --release --locked

## demo: synthesise a tiny GPT-2-shaped model + SAE + corpus (offline), then run cooc,
## graphs and pca on it.
demo: build
	@test -f demo/tiny/sae/blocks.1.hook_resid_pre/cfg.json || $(BIN) synth --out demo/tiny
	$(BIN) cooc --config configs/tiny.toml
	$(BIN) graphs --config configs/tiny.toml
	$(BIN) pca --config configs/tiny-pca.toml
	@echo "results: results/synthetic-gpt2/synthetic/blocks_1_hook_resid_pre/n_batches_8/"
	@echo "a subgraph: results/synthetic-gpt2/synthetic/blocks_1_hook_resid_pre/n_batches_8/graphs_1_5/subgraph_0.html"

$(VENV)/.saecooc-deps:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet numpy scipy pandas networkx h5py scikit-learn
	touch $@

## test: unit, golden and end-to-end tests (release build, shared with the demo).
test: $(TEST_PYTHON_DEP)
	SAECOOC_PYTHON=$(TEST_PYTHON) cargo test --release --locked

lint:
	cargo fmt --all -- --check
	cargo clippy --release --locked --all-targets -- -D warnings

fmt:
	cargo fmt --all

## bench-cooc: cooc throughput on a GPT-2-small-shaped random model (12 layers, d 768,
## SAE 24576 latents at blocks.8.hook_resid_pre).
bench-cooc: build
	@test -f bench/gpt2-small-shaped/sae/blocks.8.hook_resid_pre/cfg.json || \
	  $(BIN) synth --out bench/gpt2-small-shaped --layers 12 --d-model 768 --heads 12 \
	    --n-positions 1024 --d-sae 24576 --hook-layer 8 --documents 20000
	$(BIN) cooc --config configs/bench-gpt2-small-shaped.toml

clean-demo:
	rm -rf demo results/synthetic-gpt2
