#!/usr/bin/env python3
"""Generate the golden GPT-2 fixture for the Rust forward-pass tests.

What it makes (paths relative to the repo root):

  tests/fixtures/tiny-gpt2/config.json
  tests/fixtures/tiny-gpt2/model.safetensors
      A tiny randomly initialised GPT2LMHeadModel saved with Hugging Face
      `save_pretrained(..., safe_serialization=True)`:
      vocab_size=1000, n_positions=64, n_embd=64, n_layer=3, n_head=4,
      activation_function="gelu_new", layer_norm_epsilon=1e-5.
      After torch.manual_seed(0) EVERY parameter is re-initialised so that all
      code paths see non-trivial values (float32):
        LayerNorm weight = 1 + 0.1*randn, LayerNorm bias = 0.1*randn,
        every other weight / bias = 0.1*randn.

  tests/fixtures/tiny-gpt2/generation_config.json
      Also written by save_pretrained; not needed by the Rust side.

  tests/fixtures/golden/gpt2_tiny_hooks.safetensors
      tokens                       (2, 16)        int64, in [0, 1000), seeded generator
      blocks.{L}.hook_resid_pre    (2, 16, 64)    float32, input hidden state of transformer.h[L]
      blocks.{L}.hook_resid_post   (2, 16, 64)    float32, output hidden state of transformer.h[L]
      logits                       (2, 16, 1000)  float32
      for L in 0..2.  resid_post of the last block is taken BEFORE ln_f (it is
      not output_hidden_states[-1], which has ln_f applied).

  tests/fixtures/golden/gpt2_tiny_hooks.json
      Versions used and tensor shapes.

Tensor keys written to model.safetensors (transformers 5.24.0):
  all carry the `transformer.` prefix (GPT2LMHeadModel state dict), e.g.
  transformer.wte.weight [1000,64], transformer.wpe.weight [64,64],
  transformer.h.{L}.ln_1.{weight,bias} [64],
  transformer.h.{L}.attn.c_attn.weight [64,192] / .bias [192],
  transformer.h.{L}.attn.c_proj.weight [64,64] / .bias [64],
  transformer.h.{L}.ln_2.{weight,bias} [64],
  transformer.h.{L}.mlp.c_fc.weight [64,256] / .bias [256],
  transformer.h.{L}.mlp.c_proj.weight [256,64] / .bias [64],
  transformer.ln_f.{weight,bias} [64].
  No `attn.bias` / `attn.masked_bias` causal-mask buffers are stored, and
  `lm_head.weight` is NOT stored (tied to transformer.wte.weight).
  Conv1D weights are stored [in, out] (y = x @ W + b).
  NB: checkpoints on the Hub (e.g. openai-community/gpt2) were saved from the
  base model and have NO `transformer.` prefix and DO carry `h.{L}.attn.bias`.

How to run (from the repo root):

  python3 -m venv /root/.cache/saecooc/golden-venv
  /root/.cache/saecooc/golden-venv/bin/pip install torch==2.6.0 transformers==5.24.0 \
      safetensors==0.8.0 numpy==2.4.6
  /root/.cache/saecooc/golden-venv/bin/python scripts/golden/gen_gpt2_golden.py
  /root/.cache/saecooc/golden-venv/bin/python scripts/golden/check_gpt2_numpy.py

  (transformers 5.24 needs torch >= 2.6.  Only PyPI is reachable here, and its
  x86_64 torch wheel is the CUDA build, which will not import without the
  nvidia-*-cu12 packages it depends on, so the plain install is used: the venv
  is ~5.5 GB.  A `--no-deps` torch does NOT import: libtorch_global_deps.so
  links libcudart/libcublas/libcudnn/... )

Versions used to produce the committed fixture: Python 3.11.7, torch 2.6.0
(PyPI wheel, reports "2.6.0+cu124", run on CPU, no GPU present),
transformers 5.24.0, safetensors 0.8.0, numpy 2.4.6.  Re-running reproduces the
files byte-for-byte on the same versions.
The numbers are CPU float32; regenerating with other versions may differ in
the last bits, so the Rust tests should compare with a tolerance.
"""

import json
import os
import sys

import numpy
import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

MODEL_DIR = "tests/fixtures/tiny-gpt2"
GOLDEN_DIR = "tests/fixtures/golden"
GOLDEN_ST = os.path.join(GOLDEN_DIR, "gpt2_tiny_hooks.safetensors")
GOLDEN_JSON = os.path.join(GOLDEN_DIR, "gpt2_tiny_hooks.json")

