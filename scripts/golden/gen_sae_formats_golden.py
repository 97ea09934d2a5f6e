#!/usr/bin/env python3
"""Golden fixtures for the SAE formats of SAELens' release registry (tests/it/sae_formats.rs).

For each format (the registry's `conversion_func`) this writes tiny random SAEs in that format's
real file layout under tests/fixtures/sae-formats/FORMAT/ (the folder stands for the hub repo:
each case is a subfolder named as the registry's `path` names it), then loads each with
SAELens' own loader for that format (hf_hub_download and the safetensors shape helper pointed
at the local files), builds the SAE as `SAE.from_pretrained` does (the registry's
`norm_scaling_factor` folded where the cfg says `expected_average_only_in`, then
`fold_W_dec_norm()`), and encodes random inputs with `sae.encode(x)`. Writes:
  tests/fixtures/sae-formats/FORMAT/cases.json
      {case: {repo_id, folder, norm_scaling_factor, hook_name, hf_hook_name, d_in, d_sae}}
      (repo_id, folder, norm_scaling_factor: what the registry gives; the rest: SAELens' cfg)
  tests/fixtures/sae-formats/FORMAT/golden.safetensors
      CASE.x [8, d_in] float32 (the inputs), CASE.acts [8, d_sae] float32 (SAELens' encode)

Formats: gemma_3 (params.safetensors, config.json or the folder name), gemma_2 (params.npz),
dictionary_learning_1 (ae.pt via torch.save + config.json), llama_scope (hyperparams.json +
checkpoints/final.safetensors), llama_scope_r1_distill (config.json + sae_weights.safetensors),
gemma_2_transcoder, mwhanna_transcoder, and the torch-pickled qwen_scope (layerN.sae.pt),
connor_rob_hook_z (NAME.pt + NAME_cfg.json), goodfire (.pth) and deepseek_r1 (.pt).
Weights: torch.manual_seed per case, d_in 32, d_sae 64 (a few cases differ), float32.

usage: /root/.cache/saecooc/golden-venv/bin/python scripts/golden/gen_sae_formats_golden.py [FORMAT...]
(torch 2.15, sae-lens 6.54.12, safetensors, numpy)
"""
import json
import sys
import os
import shutil

import numpy as np
import sae_lens
import torch
from huggingface_hub.utils import EntryNotFoundError
from safetensors import safe_open
from safetensors.torch import save_file
from sae_lens import SAE
from sae_lens.loading import pretrained_sae_loaders as L

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "sae-formats")
N_TOKENS = 8


def fake_hub(repo_root):
    """hf_hub_download and the shape helper, reading `repo_root` instead of the hub."""

    def download(repo_id, filename, subfolder=None, **_):
        rel = f"{subfolder}/{filename}" if subfolder else filename
        path = os.path.join(repo_root, rel)
        if not os.path.isfile(path):
            raise EntryNotFoundError(f"{repo_id}: {rel} not found")
        return path

    def shapes(repo_id, filename):
        with safe_open(download(repo_id, filename), "pt") as f:
            return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}

    L.hf_hub_download = download
    L.get_safetensors_tensor_shapes = shapes


def saelens_encode(loader, repo_id, folder, factor, x, overrides):
    """What SAE.from_pretrained builds from `loader`'s output, and its encode of x."""
    cfg, state, _ = loader(repo_id=repo_id, folder_name=folder, device="cpu",
                           cfg_overrides={"device": "cpu", "dtype": "float32", **overrides})
    cfg = L.handle_config_defaulting(cfg)
    sae_cfg = SAE.get_sae_config_class_for_architecture(cfg["architecture"]).from_dict(cfg)
    sae = SAE.get_sae_class_for_architecture(sae_cfg.architecture())(sae_cfg)
    sae.process_state_dict_for_loading(state)
    sae.load_state_dict(state, assign=True)
    if cfg.get("normalize_activations") == "expected_average_only_in" and factor is not None:
        sae.fold_activation_norm_scaling_factor(factor)
    sae = sae.to(dtype=torch.float32)
    try:
        sae.fold_W_dec_norm()
        norms = torch.ones(sae.cfg.d_sae)
    except NotImplementedError:
        # a TopK SAE that ranks unscaled pre-activations: SAELens will not fold its norms,
        # so its folded activations are its own times the decoder norms
        norms = sae.W_dec.norm(dim=-1)
    if getattr(sae, "hook_z_reshaping_mode", False):
        x = x.reshape(x.shape[0], 8, -1)  # hook_z as TransformerLens gives it: [n, heads, d_head]
    with torch.no_grad():
        acts = sae.encode(x) * norms
    return sae.cfg, acts


