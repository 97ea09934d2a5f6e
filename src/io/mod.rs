//! Generic file formats and file handling, below every stage: `.npy` ([`npy`]), `.npz`
//! ([`npz`]), scipy CSR matrices ([`csr`]), CSV tables ([`csv_table`]), atomic writes ([`atomic`]), file hashes ([`hash`]), Python float and
//! list formatting ([`pyfmt`]) and safe HTML text, JSON and links
//! ([`html`]).

pub mod atomic;
pub mod csr;
pub mod csv_table;
pub mod hash;
pub mod html;
pub mod npy;
pub mod npz;
pub mod pyfmt;
