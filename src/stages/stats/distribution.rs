//! Distributions of observed and expected co-occurrence over the pairs i < j (the
//! `feature_distribution_*` notebooks), as rates per token: observed C[i,j]/T (zeros included)
//! and expected pᵢ·pⱼ = C[i,i]·C[j,j]/T². Box-plot statistics are exact order statistics
//! interpolated as numpy's default quantile, found without listing the n²/2 pairs: observed
//! counts are kept as a count → pairs table, expected values are counted by binary search over
//! the sorted totals. Histograms: [`DENSITY_BINS`] linear bins over [0, max pᵢ], as shares of
//! all pairs.
//!
//! Deliberate differences from the original: pairs i < j rather than the whole matrix
//! (diagonal and both triangles), exact quantiles rather than averages of per-chunk ones,
//! whiskers at the furthest value within 1.5 IQR of the box (as matplotlib draws them) rather
//! than the fences themselves, no outlier lists.

use super::rows::pair_histogram;
use std::collections::BTreeMap;

/// Bins of the linear histograms.
pub(super) const DENSITY_BINS: usize = 100;

/// A box plot's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxStats {
    pub min: f64,
    pub whisker_low: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub whisker_high: f64,
    pub max: f64,
}

/// Observed and expected rates of one SAE at one threshold.
#[derive(Debug, Clone)]
pub struct Distributions {
    /// The histograms' range is [0, `max_rate`] (max pᵢ), in [`DENSITY_BINS`] bins.
    pub max_rate: f64,
    pub observed_density: Vec<f64>,
    pub expected_density: Vec<f64>,
    pub observed: BoxStats,
    pub expected: BoxStats,
}

/// Values in order, known through how many are at most a value and the k-th smallest.
trait Ordered {
    fn len(&self) -> u64;
    fn count_at_most(&self, v: f64) -> u64;
    /// The k-th smallest value (0-based).
    fn nth(&self, k: u64) -> f64;
}

/// Observed rates: pairs by count, zeros apart.
struct ObservedRates<'a> {
    zeros: u64,
    by_count: &'a BTreeMap<u64, u64>,
    tokens: f64,
}

impl Ordered for ObservedRates<'_> {
    fn len(&self) -> u64 {
        self.zeros + self.by_count.values().sum::<u64>()
    }

    fn count_at_most(&self, v: f64) -> u64 {
        if v < 0.0 {
            return 0;
        }
        let below: u64 = self
            .by_count
            .iter()
            .take_while(|(&c, _)| c as f64 / self.tokens <= v)
            .map(|(_, &n)| n)
            .sum();
        self.zeros + below
    }

    fn nth(&self, k: u64) -> f64 {
        if k < self.zeros {
            return 0.0;
        }
        let mut seen = self.zeros;
        for (&c, &n) in self.by_count {
            seen += n;
            if k < seen {
                return c as f64 / self.tokens;
            }
        }
        self.by_count
            .keys()
            .last()
            .map_or(0.0, |&c| c as f64 / self.tokens)
    }
}

/// Expected rates pᵢ·pⱼ = aᵢ·aⱼ/T² over the pairs i < j, from the sorted totals.
struct ExpectedRates {
    sorted: Vec<f64>,
    tokens: f64,
}

impl ExpectedRates {
    fn rate(&self, ai: f64, aj: f64) -> f64 {
        ai * aj / (self.tokens * self.tokens)
    }
}

impl Ordered for ExpectedRates {
    fn len(&self) -> u64 {
        let n = self.sorted.len() as u64;
        n * n.saturating_sub(1) / 2
    }

    fn count_at_most(&self, v: f64) -> u64 {
        let mut ordered = 0u64;
        let mut diagonal = 0u64;
        for &ai in &self.sorted {
            ordered += self.sorted.partition_point(|&x| self.rate(ai, x) <= v) as u64;
            diagonal += u64::from(self.rate(ai, ai) <= v);
        }
        (ordered - diagonal) / 2
    }

    fn nth(&self, k: u64) -> f64 {
        // The smallest value (as f64 bits, ordered for v ≥ 0) with more than k at most it.
        let top = self.sorted.last().map_or(0.0, |&a| self.rate(a, a));
        let (mut lo, mut hi) = (0u64, top.to_bits());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.count_at_most(f64::from_bits(mid)) > k {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        f64::from_bits(lo)
    }
}

/// numpy's default (linear) quantile `q` of the values.
fn quantile(v: &dyn Ordered, q: f64) -> f64 {
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    let h = (n - 1) as f64 * q;
    let lo = h.floor() as u64;
    let (a, t) = (v.nth(lo), h - lo as f64);
    if t == 0.0 || lo + 1 >= n {
        return a;
    }
    let b = v.nth(lo + 1);
    // numpy's lerp: from the nearer end.
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}

fn box_stats(v: &dyn Ordered) -> BoxStats {
    let n = v.len();
    let (q1, median, q3) = (quantile(v, 0.25), quantile(v, 0.5), quantile(v, 0.75));
    let (min, max) = (v.nth(0), v.nth(n.saturating_sub(1)));
    let iqr = q3 - q1;
    let (fence_low, fence_high) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
    let whisker_high = v.nth(v.count_at_most(fence_high).max(1) - 1);
    let whisker_low = if fence_low <= min {
        min
    } else {
        v.nth(v.count_at_most(fence_low.next_down()))
    };
    BoxStats {
        min,
        whisker_low,
        q1,
        median,
        q3,
        whisker_high,
        max,
    }
}

/// Collects the observed counts of a pass over a count matrix.
pub(super) struct DistributionPass<'a> {
    totals: &'a [f32],
    tokens: f64,
    max_rate: f64,
    by_count: BTreeMap<u64, u64>,
    observed_bins: Vec<u64>,
}

