#!/usr/bin/env python3
"""Generate the golden GPT-NeoX (Pythia) fixture for the Rust forward-pass tests.

What it makes (paths relative to the repo root):

  tests/fixtures/tiny-pythia/config.json, model.safetensors, generation_config.json
      A tiny randomly initialised GPTNeoXForCausalLM saved with `save_pretrained`: vocab_size=1000,
      hidden_size=64, num_hidden_layers=3, num_attention_heads=4 (head_dim 16),
      intermediate_size=128, rotary_pct=0.25 (rotary on the first 4 of 16 dims, as Pythia),
      rotary_emb_base=10000, max_position_embeddings=64, layer_norm_eps=1e-5, hidden_act="gelu",
      use_parallel_residual=True, tie_word_embeddings=False (float32). After
      torch.manual_seed(0) every parameter is re-initialised: LayerNorm weight = 1 + 0.1*randn,
      every other weight / bias = 0.1*randn (named_parameters order).

  tests/fixtures/golden/neox_tiny_hooks.safetensors
      tokens (2, 16) int64, in [0, 1000), seeded generator; for L in 0..2, each (2, 16, 64) f32:
      hf.hook_embed                      gpt_neox.embed_in output
      hf.blocks.{L}.hook_resid_pre       input of gpt_neox.layers[L]
      hf.blocks.{L}.hook_resid_post      output of gpt_neox.layers[L] (before final_layer_norm)
      hf.blocks.{L}.attn.hook_z          input of layers[L].attention.dense (heads concatenated)
      hf.blocks.{L}.hook_attn_out        output of layers[L].attention.dense (with its bias)
      hf.blocks.{L}.hook_mlp_out         output of layers[L].mlp
      hf.blocks.{L}.ln2.hook_normalized  layer_norm(resid_pre) without weight/bias (the MLP reads
                                         post_attention_layernorm(resid_pre) in parallel mode)
      tl.<hook>                          TransformerLens' run_with_cache with from_pretrained's
          processing (scripts/golden/tl_hooks.py) at hook_embed and blocks.{L}.{hook_resid_pre,
          hook_resid_post, hook_attn_out, hook_mlp_out, attn.hook_z (heads concatenated),
          ln2.hook_normalized} (no hook_resid_mid: the blocks are parallel)
      seq.hf.* / seq.tl.*                the same weights with use_parallel_residual=False
          (sequential blocks: the MLP reads resid_mid), every hook above plus
          hf./tl. blocks.{L}.hook_resid_mid (input of post_attention_layernorm)

  tests/fixtures/golden/neox_tiny_hooks.json
      Versions used and tensor shapes.

How to run (from the repo root), with the golden venv (torch, transformers, transformer-lens):

  /root/.cache/saecooc/golden-venv/bin/python scripts/golden/gen_neox_golden.py

Versions used for the committed fixture: Python 3.11, torch 2.15 (CPU), transformers 5.25,
transformer-lens 3.9 (recorded in the json). CPU float32; other versions may differ in the last
bits, so the Rust tests compare with a tolerance.
"""

import copy
import importlib.metadata
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformer_lens.pretrained.weight_conversions import convert_neox_weights
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tl_hooks import tl_cache  # noqa: E402

MODEL_DIR = "tests/fixtures/tiny-pythia"
GOLDEN_DIR = "tests/fixtures/golden"
GOLDEN_ST = os.path.join(GOLDEN_DIR, "neox_tiny_hooks.safetensors")
GOLDEN_JSON = os.path.join(GOLDEN_DIR, "neox_tiny_hooks.json")

BATCH, SEQ = 2, 16
TOKEN_SEED = 1234


def build_model() -> GPTNeoXForCausalLM:
    config = GPTNeoXConfig(
        vocab_size=1000,
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=128,
        rotary_pct=0.25,
        rotary_emb_base=10000,
        max_position_embeddings=64,
        layer_norm_eps=1e-5,
        hidden_act="gelu",
        use_parallel_residual=True,
        tie_word_embeddings=False,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(config).to(torch.float32)
    ln_weights = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.LayerNorm)}
    with torch.no_grad():
        for _, p in model.named_parameters():
            noise = 0.1 * torch.randn(p.shape, dtype=torch.float32)
            p.copy_(1.0 + noise if id(p) in ln_weights else noise)
    model.eval()
    return model


