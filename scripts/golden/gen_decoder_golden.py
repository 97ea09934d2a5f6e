#!/usr/bin/env python3
"""Golden fixtures for the RMSNorm decoder forward passes (tests/it/golden_decoders*.rs).

Writes, for NAME in (llama, gemma2, gemma3, qwen3, llama3, mistral, gemma, qwen3_moe):
  tests/fixtures/tiny-NAME/{config.json, model.safetensors}   random model, save_pretrained
      (llama and gemma2 are kept as they are when present: read back, never rewritten)
  tests/fixtures/golden/NAME_tiny_hooks.safetensors
      tokens (2, 16) int64; logits; hook_embed (TransformerLens' W_E[tokens]: embed_tokens,
      for Gemma times sqrt(d_model) in the model's dtype, as TransformerLens folds that scale
      into W_E; so the input of layer 0); for every layer L, captured with forward hooks on transformers' modules:
        blocks.L.hook_resid_pre / hook_resid_post   input / output of model.model.layers[L]
        blocks.L.attn.hook_z                        input of self_attn.o_proj
        blocks.L.hook_attn_out                      self_attn output (Gemma: post_attention_layernorm output)
        blocks.L.hook_resid_mid                     input of the MLP's norm
        blocks.L.ln2.hook_normalized                input of the MLP
        blocks.L.hook_mlp_out                       MLP output (Gemma: post_feedforward_layernorm output)
      A golden file that exists keeps its tensors; only missing keys are added (the recomputed
      values of the kept ones are checked against them).

All: vocab 1000, hidden 64, 3 layers, 4 heads, 2 key/value heads, rms_norm_eps 1e-5, 64 positions.
tiny-llama: LlamaForCausalLM, head_dim 16, SwiGLU 160, untied embeddings, rope_theta 10000.
tiny-gemma2: Gemma2ForCausalLM, head_dim 16, GeGLU 128, query_pre_attn_scalar 24,
  attn_logit_softcapping 3.0 (small, so the cap matters for random weights), sliding_window 4
  (< 16 tokens, so the window matters).
tiny-gemma3: Gemma3ForCausalLM (gemma3_text), head_dim 16, GeGLU 128, query_pre_attn_scalar 24,
  sliding_window 4, layers sliding/global/sliding, local RoPE base 10000, global RoPE base 1e6
  with linear scaling factor 8.
tiny-qwen3: Qwen3ForCausalLM, head_dim 24 (n_heads * head_dim = 96 != hidden 64), SwiGLU 160,
  rope_theta 1e6, tied embeddings.
tiny-llama3: LlamaForCausalLM with rope_type llama3 (theta 500000, factor 8, low 1, high 4,
  original_max_position_embeddings 48: the 8 frequencies of head_dim 16 fall in all three
  bands), head_dim 16, SwiGLU 160.
tiny-mistral: MistralForCausalLM, head_dim 16, SwiGLU 160, sliding_window 4.
tiny-gemma: GemmaForCausalLM (Gemma 1), head_dim 16, GeGLU 128, one key/value head
  (multi-query, as gemma-2b), hidden_act "gelu" (the legacy value real checkpoints carry).
tiny-qwen3_moe: Qwen3MoeForCausalLM, head_dim 16, 8 experts of SwiGLU 24, top 2 renormalised
  (norm_topk_prob), layer 1 dense (mlp_only_layers, SwiGLU 96), tied embeddings; saved with
  per-expert weights (mlp.experts.E.{gate,up,down}_proj.weight) as the hub checkpoints are.
Every parameter is re-initialised after torch.manual_seed(0): norm weights 0.1*randn
(+1 where RMSNorm multiplies by w; Gemma's multiplies by 1 + w), others 0.1*randn.
Eager attention, float32, CPU.

usage: /root/.cache/saecooc/golden-venv/bin/python scripts/golden/gen_decoder_golden.py
(torch 2.15, transformers 5.25 for the hooks added and the families after gemma2; tiny-llama
and tiny-gemma2 and their resid_pre/resid_post/logits were written by torch 2.6.0,
transformers 5.24.0)
"""
import os

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import (AutoModelForCausalLM, Gemma2Config, Gemma2ForCausalLM, Gemma3ForCausalLM,
                          Gemma3TextConfig, GemmaConfig, GemmaForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen3Config, Qwen3ForCausalLM, Qwen3MoeConfig,
                          Qwen3MoeForCausalLM)

COMMON = dict(vocab_size=1000, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
              num_key_value_heads=2, head_dim=16, max_position_embeddings=64, rms_norm_eps=1e-5,
              bos_token_id=1, eos_token_id=2, pad_token_id=0)
GEMMA = ("gemma2", "gemma3", "gemma")
SANDWICH_NORMS = ("gemma2", "gemma3")


