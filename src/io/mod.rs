//! Generic file formats and file handling, below every stage: `.npy` ([`npy`]), `.npz`
//! ([`npz`]), scipy CSR matrices ([`csr`]), atomic writes ([`atomic`]), file hashes ([`hash`]), Python float and
//! list formatting ([`pyfmt`]) and progress bars ([`progress`]).

pub mod atomic;
pub mod csr;
pub mod hash;
pub mod npy;
pub mod npz;
pub mod progress;
pub mod pyfmt;
