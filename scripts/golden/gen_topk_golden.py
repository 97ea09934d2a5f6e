#!/usr/bin/env python3
"""Golden TopK SAEs and their SAELens encodings (tests/it/sae_encode.rs, TopK selection rule).

One random TopK SAE (d_in 16, d_sae 64, k 4; decoder rows with norms spread from 0.1 to 2.0;
non-zero b_enc and b_dec; apply_b_dec_to_input true, normalize_activations none), built with
SAELens' own `TopKSAE` twice, once per value of `rescale_acts_by_decoder_norm`, and saved with
SAELens' `save_model` (cfg.json + sae_weights.safetensors, exactly as SAELens writes them) to

  tests/fixtures/golden/topk_sae_unscaled/   rescale_acts_by_decoder_norm = false
  tests/fixtures/golden/topk_sae_scaled/     rescale_acts_by_decoder_norm = true

The weights of the two folders are identical; only the flag differs.

tests/fixtures/golden/saelens_topk.safetensors (float32 unless noted):
  x                         [64, 16]  inputs
  {unscaled,scaled}.encode  [64, 64]  SAELens `sae.encode(x)` of the folder, as loaded back
                                      with `SAE.load_from_disk`
  {unscaled,scaled}.folded  [64, 64]  what an SAE with its decoder norms folded in must give:
                                      unscaled: encode × ‖W_dec,i‖ (SAELens refuses
                                      `fold_W_dec_norm` for such an SAE, so the norms are
                                      multiplied in afterwards); scaled: encode itself (SAELens'
                                      encode already multiplies the pre-activations by the
                                      norms; checked here to equal the encode after
                                      `sae.fold_W_dec_norm()`)
  {unscaled,scaled}.active  [64, 4]   int64: the indices of the non-zero entries of encode,
                                      ascending, padded with -1 where fewer than k are > 0
  decoder_norms             [64]      ‖W_dec,i‖

SAELens' TopK encode (sae_lens/saes/topk_sae.py): hidden_pre = (x − b_dec) @ W_enc + b_enc,
times ‖W_dec,i‖ when rescale_acts_by_decoder_norm; `torch.topk(hidden_pre, k)` on that
(before any ReLU), then ReLU of the k kept values, zeros elsewhere. Inputs are kept only where
both rules have a clear choice: the k-th and (k+1)-th selection values differ by > 1e-2 and
no kept value is within 1e-3 of 0, so float rounding cannot change an active set. The two
rules pick different sets on many rows (asserted: at least 16 of 64).

usage (from the repo root, venv as in gen_window_golden.py):
  /root/.cache/saecooc/golden-venv/bin/python scripts/golden/gen_topk_golden.py
(generated with sae-lens 6.54.12, torch 2.15.0)
"""
import json
import os

import sae_lens
import torch
from safetensors.torch import save_file
from sae_lens import SAE, TopKSAE, TopKSAEConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(ROOT, "tests", "fixtures", "golden")
D_IN, D_SAE, K, ROWS = 16, 64, 4, 64
HOOK = "blocks.0.hook_resid_pre"


def weights():
    g = torch.Generator().manual_seed(0)
    w_enc = torch.randn(D_IN, D_SAE, generator=g) * 0.5
    b_enc = torch.randn(D_SAE, generator=g) * 0.2
    directions = torch.randn(D_SAE, D_IN, generator=g)
    directions /= directions.norm(dim=-1, keepdim=True)
    norms = 0.1 + 1.9 * torch.rand(D_SAE, generator=g)
    w_dec = directions * norms[:, None]
    b_dec = torch.randn(D_IN, generator=g) * 0.1
    return {"W_enc": w_enc, "b_enc": b_enc, "W_dec": w_dec, "b_dec": b_dec}


def build(rescale, w):
    cfg = TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, rescale_acts_by_decoder_norm=rescale,
                        apply_b_dec_to_input=True, normalize_activations="none",
                        dtype="float32", device="cpu")
    cfg.metadata.hook_name = HOOK
    sae = TopKSAE(cfg)
    with torch.no_grad():
        for name, t in w.items():
            getattr(sae, name).copy_(t)
    return sae


def clear_choice(sel):
    """Rows whose top-k set and ReLU are unambiguous under float rounding."""
    s = sel.sort(dim=-1, descending=True).values
    gap = s[:, K - 1] - s[:, K]
    near_zero = (s[:, :K].abs() < 1e-3).any(dim=-1)
    return (gap > 1e-2) & ~near_zero


def active(enc):
    out = torch.full((enc.shape[0], K), -1, dtype=torch.int64)
    for r in range(enc.shape[0]):
        idx = (enc[r] > 0).nonzero().flatten().sort().values
        assert len(idx) <= K
        out[r, :len(idx)] = idx
    return out


def main():
    w = weights()
    norms = w["W_dec"].norm(dim=-1)
    assert norms.min() >= 0.1 and norms.max() <= 2.0
    pre_fn = lambda x: (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]  # noqa: E731
    g = torch.Generator().manual_seed(1)
    rows = []
    while sum(len(r) for r in rows) < ROWS:
        x = torch.randn(256, D_IN, generator=g) * 2.0
        pre = pre_fn(x)
        keep = clear_choice(pre) & clear_choice(pre * norms)
        rows.append(x[keep])
    x = torch.cat(rows)[:ROWS].contiguous()

    out = {"x": x, "decoder_norms": norms.contiguous()}
    for name, rescale in [("unscaled", False), ("scaled", True)]:
        folder = os.path.join(GOLDEN, f"topk_sae_{name}")
        build(rescale, w).save_model(folder)
        sae = SAE.load_from_disk(folder, device="cpu")
        assert isinstance(sae, TopKSAE) and sae.cfg.rescale_acts_by_decoder_norm == rescale
        with torch.no_grad():
            enc = sae.encode(x)
            # Independent check of the rule described in the docstring.
            sel = pre_fn(x) * (norms if rescale else 1.0)
            top = torch.topk(sel, K, dim=-1)
            ref = torch.zeros_like(sel).scatter(-1, top.indices, top.values.relu())
            assert torch.allclose(enc, ref, atol=1e-5), (enc - ref).abs().max()
            if rescale:
                folded = enc.clone()
                sae.fold_W_dec_norm()
                assert torch.allclose(sae.encode(x), folded, atol=1e-5)
            else:
                folded = enc * norms
                try:
                    sae.fold_W_dec_norm()
                    raise AssertionError("SAELens folded an unscaled TopK SAE")
                except NotImplementedError:
                    pass
        out[f"{name}.encode"] = enc.contiguous()
        out[f"{name}.folded"] = folded.contiguous()
        out[f"{name}.active"] = active(enc)
        with open(os.path.join(folder, "cfg.json")) as f:
            cfg = json.load(f)
        assert cfg["rescale_acts_by_decoder_norm"] == rescale and cfg["k"] == K
    differ = (out["unscaled.active"] != out["scaled.active"]).any(dim=-1).sum().item()
    assert differ >= 16, differ
    save_file(out, os.path.join(GOLDEN, "saelens_topk.safetensors"),
              metadata={"generator": "scripts/golden/gen_topk_golden.py",
                        "sae_lens_version": sae_lens.__version__,
                        "torch_version": torch.__version__})
    print(f"{differ} of {ROWS} rows have different active sets under the two rules")


if __name__ == "__main__":
    main()
