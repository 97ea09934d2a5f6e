//! saecooc: find interpretable subspaces in sparse autoencoders by latent co-occurrence
//! (Clarke, Bhatnagar & Bloom, 2024).
//!
//! Stages: [`config`] (TOML), [`model`] (language models to a hook), [`sae`] (SAELens /
//! Gemma Scope SAEs), [`data`] (text → token windows), [`cooc`] (counting and Jaccard), [`graph`] (edge
//! thresholds, subgraphs, node tables and pictures).
//! Supporting modules: [`hub`] (local paths and the Hugging Face hub), [`registry`] (the
//! paper's releases), [`layout`] (results file names), [`progress`], [`npz`], [`atomic`], [`pyfmt`] and
//! [`synth`] (synthetic models for the offline demo, tests and benchmarks).

pub mod activations;
pub mod atomic;
pub mod bench;
pub mod config;
pub mod cooc;
pub mod data;
pub mod export;
pub mod graph;
pub mod hub;
pub mod model;
pub mod npz;
pub mod pairs;
pub mod pca;
pub mod plot;
pub mod progress;
pub mod pyfmt;
pub mod registry;
pub mod results;
pub mod sae;
pub mod sources;
pub mod stats;
pub mod synth;
pub mod tokenizer;
pub mod train;