def randn(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).to(torch.float32)


def jumprelu_arrays(d_in, d_sae):
    return dict(w_enc=randn(d_in, d_sae, scale=0.3), w_dec=randn(d_sae, d_in, scale=0.3),
                b_enc=randn(d_sae, scale=0.1), b_dec=randn(d_in, scale=0.1),
                threshold=torch.rand(d_sae) * 0.6)


# --- gemma_3 -------------------------------------------------------------------------------

def gemma_3(root):
    """Gemma Scope 2: params.safetensors (+ config.json), the hook from the folder name."""
    cases = {
        # (folder, config.json or None, extra tensors, w_dec layers for a clt)
        "resid_post": ("resid_post/layer_2_width_16k_l0_small",
                       {"architecture": "jump_relu", "model_name": "gemma-v3-270m-pt",
                        "hf_hook_point_in": "model.layers.2.output", "width": 64}, False, 0),
        "attn_out": ("attn_out_all/layer_1_width_16k_l0_big", None, False, 0),
        "mlp_out": ("mlp_out/layer_0_width_65k_l0_medium", None, False, 0),
        "transcoder_affine": ("transcoder_all/layer_1_width_16k_l0_big_affine", None, True, 0),
        "clt": ("clt/width_262k_l0_medium/layer_2", None, False, 3),
    }
    out = {}
    for i, (case, (folder, config, affine, clt_layers)) in enumerate(cases.items()):
        torch.manual_seed(100 + i)
        d_in, d_sae = 32, 64
        arrays = jumprelu_arrays(d_in, d_sae)
        if clt_layers:
            arrays["w_dec"] = randn(d_sae, clt_layers, d_in, scale=0.3)
        if affine:
            arrays["affine_skip_connection"] = randn(d_in, d_in, scale=0.1)
        if clt_layers:
            parent, last = folder.rsplit("/", 1)
            weights = os.path.join(root, parent, last + ".safetensors")
        else:
            weights = os.path.join(root, folder, "params.safetensors")
        os.makedirs(os.path.dirname(weights), exist_ok=True)
        save_file({k: v.contiguous() for k, v in arrays.items()}, weights)
        if config is not None:
            with open(os.path.join(root, folder, "config.json"), "w") as f:
                json.dump(config, f, indent=1)
        out[case] = (folder, "google/gemma-scope-2-270m-pt", None, L.gemma_3_sae_huggingface_loader,
                     d_in)
    return out


# --- gemma_2 -------------------------------------------------------------------------------

def gemma_2(root):
    """Gemma Scope: params.npz; the hook and d_in from the repo id and folder (d_in is the real
    model's: 2304 for Gemma 2 2B, n_heads * d_head = 2048 for its hook_z), so d_sae is 16."""
    cases = {
        "att": ("google/gemma-scope-2b-pt-att", "layer_3/width_16k/average_l0_40", 2048),
        "embedding": ("google/gemma-scope-2b-pt-res", "embedding/width_4k/average_l0_21", 2304),
    }
    out = {}
    for i, (case, (repo_id, folder, d_in)) in enumerate(cases.items()):
        torch.manual_seed(200 + i)
        d_sae = 16
        arrays = jumprelu_arrays(d_in, d_sae)
        arrays = {("W_" + k[2:] if k.startswith("w_") else k): v for k, v in arrays.items()}
        arrays["threshold"] = arrays["threshold"] * 0.2
        os.makedirs(os.path.join(root, folder))
        np.savez(os.path.join(root, folder, "params.npz"),
                 **{k: v.numpy() for k, v in arrays.items()})
        # the folder's width (16k) is the real SAE's: the registry's config_overrides
        # mechanism gives SAELens the fixture's
        out[case] = (folder, repo_id, None, L.gemma_2_sae_huggingface_loader, d_in,
                     {"d_sae": d_sae})
    return out


# --- llama_scope, llama_scope_r1_distill -----------------------------------------------------

def linear_weights(d_in, d_sae, dtype):
    """An SAE as torch Linear layers: encoder.weight [d_sae, d_in], decoder.weight [d_in, d_sae]."""
    return {"encoder.weight": randn(d_sae, d_in, scale=0.3).to(dtype),
            "encoder.bias": randn(d_sae, scale=0.1).to(dtype),
            "decoder.weight": randn(d_in, d_sae, scale=0.3).to(dtype),
            "decoder.bias": randn(d_in, scale=0.1).to(dtype)}


