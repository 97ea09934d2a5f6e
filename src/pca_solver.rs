//! Exact PCA as scikit-learn's `PCA(n_components=k)` computes it: mean-centred, no whitening,
//! explained variance with the n − 1 denominator, and each component's sign flipped so its
//! largest-|.| entry is positive (`svd_flip` with `u_based_decision=False`).
//!
//! Solved in f64 by a symmetric eigendecomposition (nalgebra) of the covariance matrix
//! (d × d) when there are at least as many samples as features, else of the Gram matrix
//! (n × n). Deliberate difference: scikit-learn's "auto" solver switches to a randomized SVD for
//! some shapes; this is always exact.

use nalgebra::{DMatrix, SymmetricEigen};

/// PCA components per subgraph.
pub const COMPONENTS: usize = 3;

/// A fitted PCA.
#[derive(Debug, Clone)]
pub struct Pca {
    /// Per-feature mean (d).
    pub mean: Vec<f64>,
    /// Unit component vectors, `k × d`, strongest first.
    pub components: Vec<Vec<f64>>,
    /// Variance along each component (eigenvalues of the covariance, n − 1 denominator).
    pub explained_variance: Vec<f64>,
    /// Share of the total variance.
    pub explained_variance_ratio: Vec<f64>,
}

/// Eigenpairs of a symmetric matrix, largest eigenvalue first.
fn top_eigenpairs(m: DMatrix<f64>, k: usize) -> Vec<(f64, Vec<f64>)> {
    let eigen = SymmetricEigen::new(m);
    let mut order: Vec<usize> = (0..eigen.eigenvalues.len()).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    order
        .into_iter()
        .take(k)
        .map(|i| {
            (
                eigen.eigenvalues[i],
                eigen.eigenvectors.column(i).iter().copied().collect(),
            )
        })
        .collect()
}

/// Flips `v` so that its entry of largest magnitude (the first, on ties) is positive.
fn flip_sign(v: &mut [f64]) {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if x.abs() > v[best].abs() {
            best = i;
        }
    }
    if v[best] < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
}

/// Fits `k` components to `x` (`n × d`, row-major). None when `k > min(n, d)`, as the original
/// (which then warns and skips the subgraph).
pub fn fit(x: &[f32], n: usize, d: usize, k: usize) -> Option<Pca> {
    if k > n.min(d) || n < 2 || x.len() != n * d {
        return None;
    }
    let mean: Vec<f64> = (0..d)
        .map(|j| (0..n).map(|i| x[i * d + j] as f64).sum::<f64>() / n as f64)
        .collect();
    let centred = DMatrix::from_fn(n, d, |i, j| x[i * d + j] as f64 - mean[j]);
    let denom = (n - 1) as f64;
    let total_variance = centred.iter().map(|v| v * v).sum::<f64>() / denom;
    let pairs: Vec<(f64, Vec<f64>)> = if n >= d {
        top_eigenpairs(centred.tr_mul(&centred) / denom, k)
    } else {
        // Gram route: v = Xcᵀ u / ‖Xcᵀ u‖, same eigenvalues.
        top_eigenpairs(&centred * centred.transpose() / denom, k)
            .into_iter()
            .map(|(value, u)| {
                let v = centred.tr_mul(&nalgebra::DVector::from_vec(u));
                let norm = v.norm().max(f64::MIN_POSITIVE);
                (value, v.iter().map(|x| x / norm).collect())
            })
            .collect()
    };
    let mut components = Vec::with_capacity(k);
    let mut explained_variance = Vec::with_capacity(k);
    for (value, mut v) in pairs {
        flip_sign(&mut v);
        components.push(v);
        explained_variance.push(value.max(0.0));
    }
    let explained_variance_ratio = explained_variance
        .iter()
        .map(|v| {
            if total_variance > 0.0 {
                v / total_variance
            } else {
                0.0
            }
        })
        .collect();
    Some(Pca {
        mean,
        components,
        explained_variance,
        explained_variance_ratio,
    })
}

impl Pca {
    /// Scores `(x − mean) · Vᵀ` (`n × k`, row-major, f32 as the original stores them).
    pub fn transform(&self, x: &[f32], d: usize) -> Vec<f32> {
        x.chunks_exact(d)
            .flat_map(|row| {
                self.components.iter().map(move |c| {
                    row.iter()
                        .zip(&self.mean)
                        .zip(c)
                        .map(|((&v, m), w)| (v as f64 - m) * w)
                        .sum::<f64>() as f32
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    //! Against scikit-learn: `tests/fixtures/golden/pca_sklearn.npz`, written by
    //! `scripts/golden/gen_pca_golden.py` (scikit-learn's PCA on float32 data, as the original
    //! runs it). Tolerances: explained variance 1e-5 relative; components and scores 1e-5 of
    //! their largest magnitude.
    use super::*;
    use crate::io::npz::read_npz;
    use std::path::Path;

    fn golden() -> std::collections::HashMap<String, (Vec<usize>, Vec<f32>)> {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/pca_sklearn.npz");
        read_npz(&path)
            .unwrap()
            .into_iter()
            .map(|(k, a)| (k, (a.shape.clone(), a.to_f32())))
            .collect()
    }

    fn close(got: &[f64], want: &[f32], tol: f64, what: &str) {
        let scale = want
            .iter()
            .fold(0f64, |m, &w| m.max((w as f64).abs()))
            .max(1e-30);
        for (i, (g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w as f64).abs() <= tol * scale,
                "{what}[{i}]: {g} vs scikit-learn {w}"
            );
        }
    }

    #[test]
    fn matches_scikit_learn() {
        let g = golden();
        for case in ["tall", "wide"] {
            let (shape, x) = &g[&format!("{case}_x")];
            let (n, d) = (shape[0], shape[1]);
            let pca = fit(x, n, d, 3).unwrap();
            let (_, ev) = &g[&format!("{case}_explained_variance")];
            for (got, &want) in pca.explained_variance.iter().zip(ev) {
                assert!(
                    ((got - want as f64) / want as f64).abs() < 1e-5,
                    "{case}: explained variance {got} vs {want}"
                );
            }
            let (_, ratio) = &g[&format!("{case}_explained_variance_ratio")];
            close(&pca.explained_variance_ratio, ratio, 1e-5, "ratio");
            let (_, comps) = &g[&format!("{case}_components")];
            let flat: Vec<f64> = pca.components.concat();
            close(&flat, comps, 1e-5, &format!("{case} components"));
            let (_, scores) = &g[&format!("{case}_scores")];
            let ours: Vec<f64> = pca.transform(x, d).iter().map(|&v| v as f64).collect();
            close(&ours, scores, 1e-5, &format!("{case} scores"));
        }
    }

    #[test]
    fn too_few_samples_give_none() {
        assert!(fit(&[1.0, 2.0, 3.0, 4.0], 2, 2, 3).is_none());
        assert!(fit(&[0.0; 12], 2, 6, 3).is_none());
    }

    #[test]
    fn signs_follow_the_largest_entry() {
        let mut v = vec![0.1, -0.9, 0.5];
        flip_sign(&mut v);
        assert_eq!(v, [-0.1, 0.9, -0.5]);
    }
}