impl<'a> DistributionPass<'a> {
    pub(super) fn new(totals: &'a [f32], tokens: f64) -> Self {
        let max_total = totals.iter().map(|&a| a as f64).fold(0.0, f64::max);
        Self {
            totals,
            tokens,
            max_rate: max_total / tokens,
            by_count: BTreeMap::new(),
            observed_bins: vec![0; DENSITY_BINS],
        }
    }

    fn bin(&self, rate: f64) -> usize {
        let b = (rate / self.max_rate * DENSITY_BINS as f64).floor();
        if b.is_finite() {
            (b.max(0.0) as usize).min(DENSITY_BINS - 1)
        } else {
            0
        }
    }

    /// A pair i < j that co-occurred `count` > 0 times.
    pub(super) fn visit(&mut self, count: f64) {
        *self.by_count.entry(count as u64).or_default() += 1;
        let b = self.bin(count / self.tokens);
        self.observed_bins[b] += 1;
    }

    pub(super) fn finish(mut self) -> Distributions {
        let n = self.totals.len() as u64;
        let pairs = n * n.saturating_sub(1) / 2;
        let observed_pairs: u64 = self.by_count.values().sum();
        let zeros = pairs - observed_pairs;
        self.observed_bins[0] += zeros;
        let t2 = self.tokens * self.tokens;
        let expected_bins = pair_histogram(self.totals, DENSITY_BINS, |ai, aj| {
            Some(self.bin(ai * aj / t2))
        });
        let share = |bins: &[u64]| -> Vec<f64> {
            bins.iter()
                .map(|&c| c as f64 / pairs.max(1) as f64)
                .collect()
        };
        let mut sorted: Vec<f64> = self.totals.iter().map(|&a| a as f64).collect();
        sorted.sort_by(f64::total_cmp);
        let observed = ObservedRates {
            zeros,
            by_count: &self.by_count,
            tokens: self.tokens,
        };
        let expected = ExpectedRates {
            sorted,
            tokens: self.tokens,
        };
        Distributions {
            max_rate: self.max_rate,
            observed_density: share(&self.observed_bins),
            expected_density: share(&expected_bins),
            observed: box_stats(&observed),
            expected: box_stats(&expected),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pair's value, sorted: the brute force.
    fn brute(totals: &[f32], counts: &[(usize, usize, f64)], tokens: f64) -> (Vec<f64>, Vec<f64>) {
        let n = totals.len();
        let mut observed = vec![0.0; n * (n - 1) / 2];
        let mut expected = Vec::new();
        let mut k = 0;
        for i in 0..n {
            for j in i + 1..n {
                if let Some(c) = counts.iter().find(|c| c.0 == i && c.1 == j) {
                    observed[k] = c.2 / tokens;
                }
                expected.push(totals[i] as f64 * totals[j] as f64 / (tokens * tokens));
                k += 1;
            }
        }
        observed.sort_by(f64::total_cmp);
        expected.sort_by(f64::total_cmp);
        (observed, expected)
    }

    fn sorted_quantile(v: &[f64], q: f64) -> f64 {
        let h = (v.len() - 1) as f64 * q;
        let lo = h.floor() as usize;
        let t = h - lo as f64;
        if lo + 1 >= v.len() || t == 0.0 {
            return v[lo];
        }
        let (a, b) = (v[lo], v[lo + 1]);
        if t >= 0.5 {
            b - (b - a) * (1.0 - t)
        } else {
            a + (b - a) * t
        }
    }

    #[test]
    fn box_stats_equal_sorting_every_pair() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let n = 40;
        let tokens = 1000.0;
        let totals: Vec<f32> = (0..n).map(|_| rng.random_range(0..300) as f32).collect();
        let mut counts = Vec::new();
        let mut pass = DistributionPass::new(&totals, tokens);
        for i in 0..n {
            for j in i + 1..n {
                let top = totals[i].min(totals[j]) as u32;
                if top > 0 && rng.random_range(0..3) > 0 {
                    let c = rng.random_range(1..=top) as f64;
                    counts.push((i, j, c));
                    pass.visit(c);
                }
            }
        }
        let d = pass.finish();
        let (observed, expected) = brute(&totals, &counts, tokens);
        for (got, v) in [(&d.observed, &observed), (&d.expected, &expected)] {
            for (q, g) in [(0.25, got.q1), (0.5, got.median), (0.75, got.q3)] {
                assert_eq!(g, sorted_quantile(v, q), "q {q}");
            }
            assert_eq!((got.min, got.max), (v[0], v[v.len() - 1]));
            let iqr = got.q3 - got.q1;
            let inside: Vec<f64> = v
                .iter()
                .copied()
                .filter(|&x| x >= got.q1 - 1.5 * iqr && x <= got.q3 + 1.5 * iqr)
                .collect();
            assert_eq!(got.whisker_low, inside[0]);
            assert_eq!(got.whisker_high, inside[inside.len() - 1]);
        }
        let total: f64 = d.expected_density.iter().sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!((d.observed_density.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
