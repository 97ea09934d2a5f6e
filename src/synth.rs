//! Synthetic inputs for the offline demo, tests and benchmarks: a randomly initialised
//! GPT-2-shaped model in Hugging Face's format (with the real GPT-2 tokenizer), a text corpus,
//! and an SAELens-format SAE calibrated on that model so its latents fire sparsely and in
//! related groups.

use crate::config::{
    check_range, check_tensor_size, Config, Generation, Run, Source, MAX_CONTEXT_SIZE,
};
use crate::data::{self, WindowTokens, Windower};
use crate::hub::Location;
use crate::model::{self, HookKind, HookPoint, ModelFiles};
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The real GPT-2 `vocab.json` (OpenAI's `encoder.json`).
pub const GPT2_VOCAB: &[u8] = include_bytes!("../assets/gpt2/vocab.json");
/// The real GPT-2 `merges.txt` (OpenAI's `vocab.bpe`).
pub const GPT2_MERGES: &[u8] = include_bytes!("../assets/gpt2/merges.txt");
/// GPT-2's vocabulary size; `<|endoftext|>` is the last id.
pub const GPT2_VOCAB_SIZE: usize = 50257;

/// Shape of the synthetic model and SAE.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub layers: usize,
    pub d_model: usize,
    pub heads: usize,
    pub n_positions: usize,
    pub d_sae: usize,
    /// The SAE reads `blocks.{hook_layer}.hook_resid_pre`.
    pub hook_layer: usize,
    pub documents: usize,
    pub seed: u64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        Self {
            layers: 2,
            d_model: 64,
            heads: 4,
            n_positions: 128,
            d_sae: 512,
            hook_layer: 1,
            documents: 2000,
            seed: 0,
        }
    }
}

/// Sanity bounds of the synthetic model and corpus.
const MAX_LAYERS: usize = 256;
const MAX_D_MODEL: usize = 16_384;
const MAX_D_SAE: usize = 1 << 24;
const MAX_DOCUMENTS: usize = 10_000_000;

impl SynthOptions {
    /// Range checks of the options (the `synth` flags), before anything is written.
    pub fn validate(&self) -> Result<()> {
        check_range("--layers", self.layers, 1..=MAX_LAYERS)?;
        check_range("--hook-layer", self.hook_layer, ..self.layers)?;
        check_range("--d-model", self.d_model, 1..=MAX_D_MODEL)?;
        check_range("--heads", self.heads, 1..=self.d_model)?;
        anyhow::ensure!(
            self.d_model.is_multiple_of(self.heads),
            "--d-model {} is not a multiple of --heads {}",
            self.d_model,
            self.heads
        );
        check_range("--n-positions", self.n_positions, 2..=MAX_CONTEXT_SIZE)?;
        check_range("--d-sae", self.d_sae, 1..=MAX_D_SAE)?;
        check_range("--documents", self.documents, 1..=MAX_DOCUMENTS)?;
        check_tensor_size(
            "the token embeddings (vocabulary × --d-model)",
            &[GPT2_VOCAB_SIZE, self.d_model],
        )?;
        check_tensor_size(
            "the SAE's encoder (--d-model × --d-sae)",
            &[self.d_model, self.d_sae],
        )
    }
}

/// Checks `--random-jaccard`: 1 to `n` non-zeros per row of an `n`-latent matrix, whose
/// entries (two u32 indices and a float each) fit the memory bound.
pub fn check_random_jaccard(n: usize, nnz_per_row: usize) -> Result<()> {
    check_range("--random-jaccard", nnz_per_row, 1..=n)?;
    check_tensor_size(
        "the random Jaccard entries (--d-sae × --random-jaccard × 3)",
        &[n, nnz_per_row, 3],
    )
}

/// Paths written by [`write_all`].
#[derive(Debug, Clone)]
pub struct SynthPaths {
    pub model: PathBuf,
    pub sae: PathBuf,
    pub corpus: PathBuf,
}

fn normal(rng: &mut StdRng) -> f32 {
    // Box–Muller; deterministic for a seed, unlike candle's thread RNG.
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

fn random_tensor(rng: &mut StdRng, shape: &[usize], std: f32, mean: f32) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| mean + std * normal(rng)).collect();
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

