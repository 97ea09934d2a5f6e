//! The results folder, the contract through which the stages talk: its layout and the
//! discovery of SAE folders ([`layout`]) and the node tables the stages read back
//! ([`node_table`]), the manifests ([`manifest`]), and how a stage's outputs are published
//! as one whole set under the folder's lock ([`set`], [`lock`]), the stage graph and the
//! check that a set was computed from its upstream set ([`stage`]), and the output folders of
//! `--out` options ([`out_folder`]). Stages import this module,
//! never each other.

pub mod h5;
pub mod layout;
pub mod lock;
pub mod manifest;
pub mod node_table;
pub mod out_folder;
pub mod set;
pub mod stage;
pub mod subspace_summary;
