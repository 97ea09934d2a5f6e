#!/usr/bin/env python3
"""Golden fixtures for the Llama-family and Gemma-2 forward passes (tests/it/golden_decoders.rs).

Writes, for NAME in (llama, gemma2):
  tests/fixtures/tiny-NAME/{config.json, model.safetensors}   random model, save_pretrained
  tests/fixtures/golden/NAME_tiny_hooks.safetensors
      tokens (2, 16) int64; blocks.{L}.hook_resid_pre / hook_resid_post (2, 16, 64) float32
      (the input / output of model.model.layers[L], captured with forward hooks); logits.

tiny-llama: LlamaForCausalLM, vocab 1000, hidden 64, 3 layers, 4 heads, 2 key/value heads
  (grouped-query attention), head_dim 16, SwiGLU 160, untied embeddings, rope_theta 10000.
tiny-gemma2: Gemma2ForCausalLM, vocab 1000, hidden 64, 3 layers, 4 heads, 2 key/value heads,
  head_dim 16, GeGLU 128, query_pre_attn_scalar 24, attn_logit_softcapping 3.0 (small, so the
  cap matters for random weights), sliding_window 4 (< 16 tokens, so the window matters).
Every parameter is re-initialised after torch.manual_seed(0): norm weights 0.1*randn
(+1 for Llama, whose RMSNorm multiplies by w; Gemma's multiplies by 1 + w), others 0.1*randn.
Eager attention, float32, CPU.

usage: /root/.cache/saecooc/golden-venv/bin/python scripts/golden/gen_decoder_golden.py
(torch 2.6.0, transformers 5.24.0; see gen_gpt2_golden.py for the venv)
"""
import os

import torch
import transformers
from safetensors.torch import save_file
from transformers import Gemma2Config, Gemma2ForCausalLM, LlamaConfig, LlamaForCausalLM

COMMON = dict(vocab_size=1000, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
              num_key_value_heads=2, head_dim=16, max_position_embeddings=64, rms_norm_eps=1e-5,
              bos_token_id=1, eos_token_id=2, pad_token_id=0)


def build(name):
    if name == "llama":
        config = LlamaConfig(intermediate_size=160, rope_theta=10000.0, tie_word_embeddings=False,
                             hidden_act="silu", attention_bias=False, **COMMON)
        cls = LlamaForCausalLM
    else:
        config = Gemma2Config(intermediate_size=128, query_pre_attn_scalar=24,
                              attn_logit_softcapping=3.0, final_logit_softcapping=30.0,
                              sliding_window=4, hidden_activation="gelu_pytorch_tanh",
                              rope_theta=10000.0, **COMMON)
        cls = Gemma2ForCausalLM
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = cls(config).to(torch.float32)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            noise = 0.1 * torch.randn(p.shape, dtype=torch.float32)
            is_norm = pname.endswith("norm.weight")
            p.copy_(1.0 + noise if (is_norm and name == "llama") else noise)
    model.eval()
    return model


def main():
    for name in ("llama", "gemma2"):
        model = build(name)
        model_dir = f"tests/fixtures/tiny-{name}"
        os.makedirs(model_dir, exist_ok=True)
        model.save_pretrained(model_dir, safe_serialization=True)
        gen = torch.Generator().manual_seed(1234)
        tokens = torch.randint(3, 1000, (2, 16), generator=gen, dtype=torch.int64)
        captured = {}
        handles = []
        for L, layer in enumerate(model.model.layers):
            def pre(module, args, kwargs, L=L):
                hs = args[0] if args else kwargs["hidden_states"]
                captured[f"blocks.{L}.hook_resid_pre"] = hs.detach().clone()

            def post(module, args, output, L=L):
                hs = output[0] if isinstance(output, (tuple, list)) else output
                captured[f"blocks.{L}.hook_resid_post"] = hs.detach().clone()
            handles.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(layer.register_forward_hook(post))
        with torch.no_grad():
            out = model(input_ids=tokens, use_cache=False)
        for h in handles:
            h.remove()
        tensors = {"tokens": tokens.contiguous(), "logits": out.logits.float().contiguous()}
        tensors.update({k: v.float().contiguous() for k, v in captured.items()})
        for L in range(1, 3):
            assert torch.equal(tensors[f"blocks.{L-1}.hook_resid_post"], tensors[f"blocks.{L}.hook_resid_pre"])
        save_file(tensors, f"tests/fixtures/golden/{name}_tiny_hooks.safetensors")
        print(name, "ok", transformers.__version__, sorted(os.listdir(model_dir)))


if __name__ == "__main__":
    main()
