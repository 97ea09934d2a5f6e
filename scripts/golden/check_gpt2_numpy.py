#!/usr/bin/env python3
"""Numpy-only re-implementation of the GPT-2 forward pass, checked against the golden hooks.

Reads tests/fixtures/tiny-gpt2/{config.json,model.safetensors} and
tests/fixtures/golden/gpt2_tiny_hooks.safetensors (made by gen_gpt2_golden.py),
recomputes every blocks.{L}.hook_resid_pre / hook_resid_post and the logits
without torch, and fails if any max relative error (max |ours - ref| divided
by max |ref|) is >= 1e-4.  This pins down the layout the Rust port relies on:

  * keys carry the `transformer.` prefix; lm_head is tied to transformer.wte.weight
  * Conv1D weights are [in, out]:  y = x @ W + b
  * c_attn output splits as [q | k | v] along the last dim, each n_embd wide,
    then heads are contiguous chunks of head_dim = n_embd / n_head
  * scores scaled by 1/sqrt(head_dim), causal mask, softmax
  * gelu_new = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  * LayerNorm with biased variance, eps = config.layer_norm_epsilon
  * resid_pre[0] = wte[tokens] + wpe[0..T]; pre-LN blocks:
      x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
  * logits = ln_f(resid_post[last]) @ wte^T

Run from the repo root (needs only numpy + safetensors):
  /root/.cache/saecooc/golden-venv/bin/python scripts/golden/check_gpt2_numpy.py
"""

import json
import sys

import numpy as np
from safetensors.numpy import load_file

MODEL_DIR = "tests/fixtures/tiny-gpt2"
GOLDEN = "tests/fixtures/golden/gpt2_tiny_hooks.safetensors"
TOL = 1e-4


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def main() -> int:
    cfg = json.load(open(f"{MODEL_DIR}/config.json"))
    W = {k: v.astype(np.float64) for k, v in load_file(f"{MODEL_DIR}/model.safetensors").items()}
    gold = load_file(GOLDEN)
    eps, D, H, nL = cfg["layer_norm_epsilon"], cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    hd = D // H
    p = "transformer."

    tokens = gold["tokens"]
    B, T = tokens.shape
    x = W[p + "wte.weight"][tokens] + W[p + "wpe.weight"][:T][None]
    mask = np.triu(np.ones((T, T), dtype=bool), k=1)

    ours = {}
    for L in range(nL):
        q = f"{p}h.{L}."
        ours[f"blocks.{L}.hook_resid_pre"] = x
        h = layer_norm(x, W[q + "ln_1.weight"], W[q + "ln_1.bias"], eps)
        qkv = h @ W[q + "attn.c_attn.weight"] + W[q + "attn.c_attn.bias"]  # [B,T,3D]
        Q, K, V = (t.reshape(B, T, H, hd).transpose(0, 2, 1, 3) for t in np.split(qkv, 3, axis=-1))
        s = Q @ K.transpose(0, 1, 3, 2) / np.sqrt(hd)  # [B,H,T,T]
        s = np.where(mask, -np.inf, s)
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ V  # [B,H,T,hd]
        a = a.transpose(0, 2, 1, 3).reshape(B, T, D)
        x = x + a @ W[q + "attn.c_proj.weight"] + W[q + "attn.c_proj.bias"]
        h = layer_norm(x, W[q + "ln_2.weight"], W[q + "ln_2.bias"], eps)
        m = gelu_new(h @ W[q + "mlp.c_fc.weight"] + W[q + "mlp.c_fc.bias"])
        x = x + m @ W[q + "mlp.c_proj.weight"] + W[q + "mlp.c_proj.bias"]
        ours[f"blocks.{L}.hook_resid_post"] = x
    ours["logits"] = layer_norm(x, W[p + "ln_f.weight"], W[p + "ln_f.bias"], eps) @ W[p + "wte.weight"].T

    ok = True
    for key in sorted(ours):
        ref = gold[key].astype(np.float64)
        assert ours[key].shape == ref.shape, (key, ours[key].shape, ref.shape)
        abs_err = np.abs(ours[key] - ref).max()
        rel = abs_err / np.abs(ref).max()
        flag = "ok" if rel < TOL else "FAIL"
        ok &= rel < TOL
        print(f"{key:28s} max_abs_err={abs_err:.3e}  max|ref|={np.abs(ref).max():.3f}  rel={rel:.3e}  {flag}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