def llama_scope(root):
    """Llama Scope: hyperparams.json + checkpoints/final.safetensors (bfloat16), one scalar
    threshold, the registry's norm_scaling_factor folded."""
    torch.manual_seed(300)
    d_in, d_sae, folder = 32, 64, "Llama3_1-8B-Base-L5R-8x"
    os.makedirs(os.path.join(root, folder, "checkpoints"))
    with open(os.path.join(root, folder, "hyperparams.json"), "w") as f:
        json.dump({"d_model": d_in, "d_sae": d_sae, "hook_point_in": "blocks.5.hook_resid_post",
                   "hook_point_out": "blocks.5.hook_resid_post", "jump_relu_threshold": 0.35,
                   "dataset_average_activation_norm": {"in": 7.5, "out": 7.5}}, f, indent=1)
    save_file(linear_weights(d_in, d_sae, torch.bfloat16),
              os.path.join(root, folder, "checkpoints", "final.safetensors"))
    return {"resid_post": (folder, "fnlp/Llama3_1-8B-Base-LXR-8x", 0.45,
                           L.llama_scope_sae_huggingface_loader, d_in)}


def llama_scope_r1_distill(root):
    """Llama Scope R1 Distill: config.json + sae_weights.safetensors with
    log_jumprelu_threshold, the registry's norm_scaling_factor folded."""
    torch.manual_seed(400)
    d_in, expansion, folder = 32, 2, "400M-Slimpajama-400M-OpenR1-Math-220k/L7R"
    os.makedirs(os.path.join(root, folder))
    with open(os.path.join(root, folder, "config.json"), "w") as f:
        json.dump({"d_model": d_in, "expansion_factor": expansion,
                   "hook_point_in": "blocks.7.hook_resid_post",
                   "hook_point_out": "blocks.7.hook_resid_post"}, f, indent=1)
    weights = linear_weights(d_in, d_in * expansion, torch.float32)
    weights["log_jumprelu_threshold"] = torch.log(torch.rand(d_in * expansion) * 0.6 + 0.05)
    save_file(weights, os.path.join(root, folder, "sae_weights.safetensors"))
    return {"resid_post": (folder, "fnlp/Llama-Scope-R1-Distill", 1.7,
                           L.llama_scope_r1_distill_sae_huggingface_loader, d_in)}


# --- dictionary_learning_1 ------------------------------------------------------------------

class Linear(torch.nn.Module):
    """The parameters of torch.nn.Linear, so state_dict() names them as dictionary_learning's."""

    def __init__(self, d_in, d_out, bias=True):
        super().__init__()
        self.weight = torch.nn.Parameter(randn(d_out, d_in, scale=0.3))
        self.bias = torch.nn.Parameter(randn(d_out, scale=0.1)) if bias else None


class Dictionary(torch.nn.Module):
    """A dictionary_learning autoencoder's state: `encoder`/`decoder` Linear layers (AutoEncoder,
    AutoEncoderTopK, BatchTopKSAE) or W_enc/W_dec matrices (JumpReluAutoEncoder)."""

    def __init__(self, dict_class, d_in, d_sae, k):
        super().__init__()
        if dict_class == "JumpReluAutoEncoder":
            self.W_enc = torch.nn.Parameter(randn(d_in, d_sae, scale=0.3))
            self.b_enc = torch.nn.Parameter(randn(d_sae, scale=0.1))
            self.W_dec = torch.nn.Parameter(randn(d_sae, d_in, scale=0.3))
            self.b_dec = torch.nn.Parameter(randn(d_in, scale=0.1))
            self.threshold = torch.nn.Parameter(torch.rand(d_sae) * 0.5)
            return
        self.encoder = Linear(d_in, d_sae)
        self.decoder = Linear(d_sae, d_in, bias=False)
        if dict_class == "AutoEncoder":
            self.bias = torch.nn.Parameter(randn(d_in, scale=0.1))
            return
        self.b_dec = torch.nn.Parameter(randn(d_in, scale=0.1))
        self.register_buffer("k", torch.tensor(k, dtype=torch.int))
        threshold = 0.3 if dict_class == "BatchTopKSAE" else -1.0
        self.register_buffer("threshold", torch.tensor(threshold, dtype=torch.float32))


