//! The integration tests, one binary: `cargo test --release --test it -- MODULE::` runs one module.
//! `common` and `explorer_fixture` hold the fixtures and helpers the modules share.

mod common;
mod explorer_fixture;

mod activation_stream;
mod bench_sweep;
mod centring;
mod cli;
mod config_names;
mod corpus;
mod explorer;
mod explorer_scale;
mod field_saes;
mod gemma_scope;
mod golden_decoder_hooks;
mod golden_decoders;
mod golden_gpt2;
mod golden_neox;
mod graphs;
mod hook_sets;
mod hostile;
mod hub;
mod hub_configs;
mod hub_streaming;
mod original_configs;
mod ownership;
mod pca;
mod progress;
mod provenance;
mod resilience;
mod result_sets;
mod sae_encode;
mod sae_files;
mod sae_formats;
mod sae_selection;
mod serve;
mod shard_auto;
mod slurm;
mod stats;
mod strict_inputs;
mod subspace;
mod sweeps;
mod tokenizer;
mod train;
mod wide;
mod windows;
