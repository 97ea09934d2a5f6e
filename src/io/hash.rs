//! File fingerprints: the full SHA-256 of a file, and a cheap sampled one for files too large
//! to read whole every run.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// How [`sampled_sha256`] reads a file: whole below `whole_below` bytes, else `blocks` blocks
/// of `block_bytes` spread evenly over it (first and last included).
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    pub whole_below: u64,
    pub blocks: u64,
    pub block_bytes: u64,
}

impl Sampling {
    /// Model weights: whole below 64 MiB, else 16 blocks of 1 MiB.
    pub const WEIGHTS: Self = Self {
        whole_below: 64 << 20,
        blocks: 16,
        block_bytes: 1 << 20,
    };
    /// Dataset files, possibly thousands of them: whole below 1 MiB, else 4 blocks of 64 KiB.
    pub const TEXT: Self = Self {
        whole_below: 1 << 20,
        blocks: 4,
        block_bytes: 64 << 10,
    };
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `bytes`, as hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// SHA-256 of a whole file, as hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// A fingerprint of a possibly huge file: its whole SHA-256 when small, else the SHA-256 of
/// its size, modification time and the sampled blocks (see [`Sampling`]). Any change to size,
/// mtime or a sampled block changes it.
pub fn sampled_sha256(path: &Path, sampling: Sampling) -> Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
    let size = meta.len();
    if size < sampling.whole_below.max(sampling.block_bytes) {
        return sha256_file(path);
    }
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let mut hasher = Sha256::new();
    hasher.update(format!("sampled size {size} mtime {mtime}").as_bytes());
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut block = vec![0u8; sampling.block_bytes as usize];
    let last_start = size - sampling.block_bytes;
    let steps = sampling.blocks.max(2) - 1;
    for k in 0..=steps {
        let offset = last_start * k / steps;
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut block))
            .with_context(|| format!("cannot read {} at byte {offset}", path.display()))?;
        hasher.update(&block);
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_standard_vectors() {
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(sha256_file(&path).unwrap(), sha256_bytes(b"abc"));
        assert_eq!(
            sampled_sha256(&path, Sampling::TEXT).unwrap(),
            sha256_bytes(b"abc")
        );
    }

    #[test]
    fn sampled_hash_sees_a_change_in_a_sampled_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let mut bytes = vec![7u8; (Sampling::TEXT.whole_below + 12345) as usize];
        // The same mtime for both versions, so only the sampled last block tells them apart.
        let write_at_fixed_time = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
            File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(when)
                .unwrap();
        };
        write_at_fixed_time(&bytes);
        let before = sampled_sha256(&path, Sampling::TEXT).unwrap();
        assert_eq!(sampled_sha256(&path, Sampling::TEXT).unwrap(), before);
        let last = bytes.len() - 1;
        bytes[last] = 8;
        write_at_fixed_time(&bytes);
        assert_ne!(sampled_sha256(&path, Sampling::TEXT).unwrap(), before);
    }
}
