//! saecooc: find interpretable subspaces in sparse autoencoders by latent co-occurrence
//! (Clarke, Bhatnagar & Bloom, 2024).
//!
//! On top: [`cli`] (the command line's flags) and [`app`] (each command's flags resolved into
//! its stage's options, the stage run, its summary reported), the only code that calls a stage.
//!
//! [`stages`], side by side (none refers to another; they talk through the results folder):
//! [`cooc`](stages::cooc) (co-occurrence counts and Jaccard), [`graph`](stages::graph) (edge thresholds, subgraphs, node
//! tables, pictures), [`pca`](stages::pca) (PCA of subgraph reconstructions, h5 files), [`subspace`](stages::subspace) (one
//! subgraph in depth: figures, representative points, custom prompts), [`export`](stages::export) (the
//! explorer site), [`stats`](stages::stats) (size effects), [`train`](stages::train) (`train-sae`), [`bench`](stages::bench) (benchmarks).
//!
//! Below them: [`activations`] (the one activation stream: batches of windows, read positions,
//! residual stream, SAE activations), [`examples`] (gathering a subgraph's examples, shared by
//! `pca` and `subspace`), [`pca_solver`] (their exact PCA), [`harness`] (what the stages do around their own
//! work: lock, recover, stage; for those that read node tables also locate, check the upstream
//! sets, publish), [`data`] (documents and SAELens windows), [`tokenizer`],
//! [`model`] (language models to a hook), [`sae`] (SAELens / Gemma Scope SAEs, the active-latent
//! cut), [`inputs`] (a config's inputs, resolved once per run), [`provenance`] (fingerprints of those inputs), [`config`], [`registry`] (the paper's
//! releases), [`hub`] (local paths and the Hugging Face hub), [`pairs`] (exact pair-count
//! stores), [`results`] (the results folder: layout, discovery, node tables), [`plot`], [`io`] (npy,
//! npz and CSR files, atomic writes, Python formatting), [`report`] (progress bars, notes, warnings and summaries; `-q`) and [`synth`] (synthetic models for the offline demo,
//! tests and benchmarks). File formats: docs/formats.md.

pub mod activations;
pub mod app;
pub mod cli;
pub mod config;
pub mod data;
pub mod encoding;
pub mod examples;
pub mod harness;
pub mod hub;
pub mod inputs;
pub mod io;
pub mod json_keys;
pub mod model;
pub mod pairs;
pub mod pca_solver;
pub mod plot;
pub mod provenance;
pub mod registry;
pub mod report;
pub mod resources;
pub mod results;
pub mod sae;
pub mod stages;
pub mod synth;
pub mod tokenizer;
