"""Checks that SAELens itself loads an SAE written by `saecooc train-sae` and encodes as its
weights say (TopK: the k largest pre-activations, through ReLU).

usage: python scripts/golden/check_saelens_load.py demo/smollm2-sae/blocks.2.hook_resid_post
(needs sae-lens; checked with sae-lens 6.54.12 + torch 2.6: max difference 0.0)
"""
import json
import sys

import torch
from safetensors.torch import load_file
from sae_lens import SAE

path = sys.argv[1]
sae = SAE.load_from_disk(path, device="cpu")
cfg = json.load(open(f"{path}/cfg.json"))
w = load_file(f"{path}/sae_weights.safetensors")
x = torch.randn(16, cfg["d_in"]) * 3
pre = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
if cfg["architecture"] == "topk":
    top = torch.topk(pre, cfg["activation_fn_kwargs"]["k"], dim=-1)
    ref = torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
else:
    ref = torch.relu(pre)
diff = (sae.encode(x) - ref).abs().max().item()
print(type(sae).__name__, "d_in", cfg["d_in"], "d_sae", cfg["d_sae"], "max |SAELens - weights|", diff)
assert diff < 1e-4