def dictionary_learning_1(root):
    """dictionary_learning: ae.pt (torch.save of the module's state_dict) + config.json, one
    case per trainer class SAELens converts to a different architecture."""
    out = {}
    for i, dict_class in enumerate(["AutoEncoder", "AutoEncoderTopK", "BatchTopKSAE",
                                    "JumpReluAutoEncoder"]):
        torch.manual_seed(500 + i)
        d_in, d_sae, k, layer = 32, 64, 6, 3
        folder = f"resid_post_layer_{layer}/trainer_{i}"
        os.makedirs(os.path.join(root, folder))
        torch.save(Dictionary(dict_class, d_in, d_sae, k).state_dict(),
                   os.path.join(root, folder, "ae.pt"))
        trainer = {"dict_class": dict_class, "trainer_class": "Trainer", "activation_dim": d_in,
                   "dict_size": d_sae, "layer": layer, "lm_name": "EleutherAI/pythia-70m-deduped",
                   "k": k, "lr": 0.0003, "device": "cuda:0", "submodule_name": f"resid_post_layer_{layer}"}
        if dict_class == "AutoEncoder":
            del trainer["k"]
        with open(os.path.join(root, folder, "config.json"), "w") as f:
            json.dump({"trainer": trainer, "buffer": {"d_submodule": d_in, "ctx_len": 128,
                                                      "out_batch_size": 2048}}, f, indent=1)
        out[dict_class] = (folder, "adamkarvonen/saebench_pythia-70m-deduped_test", None,
                           L.dictionary_learning_sae_huggingface_loader_1, d_in)
    return out


# --- gemma_2_transcoder, mwhanna_transcoder --------------------------------------------------

def gemma_2_transcoder(root):
    """Gemma Scope transcoders: params.npz (keys spelled as the release spells them), JumpReLU,
    read at ln2.hook_normalized; d_in is Gemma 2 2B's, so d_sae is 16."""
    torch.manual_seed(600)
    d_in, d_sae = 2304, 16
    folder = "layer_4/width_16k/average_l0_30"
    arrays = jumprelu_arrays(d_in, d_sae)
    arrays["threshold"] = arrays["threshold"] * 0.2
    os.makedirs(os.path.join(root, folder))
    np.savez(os.path.join(root, folder, "params.npz"), **{k: v.numpy() for k, v in arrays.items()})
    return {"transcoder": (folder, "google/gemma-scope-2b-pt-transcoders", None,
                           L.gemma_2_transcoder_huggingface_loader, d_in, {"d_sae": d_sae})}


def mwhanna_transcoder(root):
    """mwhanna transcoders: layer_N.safetensors with W_enc stored [d_sae, d_in], a standard
    ReLU transcoder read at mlp.hook_in; the repo's wandb-config.yaml and config.yaml."""
    torch.manual_seed(700)
    d_in, d_sae = 32, 64
    with open(os.path.join(root, "wandb-config.yaml"), "w") as f:
        f.write(f"d_model:\n  value: {d_in}\nd_feature:\n  value: {d_sae}\nbatch_size:\n  value: 256\n")
    with open(os.path.join(root, "config.yaml"), "w") as f:
        f.write("model_name: Qwen/Qwen3-0.6B\n")
    save_file({"W_enc": randn(d_sae, d_in, scale=0.3), "b_enc": randn(d_sae, scale=0.1),
               "W_dec": randn(d_sae, d_in, scale=0.3), "b_dec": randn(d_in, scale=0.1)},
              os.path.join(root, "layer_9.safetensors"))
    return {"layer_9": ("layer_9.safetensors", "mwhanna/qwen3-0.6b-transcoders-lowl0", None,
                        L.mwhanna_transcoder_huggingface_loader, d_in)}


# --- qwen_scope, connor_rob_hook_z, goodfire, deepseek_r1 (torch-pickled files) ---------------

def qwen_scope(root):
    """Qwen Scope: layerN.sae.pt, a torch.save'd dict with W_enc [d_sae, d_in] and
    W_dec [d_in, d_sae]; TopK with k from the repo id. SAELens takes d_in from its table of
    models and d_sae from the repo id: the fixture's sizes are given as overrides."""
    torch.manual_seed(800)
    d_in, d_sae = 32, 64
    torch.save({"W_enc": randn(d_sae, d_in, scale=0.3), "W_dec": randn(d_in, d_sae, scale=0.3),
                "b_enc": randn(d_sae, scale=0.1), "b_dec": randn(d_in, scale=0.1)},
               os.path.join(root, "layer3.sae.pt"))
    return {"layer3": ("layer3.sae.pt", "Qwen/SAE-Res-Qwen3-1.7B-Base-W32K-L0_50", None,
                       L.qwen_scope_sae_huggingface_loader, d_in, {"d_in": d_in, "d_sae": d_sae})}


