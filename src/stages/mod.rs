//! The stages, side by side: each reads what the stage before it published in the results folder
//! and never refers to another stage. What they share lives in the modules beside `stages`.

pub mod bench;
pub mod cooc;
pub mod export;
pub mod graph;
pub mod pca;
pub mod slurm;
pub mod stats;
pub mod subspace;
pub mod train;