def config_and_class(name):
    if name == "llama":
        return LlamaConfig(intermediate_size=160, rope_theta=10000.0, tie_word_embeddings=False,
                           hidden_act="silu", attention_bias=False, **COMMON), LlamaForCausalLM
    if name == "gemma2":
        return Gemma2Config(intermediate_size=128, query_pre_attn_scalar=24,
                            attn_logit_softcapping=3.0, final_logit_softcapping=30.0,
                            sliding_window=4, hidden_activation="gelu_pytorch_tanh",
                            rope_theta=10000.0, **COMMON), Gemma2ForCausalLM
    if name == "gemma3":
        rope = {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6}}
        return Gemma3TextConfig(intermediate_size=128, query_pre_attn_scalar=24, sliding_window=4,
                                layer_types=["sliding_attention", "full_attention",
                                             "sliding_attention"],
                                rope_parameters=rope, hidden_activation="gelu_pytorch_tanh",
                                **COMMON), Gemma3ForCausalLM
    if name == "qwen3":
        return Qwen3Config(intermediate_size=160, rope_parameters={"rope_type": "default",
                           "rope_theta": 1e6}, tie_word_embeddings=True,
                           **{**COMMON, "head_dim": 24}), Qwen3ForCausalLM
    if name == "llama3":
        rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 48}
        return LlamaConfig(intermediate_size=160, rope_parameters=rope, tie_word_embeddings=False,
                           hidden_act="silu", **COMMON), LlamaForCausalLM
    if name == "mistral":
        return MistralConfig(intermediate_size=160, sliding_window=4, tie_word_embeddings=False,
                             rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                             **COMMON), MistralForCausalLM
    if name == "gemma":
        return GemmaConfig(intermediate_size=128, hidden_act="gelu", rope_theta=10000.0,
                           **{**COMMON, "num_key_value_heads": 1}), GemmaForCausalLM
    if name == "qwen3_moe":
        return Qwen3MoeConfig(intermediate_size=96, moe_intermediate_size=24, num_experts=8,
                              num_experts_per_tok=2, norm_topk_prob=True, decoder_sparse_step=1,
                              mlp_only_layers=[1], tie_word_embeddings=True,
                              rope_parameters={"rope_type": "default", "rope_theta": 1e6},
                              **COMMON), Qwen3MoeForCausalLM
    raise ValueError(name)


def build(name):
    config, cls = config_and_class(name)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = cls(config).to(torch.float32)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            noise = 0.1 * torch.randn(p.shape, dtype=torch.float32)
            is_norm = pname.endswith("norm.weight")
            p.copy_(1.0 + noise if (is_norm and name not in GEMMA) else noise)
    model.eval()
    return model


def model_for(name, model_dir):
    """The fixture model: read back when it exists (llama, gemma2), else built and saved."""
    if os.path.exists(os.path.join(model_dir, "model.safetensors")):
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                     attn_implementation="eager")
        return model.eval()
    model = build(name)
    os.makedirs(model_dir, exist_ok=True)
    model.save_pretrained(model_dir, safe_serialization=True)
    return model


def capture_hooks(model, name, tokens):
    """Every hook of every layer, and the logits, for `tokens`."""
    captured = {}
    handles = []

    def keep(key, value):
        value = value[0] if isinstance(value, (tuple, list)) else value
        captured[key] = value.detach().float().clone()

    def on_input(module, key):
        def hook(mod, args, kwargs):
            keep(key, args[0] if args else kwargs["hidden_states"])
        handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))

    def on_output(module, key):
        handles.append(module.register_forward_hook(lambda mod, args, out: keep(key, out)))

    sandwich = name in SANDWICH_NORMS
    for L, layer in enumerate(model.model.layers):
        b = f"blocks.{L}."
        on_input(layer, b + "hook_resid_pre")
        on_output(layer, b + "hook_resid_post")
        on_input(layer.self_attn.o_proj, b + "attn.hook_z")
        on_input(layer.mlp, b + "ln2.hook_normalized")
        if sandwich:
            on_output(layer.post_attention_layernorm, b + "hook_attn_out")
            on_input(layer.pre_feedforward_layernorm, b + "hook_resid_mid")
            on_output(layer.post_feedforward_layernorm, b + "hook_mlp_out")
        else:
            on_output(layer.self_attn, b + "hook_attn_out")
            on_input(layer.post_attention_layernorm, b + "hook_resid_mid")
            on_output(layer.mlp, b + "hook_mlp_out")
    with torch.no_grad():
        out = model(input_ids=tokens, use_cache=False)
    for h in handles:
        h.remove()
    # TransformerLens' W_E: Gemma's √d_model scale folded in, so hook_embed is layer 0's input.
    captured["hook_embed"] = captured["blocks.0.hook_resid_pre"].clone()
    captured["logits"] = out.logits.float()
    return {k: v.contiguous() for k, v in captured.items()}


def check_consistent(t, n_layers):
    for L in range(n_layers):
        b = f"blocks.{L}."
        mid = t[b + "hook_resid_pre"] + t[b + "hook_attn_out"]
        assert torch.allclose(mid, t[b + "hook_resid_mid"], atol=1e-5), L
        post = t[b + "hook_resid_mid"] + t[b + "hook_mlp_out"]
        assert torch.allclose(post, t[b + "hook_resid_post"], atol=1e-5), L
        if L > 0:
            assert torch.equal(t[f"blocks.{L-1}.hook_resid_post"], t[b + "hook_resid_pre"])


def main():
    for name in ("llama", "gemma2", "gemma3", "qwen3", "llama3", "mistral", "gemma", "qwen3_moe"):
        model = model_for(name, f"tests/fixtures/tiny-{name}")
        golden_path = f"tests/fixtures/golden/{name}_tiny_hooks.safetensors"
        kept = load_file(golden_path) if os.path.exists(golden_path) else {}
        if "tokens" in kept:
            tokens = kept["tokens"]
        else:
            gen = torch.Generator().manual_seed(1234)
            tokens = torch.randint(3, 1000, (2, 16), generator=gen, dtype=torch.int64)
        tensors = {"tokens": tokens.contiguous(), **capture_hooks(model, name, tokens)}
        check_consistent(tensors, len(model.model.layers))
        for key, old in kept.items():
            scale = old.abs().max().item() or 1.0
            err = (tensors[key].to(old.dtype) - old).abs().max().item() / scale
            assert err <= 1e-5, f"{name} {key}: recomputed differs from the kept golden by {err}"
        tensors.update(kept)
        save_file(tensors, golden_path)
        print(name, "ok", transformers.__version__, len(tensors), "tensors")


if __name__ == "__main__":
    main()
