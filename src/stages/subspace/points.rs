//! Which examples to look at closely: the representative points of a PCA (the original's rule)
//! and the points a user names.

use anyhow::{ensure, Result};

/// Extreme points: farthest from the centre of the min–max-scaled PCs.
pub const N_EXTREMES: usize = 3;
/// Middle points: distance closest to the median distance.
pub const N_MIDDLE: usize = 2;

/// Each column of `scores` (`n × 3`) scaled to [0, 1] as scikit-learn's `MinMaxScaler` does
/// in float32 (`x · scale + min` with `scale = 1 / (max − min)`, a zero range counting as 1),
/// then each row's Euclidean distance from (0.5, 0.5, 0.5), in float32.
pub fn distances_from_centre(scores: &[f32], columns: usize) -> Vec<f32> {
    let n = scores.len() / columns.max(1);
    let scaled: Vec<(f32, f32)> = (0..columns)
        .map(|c| {
            let col = (0..n).map(|i| scores[i * columns + c]);
            let lo = col.clone().fold(f32::INFINITY, f32::min);
            let hi = col.fold(f32::NEG_INFINITY, f32::max);
            let range = if hi - lo == 0.0 { 1.0 } else { hi - lo };
            let scale = 1.0 / range;
            (scale, 0.0 - lo * scale)
        })
        .collect();
    (0..n)
        .map(|i| {
            let sq: f32 = (0..columns).fold(0.0, |acc, c| {
                let (scale, min) = scaled[c];
                let v = scores[i * columns + c] * scale + min - 0.5;
                acc + v * v
            });
            sq.sqrt()
        })
        .collect()
}

/// numpy's median of float32 values (the mean of the two middle ones for an even count).
fn median(values: &[f32]) -> f32 {
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    let n = v.len();
    match n {
        0 => f32::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The original's representative points of a PCA (`scores`, `n × 3`): the 3 rows farthest
/// from the centre of the min–max-scaled PCs, farthest first, then the 2 rows whose distance
/// is closest to the median distance, closest first. The two groups may share a row when
/// there are few examples. Ties keep the lower index first (a stable sort; numpy's default
/// sort does not promise an order for ties).
pub fn representative_points(scores: &[f32], columns: usize) -> Vec<usize> {
    let d = distances_from_centre(scores, columns);
    let mut far: Vec<usize> = (0..d.len()).collect();
    far.sort_by(|&a, &b| d[a].total_cmp(&d[b]));
    // The last three of the ascending order, reversed.
    let extremes = far[far.len().saturating_sub(N_EXTREMES)..]
        .iter()
        .rev()
        .copied();
    let m = median(&d);
    let gap: Vec<f32> = d.iter().map(|&x| (x - m).abs()).collect();
    let mut mid: Vec<usize> = (0..d.len()).collect();
    mid.sort_by(|&a, &b| gap[a].total_cmp(&gap[b]));
    extremes.chain(mid.into_iter().take(N_MIDDLE)).collect()
}

/// Checks the `--points` ids against the number of examples.
pub fn check_points(points: &[usize], examples: usize) -> Result<()> {
    for &p in points {
        ensure!(
            p < examples,
            "--points {p}: the subgraph has {examples} examples (point ids 0..{})",
            examples.saturating_sub(1)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed: the scaled points are the rows below divided by 4 (PC ranges all 0..4).
    #[test]
    fn extremes_then_middle() {
        #[rustfmt::skip]
        let scores = [
            2.0, 2.0, 2.0, // centre: distance 0
            0.0, 0.0, 0.0, // corner: √0.75
            4.0, 4.0, 4.0, // corner
            4.0, 0.0, 2.0, // √0.5
            1.0, 2.0, 2.0, // 0.25
            2.0, 3.0, 2.0, // 0.25
            4.0, 4.0, 0.0, // corner
        ];
        // Distances: [0, .866, .866, .707, .25, .25, .866]; median .707 (row 3), then
        // |.25 − .707| = .457 and |.866 − .707| = .159: rows 1, 2, 6 tie at .159.
        assert_eq!(representative_points(&scores, 3), vec![6, 2, 1, 3, 1]);
        let d = distances_from_centre(&scores, 3);
        assert!((d[1] - 0.75f32.sqrt()).abs() < 1e-6 && d[0] == 0.0);
    }

    #[test]
    fn constant_columns_scale_to_zero() {
        let d = distances_from_centre(&[1.0, 5.0, 1.0, 7.0], 2);
        // Column 0 is constant: scaled to 0, so 0.5 away from the centre.
        assert!((d[0] - (0.25f32 + 0.25).sqrt()).abs() < 1e-6);
        assert!(check_points(&[0, 1], 2).is_ok());
        assert!(check_points(&[2], 2)
            .unwrap_err()
            .to_string()
            .contains("0..1"));
    }
}
