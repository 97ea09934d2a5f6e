//! The results folder, the contract through which the stages talk: its layout and the
//! discovery of SAE folders ([`layout`]) and the node tables the stages read back
//! ([`node_table`]). Stages import this module, never each other.

pub mod h5;
pub mod layout;
pub mod manifest;
pub mod node_table;
