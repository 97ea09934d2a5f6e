#!/usr/bin/env python3
"""Writes assets/saelens-registry.json: SAELens' release registry as saecooc reads it.

usage (from the repo root; any Python with the `sae-lens` package, e.g. the golden venv):
    make registry                      # (a venv with sae-lens, no torch needed) or:
    PYTHON -m pip install sae-lens==VERSION pyyaml
    PYTHON scripts/gen-registry.py [--yaml path/to/pretrained_saes.yaml] [--version X]

It reads `pretrained_saes.yaml` from the installed sae-lens package (or --yaml) and writes, one
release per line (so a regeneration diffs by release):
    sae_lens_version, models (the registry's model names: Hugging Face repo and config.json
    model_type, from MODELS below), releases (name, model, repo_id, conversion_func,
    config_overrides, links, and each SAE as [id, path, neuronpedia id, norm_scaling_factor]).
Every registry model must be in MODELS, so a new model in a new sae-lens release fails here,
naming it, instead of being silently unrunnable.
"""
import argparse
import json
import pathlib
import sys

# The registry's model names (TransformerLens names or Hugging Face repos) -> the Hugging Face
# repo saecooc downloads and its config.json `model_type`. TransformerLens' own aliases
# (transformer_lens.loading.get_official_model_name) give the repos of the short names.
MODELS = {
    "gpt2-small": ("openai-community/gpt2", "gpt2"),
    "pythia-70m-deduped": ("EleutherAI/pythia-70m-deduped", "gpt_neox"),
    "gemma-2b": ("google/gemma-2b", "gemma"),
    "gemma-2b-it": ("google/gemma-2b-it", "gemma"),
    "gemma-2-2b": ("google/gemma-2-2b", "gemma2"),
    "gemma-2-9b": ("google/gemma-2-9b", "gemma2"),
    "gemma-2-9b-it": ("google/gemma-2-9b-it", "gemma2"),
    "gemma-2-27b": ("google/gemma-2-27b", "gemma2"),
    "google/gemma-3-270m": ("google/gemma-3-270m", "gemma3_text"),
    "google/gemma-3-270m-it": ("google/gemma-3-270m-it", "gemma3_text"),
    "google/gemma-3-1b-pt": ("google/gemma-3-1b-pt", "gemma3_text"),
    "google/gemma-3-1b-it": ("google/gemma-3-1b-it", "gemma3_text"),
    "google/gemma-3-4b-pt": ("google/gemma-3-4b-pt", "gemma3"),
    "google/gemma-3-4b-it": ("google/gemma-3-4b-it", "gemma3"),
    "google/gemma-3-12b-pt": ("google/gemma-3-12b-pt", "gemma3"),
    "google/gemma-3-12b-it": ("google/gemma-3-12b-it", "gemma3"),
    "google/gemma-3-27b-pt": ("google/gemma-3-27b-pt", "gemma3"),
    "google/gemma-3-27b-it": ("google/gemma-3-27b-it", "gemma3"),
    "mistral-7b": ("mistralai/Mistral-7B-v0.1", "mistral"),
    "meta-llama/Llama-3.1-8B": ("meta-llama/Llama-3.1-8B", "llama"),
    "meta-llama/Llama-3.1-8B-Instruct": ("meta-llama/Llama-3.1-8B-Instruct", "llama"),
    "meta-llama/Llama-3.3-70B-Instruct": ("meta-llama/Llama-3.3-70B-Instruct", "llama"),
    "meta-llama/Meta-Llama-3-8B-Instruct": ("meta-llama/Meta-Llama-3-8B-Instruct", "llama"),
    "deepseek-ai/DeepSeek-R1-Distill-Llama-8B": ("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "llama"),
    "Qwen/Qwen2.5-7B-Instruct": ("Qwen/Qwen2.5-7B-Instruct", "qwen2"),
    "qwen3-0.6b": ("Qwen/Qwen3-0.6B", "qwen3"),
    "qwen3-1.7b": ("Qwen/Qwen3-1.7B", "qwen3"),
    "qwen3-4b": ("Qwen/Qwen3-4B", "qwen3"),
    "qwen3-8b": ("Qwen/Qwen3-8B", "qwen3"),
    "qwen3-14b": ("Qwen/Qwen3-14B", "qwen3"),
    "Qwen/Qwen3-1.7B-Base": ("Qwen/Qwen3-1.7B-Base", "qwen3"),
    "Qwen/Qwen3-8B-Base": ("Qwen/Qwen3-8B-Base", "qwen3"),
    "Qwen/Qwen3-30B-A3B-Base": ("Qwen/Qwen3-30B-A3B-Base", "qwen3_moe"),
    "Qwen/Qwen3.5-2B-Base": ("Qwen/Qwen3.5-2B-Base", "qwen3_5"),
    "Qwen/Qwen3.5-9B-Base": ("Qwen/Qwen3.5-9B-Base", "qwen3_5"),
    "Qwen/Qwen3.5-27B": ("Qwen/Qwen3.5-27B", "qwen3_5"),
    "Qwen/Qwen3.5-35B-A3B-Base": ("Qwen/Qwen3.5-35B-A3B-Base", "qwen3_5_moe"),
    "openai/gpt-oss-20b": ("openai/gpt-oss-20b", "gpt_oss"),
}


def registry_yaml(path):
    import yaml

    if path:
        return pathlib.Path(path).read_text()
    import importlib.util

    # Found without importing sae_lens (which imports torch).
    package = importlib.util.find_spec("sae_lens").submodule_search_locations[0]
    return (pathlib.Path(package) / "pretrained_saes.yaml").read_text()


def installed_version():
    from importlib.metadata import version

    return version("sae-lens")


def release_row(name, release):
    saes = [
        [s["id"], str(s["path"]), s.get("neuronpedia"), s.get("norm_scaling_factor")]
        for s in release["saes"]
    ]
    return {
        "release": name,
        "model": release["model"],
        "repo_id": release["repo_id"],
        "conversion_func": release.get("conversion_func"),
        "config_overrides": release.get("config_overrides"),
        "links": release.get("links"),
        "saes": saes,
    }


def main():
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yaml", help="a pretrained_saes.yaml (default: the installed sae-lens)")
    parser.add_argument("--version", help="the sae-lens version of --yaml")
    parser.add_argument("--out", default="assets/saelens-registry.json")
    args = parser.parse_args()
    registry = yaml.safe_load(registry_yaml(args.yaml))
    version = args.version or installed_version()
    unknown = sorted({r["model"] for r in registry.values()} - MODELS.keys())
    if unknown:
        sys.exit(f"models not in MODELS of {__file__}: {unknown}; add their repo and model_type")
    used = {r["model"] for r in registry.values()}
    models = {m: {"repo": repo, "model_type": t} for m, (repo, t) in MODELS.items() if m in used}
    lines = ["{", f'"sae_lens_version": {json.dumps(version)},', '"generated_by": "scripts/gen-registry.py",']
    lines.append('"models": {')
    lines.append(",\n".join(f"{json.dumps(m)}: {json.dumps(v)}" for m, v in sorted(models.items())))
    lines.append("},")
    lines.append('"releases": [')
    rows = [json.dumps(release_row(n, r), separators=(",", ":")) for n, r in registry.items()]
    lines.append(",\n".join(rows))
    lines.append("]}")
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    n_saes = sum(len(r["saes"]) for r in registry.values())
    print(f"wrote {args.out}: sae-lens {version}, {len(registry)} releases, {n_saes} SAEs")


if __name__ == "__main__":
    main()
