#!/usr/bin/env python3
"""Time the original's libraries on the shapes of `saecooc bench`: TransformerLens' forward pass
to the hook (`run_with_cache(stop_at_layer=…, names_filter=hook)`) and SAELens' `encode`, with
random weights (no downloads), CPU, `torch.set_num_threads(--threads)`.

Prints one line per stage, `stage<TAB>seconds<TAB>tokens/s`, best of --repeats after a warm-up,
for `compare-torch.sh` to read. Shapes and hooks are those of `saecooc bench --shape`:

  gpt2-small    12 layers, d 768, to blocks.8.hook_resid_pre, SAE 24,576 latents
  smollm2-135m  30 layers, d 576, 9/3 heads, to blocks.15.hook_resid_pre, SAE 4,608 latents
  gemma2-2b     26 layers, d 2304, 8/4 heads, to blocks.12.hook_resid_post, SAE 16,384 latents
"""

import argparse
import time

import torch
from sae_lens import StandardSAE, StandardSAEConfig
from transformer_lens import HookedTransformer, HookedTransformerConfig

SHAPES = {
    "gpt2-small": (
        dict(n_layers=12, d_model=768, d_head=64, n_heads=12, d_mlp=3072, d_vocab=50257,
             n_ctx=1024, act_fn="gelu_new", normalization_type="LN"),
        "blocks.8.hook_resid_pre", 9, 24_576),
    "smollm2-135m": (
        dict(n_layers=30, d_model=576, d_head=64, n_heads=9, n_key_value_heads=3, d_mlp=1536,
             d_vocab=49152, n_ctx=8192, eps=1e-5, act_fn="silu", normalization_type="RMS",
             positional_embedding_type="rotary", rotary_dim=64, rotary_base=100000.0,
             rotary_adjacent_pairs=False, final_rms=True, gated_mlp=True),
        "blocks.15.hook_resid_pre", 16, 4_608),
    "gemma2-2b": (
        # Only the 13 blocks that run are built (the other 13 would cost 5 GB and no time).
        dict(n_layers=13, d_model=2304, d_head=256, n_heads=8, n_key_value_heads=4, d_mlp=9216,
             d_vocab=256000, n_ctx=8192, eps=1e-6, act_fn="gelu_pytorch_tanh",
             normalization_type="RMS", positional_embedding_type="rotary", rotary_dim=256,
             rotary_base=10000.0, use_attn_scale=True, window_size=4096, use_local_attn=True,
             attn_types=(["local", "global"] * 7)[:13], attn_scores_soft_cap=50.0,
             output_logits_soft_cap=30.0, gated_mlp=True, final_rms=True,
             use_normalization_before_and_after=True),
        "blocks.12.hook_resid_post", 13, 16_384),
}


def best_of(repeats, fn):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=SHAPES, default="gpt2-small")
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--window", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--count-tokens", type=int, default=0,
                   help="also time the original's counting, a dense float32 C += BᵀB of the "
                        "active-latent indicators, on this many tokens (0: skip)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg_kwargs, hook, stop_at, d_sae = SHAPES[a.shape]
    cfg = HookedTransformerConfig(**cfg_kwargs, device="cpu", dtype=torch.float32)
    model = HookedTransformer(cfg).eval()
    windows = a.tokens // a.window
    tokens = torch.randint(0, 1000, (windows, a.window))
    n = windows * a.window

    def forward():
        _, cache = model.run_with_cache(tokens, stop_at_layer=stop_at, names_filter=hook)
        return cache[hook].reshape(n, -1)

    sae = StandardSAE(StandardSAEConfig(d_in=cfg.d_model, d_sae=d_sae, device="cpu"))
    with torch.no_grad():
        for param in sae.parameters():
            param.normal_(0, 0.05)
    with torch.inference_mode():
        fwd_s, resid = best_of(a.repeats, forward)
        enc_s, _ = best_of(a.repeats, lambda: sae.encode(resid))
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {a.shape}, "
          f"{n} tokens in windows of {a.window}")
    print(f"forward to the hook\t{fwd_s:.3f}\t{n / fwd_s:.0f}")
    print(f"SAE encode\t{enc_s:.3f}\t{n / enc_s:.0f}")
    if a.count_tokens:
        with torch.inference_mode():
            b = (torch.rand(a.count_tokens, d_sae) < 50 / d_sae).float()
            c = torch.zeros(d_sae, d_sae)
            cnt_s, _ = best_of(1, lambda: c.add_(b.T @ b))
        print(f"count (dense BᵀB)\t{cnt_s:.3f}\t{a.count_tokens / cnt_s:.0f}")


if __name__ == "__main__":
    main()