/// Writes a random GPT-2-shaped model (`config.json`, `model.safetensors`, `vocab.json`,
/// `merges.txt`) into `dir`.
pub fn write_gpt2_model(dir: &Path, o: &SynthOptions) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut rng = StdRng::seed_from_u64(o.seed);
    let d = o.d_model;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    tensors.insert(
        "wte.weight".into(),
        random_tensor(&mut rng, &[GPT2_VOCAB_SIZE, d], 0.02, 0.0)?,
    );
    tensors.insert(
        "wpe.weight".into(),
        random_tensor(&mut rng, &[o.n_positions, d], 0.01, 0.0)?,
    );
    let proj_std = 0.02 / (2.0 * o.layers as f32).sqrt();
    for l in 0..o.layers {
        let p = |name: &str| format!("h.{l}.{name}");
        for ln in ["ln_1", "ln_2"] {
            tensors.insert(
                p(&format!("{ln}.weight")),
                random_tensor(&mut rng, &[d], 0.05, 1.0)?,
            );
            tensors.insert(
                p(&format!("{ln}.bias")),
                random_tensor(&mut rng, &[d], 0.02, 0.0)?,
            );
        }
        for (name, d_in, d_out, std) in [
            ("attn.c_attn", d, 3 * d, 0.02),
            ("attn.c_proj", d, d, proj_std),
            ("mlp.c_fc", d, 4 * d, 0.02),
            ("mlp.c_proj", 4 * d, d, proj_std),
        ] {
            tensors.insert(
                p(&format!("{name}.weight")),
                random_tensor(&mut rng, &[d_in, d_out], std, 0.0)?,
            );
            tensors.insert(
                p(&format!("{name}.bias")),
                random_tensor(&mut rng, &[d_out], 0.01, 0.0)?,
            );
        }
    }
    tensors.insert(
        "ln_f.weight".into(),
        random_tensor(&mut rng, &[d], 0.05, 1.0)?,
    );
    tensors.insert(
        "ln_f.bias".into(),
        random_tensor(&mut rng, &[d], 0.02, 0.0)?,
    );
    model::save_safetensors(&tensors, &dir.join("model.safetensors"))?;
    let config = json!({
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": GPT2_VOCAB_SIZE,
        "n_positions": o.n_positions,
        "n_ctx": o.n_positions,
        "n_embd": d,
        "n_layer": o.layers,
        "n_head": o.heads,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "bos_token_id": GPT2_VOCAB_SIZE - 1,
        "eos_token_id": GPT2_VOCAB_SIZE - 1,
    });
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    write_gpt2_tokenizer(dir)
}

/// Writes the bundled GPT-2 `vocab.json` and `merges.txt` into `dir`.
pub fn write_gpt2_tokenizer(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("vocab.json"), GPT2_VOCAB)?;
    std::fs::write(dir.join("merges.txt"), GPT2_MERGES)?;
    Ok(())
}

/// The corpus's topics: each a list of words and the sentence templates they fill.
const TOPICS_TEXT: &str = include_str!("../assets/synth-topics.txt");

/// One topic of the corpus: the words and the templates (`{}` takes a word) they fill.
struct Topic<'a> {
    words: Vec<&'a str>,
    templates: Vec<&'a str>,
}

/// The topics of `text` (the format of `assets/synth-topics.txt`): blocks ended by a blank
/// line, each a `words: a | b | …` line and then one template per line; `#` lines are comments.
fn parse_topics(text: &str) -> Vec<Topic<'_>> {
    let lines = text.lines().filter(|l| !l.starts_with('#'));
    let mut topics: Vec<Topic> = Vec::new();
    let mut open = false;
    for line in lines {
        if line.trim().is_empty() {
            open = false;
        } else if let Some(words) = line.strip_prefix("words: ") {
            topics.push(Topic {
                words: words.split(" | ").collect(),
                templates: Vec::new(),
            });
            open = true;
        } else if let (true, Some(topic)) = (open, topics.last_mut()) {
            topic.templates.push(line);
        }
    }
    topics
}

/// A deterministic English corpus of `n` short documents about a few topics, one per line.
pub fn corpus(n: usize, seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let topics = parse_topics(TOPICS_TEXT);
    let mut out = String::new();
    for _ in 0..n {
        let sentences = rng.random_range(3..9);
        let mut doc = Vec::with_capacity(sentences);
        for _ in 0..sentences {
            let topic = &topics[rng.random_range(0..topics.len())];
            let template = topic.templates[rng.random_range(0..topic.templates.len())];
            let word = topic.words[rng.random_range(0..topic.words.len())];
            doc.push(template.replace("{}", word));
        }
        out.push_str(&doc.join(" "));
        out.push('\n');
    }
    out
}