BATCH, SEQ = 2, 16
TOKEN_SEED = 1234


def build_model() -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=1000,
        n_positions=64,
        n_embd=64,
        n_layer=3,
        n_head=4,
        activation_function="gelu_new",
        layer_norm_epsilon=1e-5,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    # eager attention: the plain softmax(QK^T/sqrt(d) + causal mask) V path.
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    model = model.to(torch.float32)

    ln_param_ids = set()
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            ln_param_ids.add(id(module.weight))
            ln_param_ids.add(id(module.bias))

    with torch.no_grad():
        # named_parameters() de-duplicates tied params (lm_head.weight == wte.weight).
        for name, p in model.named_parameters():
            noise = 0.1 * torch.randn(p.shape, dtype=torch.float32)
            if id(p) in ln_param_ids and name.endswith("weight"):
                p.copy_(1.0 + noise)
            else:
                p.copy_(noise)
    model.eval()
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    return model


def main() -> int:
    model = build_model()
    os.makedirs(MODEL_DIR, exist_ok=True)
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    model.save_pretrained(MODEL_DIR, safe_serialization=True)

    gen = torch.Generator().manual_seed(TOKEN_SEED)
    tokens = torch.randint(0, model.config.vocab_size, (BATCH, SEQ), generator=gen, dtype=torch.int64)

    captured = {}
    handles = []
    for L, block in enumerate(model.transformer.h):

        def pre_hook(module, args, kwargs, L=L):
            hs = args[0] if args else kwargs["hidden_states"]
            captured[f"blocks.{L}.hook_resid_pre"] = hs.detach().clone()

        def post_hook(module, args, output, L=L):
            hs = output[0] if isinstance(output, (tuple, list)) else output
            captured[f"blocks.{L}.hook_resid_post"] = hs.detach().clone()

        handles.append(block.register_forward_pre_hook(pre_hook, with_kwargs=True))
        handles.append(block.register_forward_hook(post_hook))

    with torch.no_grad():
        out = model(input_ids=tokens, use_cache=False)
    for h in handles:
        h.remove()

    tensors = {"tokens": tokens.contiguous()}
    for L in range(model.config.n_layer):
        for kind in ("hook_resid_pre", "hook_resid_post"):
            key = f"blocks.{L}.{kind}"
            t = captured[key].to(torch.float32).contiguous()
            assert t.shape == (BATCH, SEQ, model.config.n_embd), (key, t.shape)
            tensors[key] = t
    tensors["logits"] = out.logits.to(torch.float32).contiguous()

    # Sanity: consecutive blocks chain, and logits = ln_f(last resid_post) @ wte^T.
    for L in range(1, model.config.n_layer):
        assert torch.equal(tensors[f"blocks.{L - 1}.hook_resid_post"], tensors[f"blocks.{L}.hook_resid_pre"])
    last = tensors[f"blocks.{model.config.n_layer - 1}.hook_resid_post"]
    with torch.no_grad():
        ref_logits = model.lm_head(model.transformer.ln_f(last))
    assert torch.allclose(ref_logits, tensors["logits"], atol=1e-5), "logits do not match ln_f(resid_post)"

    save_file(tensors, GOLDEN_ST)

    meta = {
        "description": "Golden residual-stream hooks for tests/fixtures/tiny-gpt2 (see scripts/golden/gen_gpt2_golden.py)",
        "model_dir": MODEL_DIR,
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": numpy.__version__,
        },
        "config": {
            k: getattr(model.config, k)
            for k in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "activation_function", "layer_norm_epsilon")
        },
        "init": "torch.manual_seed(0); LayerNorm weight = 1 + 0.1*randn, LayerNorm bias = 0.1*randn, others = 0.1*randn (named_parameters order)",
        "token_seed": TOKEN_SEED,
        "tensors": {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)} for k, v in tensors.items()},
    }
    with open(GOLDEN_JSON, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")

    total = 0
    for path in sorted(
        [os.path.join(MODEL_DIR, n) for n in os.listdir(MODEL_DIR)] + [GOLDEN_ST, GOLDEN_JSON]
    ):
        size = os.path.getsize(path)
        total += size
        print(f"{size:>10}  {path}")
    print(f"{total:>10}  total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