def capture_hf_hooks(model: GPTNeoXForCausalLM, tokens: torch.Tensor, prefix: str) -> dict:
    """transformers' forward with hooks: `prefix` + hf.<hook> for every hook the blocks have."""
    captured = {}
    handles = []
    parallel = model.config.use_parallel_residual

    def keep(key):
        def hook(module, args, output=None):
            value = output if output is not None else args[0]
            value = value[0] if isinstance(value, (tuple, list)) else value
            captured[key] = value.detach().clone()

        return hook

    def keep_input(key):
        def hook(module, args, kwargs):
            value = args[0] if args else kwargs["hidden_states"]
            captured[key] = value.detach().clone()

        return hook

    net = model.gpt_neox
    handles.append(net.embed_in.register_forward_hook(keep("hf.hook_embed")))
    for L, layer in enumerate(net.layers):
        b = f"hf.blocks.{L}."
        handles.append(layer.register_forward_pre_hook(keep_input(b + "hook_resid_pre"), with_kwargs=True))
        handles.append(layer.register_forward_hook(keep(b + "hook_resid_post")))
        handles.append(layer.attention.dense.register_forward_pre_hook(keep(b + "attn.hook_z")))
        handles.append(layer.attention.dense.register_forward_hook(keep(b + "hook_attn_out")))
        handles.append(layer.mlp.register_forward_hook(keep(b + "hook_mlp_out")))
        if not parallel:
            handles.append(layer.post_attention_layernorm.register_forward_pre_hook(keep(b + "hook_resid_mid")))
    with torch.no_grad():
        out = model(input_ids=tokens, use_cache=False)
    for h in handles:
        h.remove()
    for L in range(model.config.num_hidden_layers):
        b = f"hf.blocks.{L}."
        mlp_reads = captured[b + ("hook_resid_pre" if parallel else "hook_resid_mid")]
        captured[b + "ln2.hook_normalized"] = torch.nn.functional.layer_norm(
            mlp_reads, mlp_reads.shape[-1:], eps=model.config.layer_norm_eps
        )
    assert_same_model(model, captured, out.logits)
    return {prefix + k: v.to(torch.float32).contiguous() for k, v in captured.items()}


def assert_same_model(model, captured, logits):
    """The captured values chain as the architecture says."""
    n = model.config.num_hidden_layers
    for L in range(n):
        b = f"hf.blocks.{L}."
        pre, post = captured[b + "hook_resid_pre"], captured[b + "hook_resid_post"]
        total = pre + captured[b + "hook_attn_out"] + captured[b + "hook_mlp_out"]
        assert torch.allclose(total, post, atol=1e-5), f"layer {L}: resid_post != pre + attn + mlp"
        if L + 1 < n:
            assert torch.equal(post, captured[f"hf.blocks.{L + 1}.hook_resid_pre"])
    net = model.gpt_neox
    with torch.no_grad():
        ref = model.get_output_embeddings()(net.final_layer_norm(captured[f"hf.blocks.{n - 1}.hook_resid_post"]))
    assert torch.allclose(ref, logits, atol=1e-5), "logits do not match the last resid_post"


def hooks_of(model: GPTNeoXForCausalLM, tokens: torch.Tensor, prefix: str) -> dict:
    """transformers' and TransformerLens' values at every hook, keys prefixed by `prefix`."""
    tensors = capture_hf_hooks(model, tokens, prefix)
    tl = tl_cache(MODEL_DIR, model, convert_neox_weights, tokens)
    with torch.no_grad():
        hf_logits = model(input_ids=tokens, use_cache=False).logits
    assert torch.allclose(
        tl.pop("tl.logits").log_softmax(-1), hf_logits.log_softmax(-1), atol=1e-4
    ), "TransformerLens' log-probabilities differ from transformers'"
    tensors.update({prefix + k: v for k, v in tl.items()})
    return tensors


def main() -> int:
    model = build_model()
    os.makedirs(MODEL_DIR, exist_ok=True)
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    model.save_pretrained(MODEL_DIR, safe_serialization=True)

    gen = torch.Generator().manual_seed(TOKEN_SEED)
    tokens = torch.randint(0, model.config.vocab_size, (BATCH, SEQ), generator=gen, dtype=torch.int64)

    tensors = {"tokens": tokens.contiguous()}
    tensors.update(hooks_of(model, tokens, ""))
    sequential = copy.deepcopy(model)
    sequential.config.use_parallel_residual = False
    for layer in sequential.gpt_neox.layers:
        layer.use_parallel_residual = False
    tensors.update(hooks_of(sequential, tokens, "seq."))
    assert "tl.blocks.0.hook_resid_mid" not in tensors and "seq.tl.blocks.0.hook_resid_mid" in tensors
    save_file(tensors, GOLDEN_ST)

    meta = {
        "description": "Golden hooks for tests/fixtures/tiny-pythia (see scripts/golden/gen_neox_golden.py)",
        "model_dir": MODEL_DIR,
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "transformer_lens": importlib.metadata.version("transformer-lens"),
        },
        "token_seed": TOKEN_SEED,
        "tensors": {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)} for k, v in tensors.items()},
    }
    with open(GOLDEN_JSON, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    for path in sorted([os.path.join(MODEL_DIR, n) for n in os.listdir(MODEL_DIR)] + [GOLDEN_ST, GOLDEN_JSON]):
        print(f"{os.path.getsize(path):>10}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