/// Residual activations (centred per position) of the model at `hook` on the first windows of
/// `corpus_path`: `[n_tokens, d_model]`.
fn sample_residuals(
    model_dir: &Path,
    corpus_path: &Path,
    hook: HookPoint,
    windows: usize,
    ctx: usize,
) -> Result<Tensor> {
    let files = ModelFiles::resolve(
        &Location::Local(model_dir.to_path_buf()),
        &crate::hub::Hub::from_env(false)?,
    )?;
    let model = model::load_model(&files, hook, &Device::Cpu)?;
    let tokenizer =
        crate::tokenizer::gpt2_bpe(&model_dir.join("vocab.json"), &model_dir.join("merges.txt"))?;
    let docs = data::read_documents(corpus_path, "text")?;
    let bos = Some((GPT2_VOCAB_SIZE - 1) as u32);
    let mut windower = Windower::new(
        ctx,
        WindowTokens {
            begin: bos,
            separator: bos,
        },
    );
    let mut batch = Vec::new();
    for ids in crate::tokenizer::encode_documents(&tokenizer, docs)? {
        windower.push_document(&ids);
        while let Some(w) = windower.pop_window() {
            batch.push(w);
        }
        if batch.len() >= windows {
            break;
        }
    }
    batch.truncate(windows);
    anyhow::ensure!(
        !batch.is_empty(),
        "corpus {} is too short to calibrate the SAE",
        corpus_path.display()
    );
    let n = batch.len();
    let ids = Tensor::new(batch.concat(), &Device::Cpu)?.reshape((n, ctx))?;
    let resid = model::center_per_position(&model.activations(&ids)?)?;
    Ok(resid.reshape((n * ctx, model.d_model()))?)
}

