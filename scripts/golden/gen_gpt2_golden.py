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

      Keys added later (issue 26; the keys above keep their committed bytes):
      hf.hook_embed                     (2, 16, 64)  transformer.wte output (no positions)
      hf.blocks.{L}.hook_resid_mid      (2, 16, 64)  input of h[L].ln_2
      hf.blocks.{L}.hook_attn_out       (2, 16, 64)  output of h[L].attn.c_proj (with its bias)
      hf.blocks.{L}.attn.hook_z         (2, 16, 64)  input of h[L].attn.c_proj (heads concatenated)
      hf.blocks.{L}.hook_mlp_out        (2, 16, 64)  output of h[L].mlp
      hf.blocks.{L}.ln2.hook_normalized (2, 16, 64)  layer_norm(input of h[L].ln_2) without weight/bias
      tl.<hook>                                      TransformerLens' run_with_cache at hook_embed and
          every blocks.{L}.{hook_resid_pre, hook_resid_mid, hook_resid_post, hook_attn_out,
          hook_mlp_out, attn.hook_z (heads concatenated), ln2.hook_normalized}, with
          from_pretrained's processing (see scripts/golden/tl_hooks.py).

  tests/fixtures/golden/gpt2_tiny_hooks.json
      Versions used and tensor shapes.

When the fixture exists, the script checks that the rebuilt model equals the saved weights and
leaves the model folder alone, and keeps every tensor already in the golden file (checking that
the recomputed value is within 1e-5 of it), adding only keys that are missing.

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

Keys added for issue 26 (hf.*, tl.*): torch 2.15 (CPU), transformers 5.25, transformer-lens 3.9
(the `versions_added_keys` entry of the json), from /root/.cache/saecooc/golden-venv.

