//! `top_10_tokens`: for each latent, the vocabulary tokens whose embedding has the largest dot
//! product with its (folded, unit-norm) decoder direction, `topk(W_E · W_dec[i])`, as the
//! original computes them (see docs/formats.md, "Graph files"). W_E is TransformerLens'
//! embedding: rows centred for LayerNorm models loaded with `center_writing_weights`.

use crate::tokenizer::TokenDecoder;
use anyhow::{ensure, Result};
use candle_core::{Device, Tensor, D};
use rayon::prelude::*;

/// How many tokens the node table lists per latent.
pub const TOP_TOKENS: usize = 10;

/// Subtracts each row's mean (TransformerLens `center_writing_weights` applied to W_E).
pub fn center_rows(w_e: &Tensor) -> Result<Tensor> {
    Ok(w_e.broadcast_sub(&w_e.mean_keepdim(D::Minus1)?)?)
}

/// The `k` largest entries of `scores`, descending (ties: lower index first). One pass with
/// a small sorted buffer: most scores fail the comparison with the current k-th best.
pub fn top_k_indices(scores: &[f32], k: usize) -> Vec<u32> {
    let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
    for (i, &s) in scores.iter().enumerate() {
        if best.len() == k && (k == 0 || s.total_cmp(&best[k - 1].0).is_le()) {
            continue;
        }
        // Insert after every entry with a score >= s (earlier indices win ties).
        let at = best.partition_point(|&(b, _)| b.total_cmp(&s).is_ge());
        best.insert(at, (s, i as u32));
        best.truncate(k);
    }
    best.into_iter().map(|(_, i)| i).collect()
}

/// Top-`k` token ids of every latent. `w_e` is `[vocab, d]` on `device`; `w_dec` holds the
/// folded decoder rows `[d_sae, d]` row-major. Latents go through the matmul in blocks so the
/// score matrix stays within ~256 MB.
pub fn top_token_ids(w_e: &Tensor, w_dec: &[f32], d: usize, k: usize) -> Result<Vec<Vec<u32>>> {
    let (vocab, d_e) = w_e.dims2()?;
    ensure!(
        d_e == d,
        "embedding width {d_e} does not match the SAE's d_in {d}"
    );
    ensure!(
        d > 0 && w_dec.len().is_multiple_of(d),
        "decoder size is not a multiple of d_in"
    );
    let device: &Device = w_e.device();
    let w_e_t = w_e.t()?.contiguous()?;
    // Score blocks of at most 16 MiB: below glibc's largest mmap threshold, so the buffers are
    // reused instead of mapped and page-faulted afresh (which cost more than the matmul).
    let block = (16 << 20) / (4 * vocab.max(1));
    let block = block.clamp(1, 1024) * d;
    let mut out = Vec::with_capacity(w_dec.len() / d);
    for rows in w_dec.chunks(block) {
        let n = rows.len() / d;
        let dec = Tensor::from_slice(rows, (n, d), device)?;
        let scores = dec.matmul(&w_e_t)?.flatten_all()?.to_vec1::<f32>()?;
        let tops: Vec<Vec<u32>> = scores
            .par_chunks(vocab)
            .map(|s| top_k_indices(s, k))
            .collect();
        out.extend(tops);
    }
    Ok(out)
}

/// Decodes each id on its own, as `tokenizer.decode([id])`.
pub fn decode_tokens(decoder: &TokenDecoder, ids: &[Vec<u32>]) -> Result<Vec<Vec<String>>> {
    ids.iter()
        .map(|row| row.iter().map(|&id| decoder.decode_one(id)).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_descending_with_stable_ties() {
        assert_eq!(top_k_indices(&[0.1, 0.9, 0.5, 0.9, -1.0], 3), [1, 3, 2]);
        assert_eq!(top_k_indices(&[1.0, 2.0], 10), [1, 0]);
        assert!(top_k_indices(&[1.0], 0).is_empty());
        assert_eq!(top_k_indices(&[0.5, 0.5, 0.5, 0.7], 2), [3, 0]);
    }

    /// Against a full sort, on random scores with many ties.
    #[test]
    fn top_k_matches_a_full_sort() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..50 {
            let n = rng.random_range(1..400);
            let scores: Vec<f32> = (0..n).map(|_| rng.random_range(0..20) as f32).collect();
            let mut all: Vec<u32> = (0..n as u32).collect();
            all.sort_by(|&a, &b| {
                scores[b as usize]
                    .total_cmp(&scores[a as usize])
                    .then(a.cmp(&b))
            });
            for k in [1, 10, 500] {
                let want: Vec<u32> = all.iter().copied().take(k).collect();
                assert_eq!(top_k_indices(&scores, k), want);
            }
        }
    }

    /// Against a brute-force f64 computation over a small random embedding and decoder.
    #[test]
    fn top_tokens_match_brute_force() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (vocab, d, f) = (300, 16, 40);
        let w_e: Vec<f32> = (0..vocab * d)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let w_dec: Vec<f32> = (0..f * d).map(|_| rng.random_range(-1.0..1.0)).collect();
        let t = Tensor::from_slice(&w_e, (vocab, d), &Device::Cpu).unwrap();
        let centred = center_rows(&t).unwrap();
        let got = top_token_ids(&centred, &w_dec, d, 10).unwrap();
        for i in 0..f {
            let scores: Vec<f32> = (0..vocab)
                .map(|v| {
                    let row = &w_e[v * d..(v + 1) * d];
                    let mean = row.iter().map(|&x| x as f64).sum::<f64>() / d as f64;
                    row.iter()
                        .zip(&w_dec[i * d..(i + 1) * d])
                        .map(|(&e, &w)| (e as f64 - mean) * w as f64)
                        .sum::<f64>() as f32
                })
                .collect();
            let mut want: Vec<u32> = (0..vocab as u32).collect();
            want.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
            assert_eq!(got[i], want[..10], "latent {i}");
        }
    }
}