/// Writes an SAELens-format SAE for `blocks.{hook_layer}.hook_resid_pre` of the model in
/// `model_dir`, calibrated on `corpus_path`: latents come in groups of 8 that share a direction
/// taken from real residuals (so they co-fire), with firing rates that give an L0 near 32.
pub fn write_calibrated_sae(
    model_dir: &Path,
    corpus_path: &Path,
    sae_dir: &Path,
    o: &SynthOptions,
) -> Result<()> {
    let hook = HookPoint {
        layer: o.hook_layer,
        kind: HookKind::ResidPre,
    };
    let ctx = o.n_positions.min(64);
    let x = sample_residuals(model_dir, corpus_path, hook, 48, ctx)?;
    let (n, d) = x.dims2()?;
    let xs = x.flatten_all()?.to_vec1::<f32>()?;
    let mut rng = StdRng::seed_from_u64(o.seed.wrapping_add(1));
    let rms = (xs.iter().map(|v| v * v).sum::<f32>() / xs.len() as f32).sqrt();
    let b_dec: Vec<f32> = (0..d).map(|_| 0.05 * rms * normal(&mut rng)).collect();
    let unit = |v: Vec<f32>| {
        let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
        v.into_iter().map(|a| a / norm).collect::<Vec<f32>>()
    };
    let groups = o.d_sae.div_ceil(8);
    let concepts: Vec<Vec<f32>> = (0..groups)
        .map(|_| {
            let t = rng.random_range(0..n);
            unit(xs[t * d..(t + 1) * d].to_vec())
        })
        .collect();
    let directions: Vec<Vec<f32>> = (0..o.d_sae)
        .map(|i| {
            unit(
                concepts[i / 8]
                    .iter()
                    .map(|c| c + 0.35 * normal(&mut rng) / (d as f32).sqrt())
                    .collect(),
            )
        })
        .collect();
    let mut w = vec![0f32; d * o.d_sae];
    for (i, dir) in directions.iter().enumerate() {
        for (j, v) in dir.iter().enumerate() {
            w[j * o.d_sae + i] = *v;
        }
    }
    let b_dec_t = Tensor::from_slice(&b_dec, d, &Device::Cpu)?;
    let centred = x.broadcast_sub(&b_dec_t)?;
    // Firing rates log-uniform over a 12× range, with a mean that gives an L0 of about 32
    // (like the paper's GPT-2 SAEs at t = 0), capped at 2.5% for small SAEs.
    let mean_rate = (32.0 / o.d_sae as f64).min(0.025);
    let lowest_rate = mean_rate * 12f64.ln() / 11.0;
    let mut b_enc = vec![0f32; o.d_sae];
    // Pre-activations of the unscaled directions on the sample, a block of latents at a time
    // (a 1M-latent SAE's would not fit at once).
    const BLOCK: usize = 16_384;
    for start in (0..o.d_sae).step_by(BLOCK) {
        let width = BLOCK.min(o.d_sae - start);
        let mut block = vec![0f32; d * width];
        for (k, dir) in directions[start..start + width].iter().enumerate() {
            for (j, v) in dir.iter().enumerate() {
                block[j * width + k] = *v;
            }
        }
        let pre = centred
            .matmul(&Tensor::from_vec(block, (d, width), &Device::Cpu)?)?
            .t()?
            .contiguous()?
            .flatten_all()?
            .to_vec1::<f32>()?;
        for k in 0..width {
            let i = start + k;
            let mut col = pre[k * n..(k + 1) * n].to_vec();
            col.sort_by(f32::total_cmp);
            let p = lowest_rate * (rng.random::<f64>() * 12f64.ln()).exp();
            let q = col[((1.0 - p) * (n - 1) as f64) as usize];
            let mean = col.iter().sum::<f32>() / n as f32;
            let std = (col.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32)
                .sqrt()
                .max(1e-6);
            let scale = 2.0 / std;
            for j in 0..d {
                w[j * o.d_sae + i] *= scale;
            }
            b_enc[i] = -q * scale;
        }
    }
    let mut w_dec = vec![0f32; o.d_sae * d];
    for (i, dir) in directions.iter().enumerate() {
        let norm = rng.random_range(0.5f32..2.0);
        for (j, v) in dir.iter().enumerate() {
            w_dec[i * d + j] = v * norm;
        }
    }
    std::fs::create_dir_all(sae_dir)?;
    let mut tensors = HashMap::new();
    tensors.insert(
        "W_enc".to_string(),
        Tensor::from_vec(w, (d, o.d_sae), &Device::Cpu)?,
    );
    tensors.insert(
        "b_enc".to_string(),
        Tensor::from_vec(b_enc, o.d_sae, &Device::Cpu)?,
    );
    tensors.insert(
        "W_dec".to_string(),
        Tensor::from_vec(w_dec, (o.d_sae, d), &Device::Cpu)?,
    );
    tensors.insert(
        "b_dec".to_string(),
        Tensor::from_vec(b_dec, d, &Device::Cpu)?,
    );
    model::save_safetensors(&tensors, &sae_dir.join("sae_weights.safetensors"))?;
    let cfg = json!({
        "architecture": "standard",
        "d_in": d,
        "d_sae": o.d_sae,
        "hook_name": hook.to_string(),
        "hook_layer": o.hook_layer,
        "apply_b_dec_to_input": true,
        "normalize_activations": "none",
        "context_size": ctx,
        "model_name": "synthetic-gpt2",
        "prepend_bos": true,
        "neuronpedia_id": null,
    });
    std::fs::write(sae_dir.join("cfg.json"), serde_json::to_vec_pretty(&cfg)?)?;
    Ok(())
}

/// Writes model, corpus and SAE under `out`: `model/`, `corpus.txt`,
/// `sae/blocks.{L}.hook_resid_pre/`.
pub fn write_all(out: &Path, o: &SynthOptions) -> Result<SynthPaths> {
    o.validate()?;
    let paths = SynthPaths {
        model: out.join("model"),
        sae: out
            .join("sae")
            .join(format!("blocks.{}.hook_resid_pre", o.hook_layer)),
        corpus: out.join("corpus.txt"),
    };
    write_gpt2_model(&paths.model, o)?;
    std::fs::write(&paths.corpus, corpus(o.documents, o.seed))?;
    write_calibrated_sae(&paths.model, &paths.corpus, &paths.sae, o)?;
    Ok(paths)
}

/// One SAE of [`write_sweep`]: its folder under `sae/` (the id a config names), the layer whose
/// `hook_resid_pre` it reads, and its latents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepSae {
    pub id: String,
    pub layer: usize,
    pub d_sae: usize,
}

