"""TransformerLens' hook values for a tiny Hugging Face model saved in the repo.

Shared by gen_gpt2_golden.py and gen_neox_golden.py. `tl_cache(model_dir, hf_model, convert,
tokens, **config_attrs)` builds a HookedTransformer from the saved config (transformer_lens'
convert_hf_model_config on the local folder), loads the Hugging Face weights through the given
TransformerLens converter (convert_gpt2_weights, convert_neox_weights) with the processing of
HookedTransformer.from_pretrained (fold_ln, center_writing_weights, center_unembed,
fold_value_biases all True), runs run_with_cache on `tokens` and returns the hooks saecooc
reads as {"tl.<hook name>": float32 tensor [batch, pos, width]} (attn.hook_z with its heads
concatenated), plus "tl.logits".
"""

import copy

import torch
import transformer_lens.loading_from_pretrained as tl_loading
from transformer_lens import HookedTransformer
from transformer_lens.config.hooked_transformer_config import HookedTransformerConfig

# The hooks of every block that saecooc reads, as TransformerLens names them.
BLOCK_HOOKS = (
    "hook_resid_pre",
    "hook_resid_mid",
    "hook_resid_post",
    "hook_attn_out",
    "hook_mlp_out",
    "attn.hook_z",
    "ln2.hook_normalized",
)


def tl_model(model_dir, hf_model, convert, **config_attrs):
    """A HookedTransformer with `hf_model`'s weights, processed as from_pretrained does;
    `config_attrs` are set on a copy of its Hugging Face config first (keys TransformerLens reads that a
    config saved by transformers 5 lacks, such as GPT-2's n_ctx)."""
    hf_config = copy.deepcopy(hf_model.config)
    hf_config.architectures = [type(hf_model).__name__]
    for key, value in config_attrs.items():
        setattr(hf_config, key, value)
    # convert_hf_model_config reads the config with AutoConfig.from_pretrained: hand it ours.
    real = tl_loading.AutoConfig
    tl_loading.AutoConfig = type("SavedConfig", (), {"from_pretrained": staticmethod(lambda *a, **k: hf_config)})
    try:
        cfg_dict = tl_loading.convert_hf_model_config(model_dir)
    finally:
        tl_loading.AutoConfig = real
    cfg_dict.update(
        model_name="tiny",
        init_weights=False,
        device="cpu",
        dtype=torch.float32,
        # get_pretrained_model_config does this when fold_ln is on.
        normalization_type="LNPre",
    )
    cfg = HookedTransformerConfig(**cfg_dict)
    model = HookedTransformer(cfg, move_to_device=False)
    model.load_and_process_state_dict(
        convert(hf_model, cfg),
        fold_ln=True,
        center_writing_weights=True,
        center_unembed=True,
        fold_value_biases=True,
        refactor_factored_attn_matrices=False,
    )
    model.eval()
    return model


def tl_cache(model_dir, hf_model, convert, tokens, **config_attrs):
    """{"tl.<hook>": tensor} at hook_embed and every block hook the model has, and tl.logits."""
    model = tl_model(model_dir, hf_model, convert, **config_attrs)
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens)
    out = {"tl.hook_embed": cache["hook_embed"]}
    for layer in range(model.cfg.n_layers):
        for hook in BLOCK_HOOKS:
            name = f"blocks.{layer}.{hook}"
            if name not in cache:
                continue
            value = cache[name]
            if hook == "attn.hook_z":
                value = value.flatten(-2)
            out[f"tl.{name}"] = value
    out["tl.logits"] = logits
    return {k: v.to(torch.float32).contiguous().clone() for k, v in out.items()}