def connor_rob_hook_z(root):
    """GPT-2 hook_z SAEs: NAME.pt (a torch.save'd state dict in SAELens' names) + NAME_cfg.json;
    d_in = 8 heads x 4."""
    torch.manual_seed(900)
    d_in, d_sae = 32, 64
    name = "gpt2-small_L5_Hcat_z_lr1.20e-03_l11.00e+00_ds24576_bs4096_dc1.00e-06_rsanthropic_rie25000_nr4_v9"
    torch.save({"W_enc": randn(d_in, d_sae, scale=0.3), "W_dec": randn(d_sae, d_in, scale=0.3),
                "b_enc": randn(d_sae, scale=0.1), "b_dec": randn(d_in, scale=0.1)},
               os.path.join(root, name + ".pt"))
    with open(os.path.join(root, name + "_cfg.json"), "w") as f:
        json.dump({"act_size": d_in, "dict_size": d_sae, "act_name": "blocks.5.attn.hook_z",
                   "layer": 5, "site": "z", "seed": 49, "l1_coeff": 1.0}, f, indent=1)
    return {"L5": (name + ".pt", "ckkissane/attn-saes-gpt2-small-all-layers", None,
                   L.connor_rob_hook_z_huggingface_loader, d_in)}


def goodfire(root):
    """Goodfire: FILE.pth, a torch.save'd state dict of Linear layers encoder_linear,
    decoder_linear; SAELens' sizes (the real model's) given as overrides."""
    torch.manual_seed(1000)
    d_in, d_sae = 32, 64
    weights = {k.replace("coder.", "coder_linear."): v
               for k, v in linear_weights(d_in, d_sae, torch.float32).items()}
    torch.save(weights, os.path.join(root, "Llama-3.1-8B-Instruct-SAE-l19.pth"))
    return {"l19": ("Llama-3.1-8B-Instruct-SAE-l19.pth", "Goodfire/Llama-3.1-8B-Instruct-SAE-l19",
                    None, L.get_goodfire_huggingface_loader, d_in,
                    {"d_in": d_in, "d_sae": d_sae})}


def deepseek_r1(root):
    """DeepSeek R1 Distill: FILE.pt, a torch.save'd state dict of Linear layers encoder,
    decoder (bfloat16); SAELens' sizes (the real model's) given as overrides."""
    torch.manual_seed(1100)
    d_in, d_sae = 32, 64
    torch.save(linear_weights(d_in, d_sae, torch.bfloat16),
               os.path.join(root, "DeepSeek-R1-Distill-Llama-8B-SAE-l19.pt"))
    return {"l19": ("DeepSeek-R1-Distill-Llama-8B-SAE-l19.pt",
                    "qresearch/DeepSeek-R1-Distill-Llama-8B-SAE-l19", None,
                    L.deepseek_r1_sae_huggingface_loader, d_in, {"d_in": d_in, "d_sae": d_sae})}


# --- main ----------------------------------------------------------------------------------

FORMATS = {"gemma_3": gemma_3, "gemma_2": gemma_2, "dictionary_learning_1": dictionary_learning_1, "llama_scope": llama_scope,
           "llama_scope_r1_distill": llama_scope_r1_distill,
           "gemma_2_transcoder": gemma_2_transcoder, "mwhanna_transcoder": mwhanna_transcoder,
           "qwen_scope": qwen_scope, "connor_rob_hook_z": connor_rob_hook_z, "goodfire": goodfire,
           "deepseek_r1": deepseek_r1}


def main():
    only = sys.argv[1:]  # optional: regenerate these formats only
    for name, build in FORMATS.items():
        if only and name not in only:
            continue
        root = os.path.join(ROOT, name)
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        fake_hub(root)
        cases, golden = {}, {}
        for case, (folder, repo_id, factor, loader, d_in, *overrides) in build(root).items():
            torch.manual_seed(7)
            x = randn(N_TOKENS, d_in, scale=1.5)
            cfg, acts = saelens_encode(loader, repo_id, folder, factor, x, *overrides or [{}])
            assert (acts > 0).sum() >= N_TOKENS, f"{name}/{case}: too few active latents"
            golden[f"{case}.x"] = x.contiguous()
            golden[f"{case}.acts"] = acts.to(torch.float32).contiguous()
            cases[case] = dict(repo_id=repo_id, folder=folder, norm_scaling_factor=factor,
                               hook_name=cfg.metadata.hook_name,
                               hf_hook_name=getattr(cfg.metadata, "hf_hook_name", None),
                               d_in=cfg.d_in, d_sae=cfg.d_sae)
        save_file(golden, os.path.join(root, "golden.safetensors"))
        with open(os.path.join(root, "cases.json"), "w") as f:
            json.dump(cases, f, indent=1, sort_keys=True)
        print(name, {c: (v["hook_name"], v["hf_hook_name"]) for c, v in cases.items()})
    print("sae-lens", sae_lens.__version__, "torch", torch.__version__)


if __name__ == "__main__":
    main()