/// Writes under `out` what a sweep of `saes` on one model runs on, skipping what an earlier call
/// wrote completely: the model of `o` (every one of its layers) and the corpus as [`write_all`]
/// does, and into `sae/{id}/` an SAE calibrated at each SAE's layer as [`write_calibrated_sae`]
/// does (`o`'s `d_sae` and `hook_layer` are replaced by each SAE's).
pub fn write_sweep(out: &Path, o: &SynthOptions, saes: &[SweepSae]) -> Result<SynthPaths> {
    let each: Vec<SynthOptions> = saes.iter().map(|s| sweep_sae_options(o, s)).collect();
    for options in std::iter::once(o).chain(&each) {
        options.validate()?;
    }
    let paths = SynthPaths {
        model: out.join("model"),
        sae: out.join("sae"),
        corpus: out.join("corpus.txt"),
    };
    // The tokenizer's merges.txt is the model's last file written, the corpus is one write.
    if !paths.model.join("merges.txt").is_file() {
        write_gpt2_model(&paths.model, o)?;
    }
    if !paths.corpus.is_file() {
        crate::io::atomic::write_bytes(&paths.corpus, corpus(o.documents, o.seed).as_bytes())?;
    }
    for (sae, options) in saes.iter().zip(&each) {
        let dir = paths.sae.join(&sae.id);
        // cfg.json is the SAE's last file written.
        if !dir.join("cfg.json").is_file() {
            write_calibrated_sae(&paths.model, &paths.corpus, &dir, options)?;
        }
    }
    Ok(paths)
}

/// The options of `o` with the width and layer of `sae`.
fn sweep_sae_options(o: &SynthOptions, sae: &SweepSae) -> SynthOptions {
    SynthOptions {
        d_sae: sae.d_sae,
        hook_layer: sae.layer,
        ..o.clone()
    }
}

/// What `saecooc synth --out` writes there (folders end in `/`), besides `extra` files.
const SYNTH_OUTPUTS: [&str; 4] = ["model/", "sae/", "corpus.txt", "cooc.toml"];

/// Opens the `synth --out` folder and claims what synth will write there (`extra`: further
/// files, relative), refused when any of it exists and an earlier `synth` did not write it.
pub fn open_out(out: &Path, extra: &[String]) -> Result<crate::results::out_folder::OutFolder> {
    use crate::results::out_folder::{OutFolder, OUT_MANIFEST};
    let mut folder = OutFolder::open(out, OUT_MANIFEST, "synth", &[])?;
    let outputs: Vec<String> = SYNTH_OUTPUTS
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().cloned())
        .collect();
    let paths: Vec<&str> = outputs.iter().map(|s| s.trim_end_matches('/')).collect();
    folder.check_writable(&paths)?;
    folder.claim(outputs)?;
    Ok(folder)
}

/// A `cooc` config that runs on the files of [`write_all`].
pub fn demo_config(paths: &SynthPaths, o: &SynthOptions) -> Result<String> {
    let sae_root = paths.sae.parent().unwrap_or(Path::new("."));
    let config = Config::new(
        Generation::new(
            "synthetic-gpt2",
            "synthetic",
            vec![format!("blocks.{}.hook_resid_pre", o.hook_layer)],
            vec![0.0, 1.5],
            8,
            true,
        ),
        Source::local(&paths.model, sae_root, &paths.corpus),
        Run {
            context_size: Some(o.n_positions.min(64)),
            prompts_per_batch: 16,
            tokens_per_batch: 1024,
            ..Run::default()
        },
    );
    Ok(format!(
        "# Written by `saecooc synth`: a random GPT-2-shaped model with the real GPT-2 tokenizer.\n{}",
        config.to_toml()?
    ))
}

/// The files [`write_random_cooc`] writes into `dir` (relative to the synth folder).
pub fn random_cooc_files(dir: &Path, threshold: f64) -> Vec<String> {
    use crate::results::layout::{cooc_file, CoocKind};
    [CoocKind::Jaccard, CoocKind::Activations]
        .map(|k| cooc_file(dir, k, threshold).to_string_lossy().into_owned())
        .to_vec()
}

/// What [`write_demo`] wrote: the run's config, and the random Jaccard folder if asked for.
#[derive(Debug, Clone)]
pub struct Demo {
    pub config: PathBuf,
    pub random_jaccard: Option<PathBuf>,
}