Versions used to produce the committed fixture: Python 3.11.7, torch 2.6.0
(PyPI wheel, reports "2.6.0+cu124", run on CPU, no GPU present),
transformers 5.24.0, safetensors 0.8.0, numpy 2.4.6.  Re-running reproduces the
files byte-for-byte on the same versions.
The numbers are CPU float32; regenerating with other versions may differ in
the last bits, so the Rust tests should compare with a tolerance.
"""

import importlib.metadata
import json
import os
import sys

import numpy
import safetensors
import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel
from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tl_hooks import tl_cache  # noqa: E402

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


def save_or_check_model(model: GPT2LMHeadModel) -> None:
    """Saves the model, or checks that the saved one has exactly these weights."""
    saved = os.path.join(MODEL_DIR, "model.safetensors")
    if not os.path.exists(saved):
        model.save_pretrained(MODEL_DIR, safe_serialization=True)
        return
    stored = load_file(saved)
    for name, value in model.state_dict().items():
        if name in stored:
            assert torch.equal(stored[name], value), f"{saved}: {name} differs from the rebuilt model"


def capture_hf_hooks(model: GPT2LMHeadModel, tokens: torch.Tensor):
    """transformers' forward with hooks: the residual stream at every block boundary (old keys)
    and the hf.* keys, and the output."""
    captured = {}
    handles = []

    def keep(key):
        def hook(module, args, output=None):
            value = output if output is not None else args[0]
            value = value[0] if isinstance(value, (tuple, list)) else value
            captured[key] = value.detach().clone()

        return hook

    handles.append(model.transformer.wte.register_forward_hook(keep("hf.hook_embed")))
    for L, block in enumerate(model.transformer.h):

        def pre_hook(module, args, kwargs, L=L):
            hs = args[0] if args else kwargs["hidden_states"]
            captured[f"blocks.{L}.hook_resid_pre"] = hs.detach().clone()

        handles.append(block.register_forward_pre_hook(pre_hook, with_kwargs=True))
        handles.append(block.register_forward_hook(keep(f"blocks.{L}.hook_resid_post")))
        handles.append(block.ln_2.register_forward_pre_hook(keep(f"hf.blocks.{L}.hook_resid_mid")))
        handles.append(block.attn.c_proj.register_forward_pre_hook(keep(f"hf.blocks.{L}.attn.hook_z")))
        handles.append(block.attn.c_proj.register_forward_hook(keep(f"hf.blocks.{L}.hook_attn_out")))
        handles.append(block.mlp.register_forward_hook(keep(f"hf.blocks.{L}.hook_mlp_out")))

    with torch.no_grad():
        out = model(input_ids=tokens, use_cache=False)
    for h in handles:
        h.remove()
    for L in range(model.config.n_layer):
        mid = captured[f"hf.blocks.{L}.hook_resid_mid"]
        captured[f"hf.blocks.{L}.ln2.hook_normalized"] = torch.nn.functional.layer_norm(
            mid, mid.shape[-1:], eps=model.config.layer_norm_epsilon
        )
    return captured, out


def keep_committed(tensors: dict) -> dict:
    """The committed golden tensors where they exist (checked against the recomputed values),
    the new ones elsewhere."""
    if not os.path.exists(GOLDEN_ST):
        return tensors
    committed = load_file(GOLDEN_ST)
    for key, old in committed.items():
        new = tensors[key]
        if key != "tokens":
            assert torch.allclose(old, new, atol=1e-5, rtol=0), f"{key} moved by more than 1e-5"
        else:
            assert torch.equal(old, new), "tokens differ"
    return {**tensors, **committed}


def main() -> int:
    model = build_model()
    os.makedirs(MODEL_DIR, exist_ok=True)
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    save_or_check_model(model)

    gen = torch.Generator().manual_seed(TOKEN_SEED)
    tokens = torch.randint(0, model.config.vocab_size, (BATCH, SEQ), generator=gen, dtype=torch.int64)

    captured, out = capture_hf_hooks(model, tokens)

    tensors = {"tokens": tokens.contiguous()}
    for L in range(model.config.n_layer):
        for kind in ("hook_resid_pre", "hook_resid_post"):
            key = f"blocks.{L}.{kind}"
            t = captured[key].to(torch.float32).contiguous()
            assert t.shape == (BATCH, SEQ, model.config.n_embd), (key, t.shape)
            tensors[key] = t
    tensors["logits"] = out.logits.to(torch.float32).contiguous()
    for key, value in captured.items():
        if key.startswith("hf."):
            tensors[key] = value.to(torch.float32).contiguous()
    tensors.update(
        tl_cache(MODEL_DIR, model, convert_gpt2_weights, tokens, n_ctx=model.config.n_positions)
    )

    # Sanity: consecutive blocks chain, and logits = ln_f(last resid_post) @ wte^T.
    for L in range(1, model.config.n_layer):
        assert torch.equal(tensors[f"blocks.{L - 1}.hook_resid_post"], tensors[f"blocks.{L}.hook_resid_pre"])
    last = tensors[f"blocks.{model.config.n_layer - 1}.hook_resid_post"]
    with torch.no_grad():
        ref_logits = model.lm_head(model.transformer.ln_f(last))
    assert torch.allclose(ref_logits, tensors["logits"], atol=1e-5), "logits do not match ln_f(resid_post)"
    # TransformerLens computes the same model: equal log-probabilities.
    assert torch.allclose(
        tensors["tl.logits"].log_softmax(-1), tensors["logits"].log_softmax(-1), atol=1e-4
    ), "TransformerLens' log-probabilities differ from transformers'"
    del tensors["tl.logits"]  # checked above; not needed by the Rust tests
    tensors = keep_committed(tensors)

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
    if os.path.exists(GOLDEN_JSON):
        # The committed tensors keep the versions that made them; the added keys say theirs.
        with open(GOLDEN_JSON) as f:
            committed = json.load(f)
        meta["versions_added_keys"] = {**meta["versions"], "transformer_lens": importlib.metadata.version("transformer-lens")}
        meta["versions"] = committed["versions"]
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