/// `saecooc synth`: checks the options, then writes the model, SAE and corpus into `out` with
/// `cooc.toml`, a config that runs on them, and with `random_jaccard` (non-zeros per row) a
/// random Jaccard matrix for threshold 1.5 under `out/results/`.
pub fn write_demo(out: &Path, o: &SynthOptions, random_jaccard: Option<usize>) -> Result<Demo> {
    o.validate()?;
    if let Some(nnz) = random_jaccard {
        check_random_jaccard(o.d_sae, nnz)?;
    }
    let random_dir = crate::results::layout::sae_results_dir(
        Path::new("results"),
        "synthetic-gpt2",
        "synthetic",
        &format!("blocks.{}.hook_resid_pre", o.hook_layer),
        8,
    );
    let extra: Vec<String> = match random_jaccard {
        Some(_) => random_cooc_files(&random_dir, 1.5),
        None => Vec::new(),
    };
    open_out(out, &extra)?;
    let paths = write_all(out, o)?;
    let config = out.join("cooc.toml");
    crate::io::atomic::write_bytes(&config, demo_config(&paths, o)?.as_bytes())?;
    let random_jaccard = match random_jaccard {
        Some(nnz) => {
            let dir = out.join(&random_dir);
            write_random_cooc(&dir, o.d_sae, nnz, 1.5, o.seed)?;
            Some(dir)
        }
        None => None,
    };
    Ok(Demo {
        config,
        random_jaccard,
    })
}

/// Writes a random symmetric sparse Jaccard matrix and per-latent totals for `threshold` into
/// `dir`, as `cooc` would: about `nnz_per_row` non-zeros per row, half of them small (below
/// the 2^-10 the edge search can reach) and half heavy-tailed (`0.3·u⁶`); diagonal 1.
/// For measuring `graphs` on wide SAEs without counting first.
pub fn write_random_cooc(
    dir: &Path,
    n: usize,
    nnz_per_row: usize,
    threshold: f64,
    seed: u64,
) -> Result<()> {
    use crate::results::layout::{cooc_file, CoocKind};
    check_random_jaccard(n, nnz_per_row)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut pairs: Vec<(u32, u32, f32)> = Vec::with_capacity(n * nnz_per_row / 2);
    for i in 0..n {
        for _ in 0..nnz_per_row / 2 {
            let j = rng.random_range(0..n);
            if j == i {
                continue;
            }
            let u: f32 = rng.random();
            let w = if rng.random_bool(0.5) {
                u * 9e-4
            } else {
                (0.3 * u.powi(6)).max(1e-6)
            };
            pairs.push((i.min(j) as u32, i.max(j) as u32, w));
        }
    }
    pairs.sort_unstable_by_key(|&(i, j, _)| (i, j));
    pairs.dedup_by_key(|p| (p.0, p.1));
    let mut entries: Vec<(u32, u32, f32)> = pairs
        .iter()
        .flat_map(|&(i, j, w)| [(i, j, w), (j, i, w)])
        .collect();
    drop(pairs);
    entries.sort_unstable_by_key(|&(i, j, _)| (i, j));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let totals: Vec<f32> = (0..n)
        .map(|_| rng.random_range(1..100_000u32) as f32)
        .collect();
    let mut w =
        crate::io::npz::NpzWriter::create(&cooc_file(dir, CoocKind::Jaccard, threshold), true)?;
    let mut next = 0;
    w.add_f32_rows("arr_0", n, n, |i, row| {
        row.fill(0.0);
        row[i] = 1.0;
        while next < entries.len() && entries[next].0 as usize == i {
            row[entries[next].1 as usize] = entries[next].2;
            next += 1;
        }
    })?;
    w.finish()?;
    crate::io::npz::save_f32_compressed(
        &cooc_file(dir, CoocKind::Activations, threshold),
        &[n],
        &totals,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_topics_parse_whole() {
        let topics = parse_topics(TOPICS_TEXT);
        assert_eq!(topics.len(), 6);
        assert_eq!(topics[0].words[..2], ["Monday", "Tuesday"]);
        assert_eq!(topics[3].words[5], "two hundred");
        assert_eq!(topics[5].templates[3], "Pass me the {}, please.");
        for topic in &topics {
            assert!(topic.words.len() >= 7 && topic.templates.len() == 4);
            assert!(topic.templates.iter().all(|t| t.matches("{}").count() == 1));
        }
    }
}
