//! Counting encoded slices into the per-threshold accumulators. On the CPU the slice is
//! counted on the caller's thread (the forward pass already has every core). With an
//! accelerator it is counted on a second host thread while the device encodes the next slice:
//! double-buffered, with at most one slice in counting and one being produced.

use crate::activations::{ActiveBits, Batch};
use crate::pairs::CoocCounts;
use anyhow::{anyhow, Result};
use std::sync::Arc;
use std::thread::JoinHandle;

/// One encoded slice of a batch, as the counters take it.
pub enum Encoded {
    /// Host activations, `rows × d_sae` row-major, thresholded here.
    Dense(Vec<f32>),
    /// Bits thresholded where the SAE ran.
    Bits(ActiveBits),
}

/// A slice to count: its activations, its batch and its first row there (for error messages).
pub struct Slice {
    pub batch: Arc<Batch>,
    pub first_row: usize,
    pub encoded: Encoded,
}

/// What a counting thread hands back: the counters, the slice's buffer for reuse, the result.
type Counted = (Vec<CoocCounts>, Option<Vec<f32>>, Result<()>);

/// The accumulators of every threshold and, when overlapping, the slice being counted.
pub struct Counting {
    counters: Option<Vec<CoocCounts>>,
    cuts: Arc<Vec<Vec<f32>>>,
    overlap: bool,
    pending: Option<JoinHandle<Counted>>,
    spare: Option<Vec<f32>>,
}

impl Counting {
    /// Counters for the cuts `cuts` (one per threshold, `sae::threshold_cut`), counting on a
    /// second thread when `overlap`.
    pub fn new(counters: Vec<CoocCounts>, cuts: Vec<Vec<f32>>, overlap: bool) -> Self {
        Self {
            counters: Some(counters),
            cuts: Arc::new(cuts),
            overlap,
            pending: None,
            spare: None,
        }
    }

    /// An activation buffer to encode the next slice into: the one a counted slice gave back,
    /// so that two buffers alternate.
    pub fn buffer(&mut self) -> Vec<f32> {
        self.spare.take().unwrap_or_default()
    }

    /// Counts `slice`: now, or (overlapping) on a thread after the previous slice is done.
    pub fn submit(&mut self, slice: Slice) -> Result<()> {
        self.wait()?;
        let mut counters = self.counters.take().expect("counters are home after wait");
        let cuts = Arc::clone(&self.cuts);
        if self.overlap {
            self.pending = Some(std::thread::spawn(move || {
                let result = count(&mut counters, &cuts, &slice);
                (counters, slice.into_buffer(), result)
            }));
            return Ok(());
        }
        let result = count(&mut counters, &cuts, &slice);
        self.counters = Some(counters);
        self.spare = slice.into_buffer();
        result
    }

    /// Waits for the slice being counted and returns the counters, up to date.
    pub fn wait(&mut self) -> Result<&mut Vec<CoocCounts>> {
        if let Some(thread) = self.pending.take() {
            let (counters, buffer, result) = thread
                .join()
                .map_err(|_| anyhow!("internal: the counting thread panicked"))?;
            self.counters = Some(counters);
            self.spare = buffer;
            result?;
        }
        Ok(self
            .counters
            .as_mut()
            .expect("counters are home after wait"))
    }

    /// The counters once every submitted slice is counted (taken: counting is over).
    pub fn finish(&mut self) -> Result<Vec<CoocCounts>> {
        self.wait()?;
        Ok(self.counters.take().expect("counters are home after wait"))
    }
}

impl Slice {
    fn into_buffer(self) -> Option<Vec<f32>> {
        match self.encoded {
            Encoded::Dense(values) => Some(values),
            Encoded::Bits(_) => None,
        }
    }
}

/// Adds the slice to every threshold's counter; a NaN or infinite activation is an error
/// naming its window and position.
fn count(counters: &mut [CoocCounts], cuts: &[Vec<f32>], slice: &Slice) -> Result<()> {
    let non_finite = |row: usize, value: f32| {
        slice
            .batch
            .non_finite(slice.first_row + row, value, "SAE activation")
    };
    match &slice.encoded {
        Encoded::Dense(acts) => {
            for (counter, cut) in counters.iter_mut().zip(cuts) {
                counter.add_batch(acts, cut).map_err(|nan| {
                    let d_sae = cut.len();
                    let row = &acts[nan.row * d_sae..(nan.row + 1) * d_sae];
                    let value = row.iter().copied().find(|v| !v.is_finite());
                    non_finite(nan.row, value.unwrap_or(f32::NAN))
                })?;
            }
        }
        Encoded::Bits(bits) => {
            if let Some((row, value)) = bits.non_finite {
                return Err(non_finite(row, value));
            }
            for (counter, words) in counters.iter_mut().zip(&bits.per_threshold) {
                counter.add_bits(words, bits.words_per_row);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activations::DeviceCuts;
    use candle_core::{Device, Tensor};

    const D_SAE: usize = 40;

    /// Rows of `D_SAE` activations with a few latents above 0.5 and 1.0.
    fn rows(n: usize, seed: usize) -> Vec<f32> {
        (0..n * D_SAE)
            .map(|i| match (i * 31 + seed * 17) % 13 {
                0 => 0.7,
                1 => 1.5,
                _ => 0.0,
            })
            .collect()
    }

    fn counting(overlap: bool) -> Counting {
        let cuts = vec![vec![0.5; D_SAE], vec![1.0; D_SAE]];
        let counters = cuts.iter().map(|_| CoocCounts::new(D_SAE)).collect();
        Counting::new(counters, cuts, overlap)
    }

    fn batch(windows: usize) -> Arc<Batch> {
        Arc::new(Batch::every_position(0, vec![vec![7; 4]; windows], 4))
    }

    fn bits(acts: &[f32]) -> Encoded {
        let cuts = [vec![0.5; D_SAE], vec![1.0; D_SAE]];
        let device = Device::Cpu;
        let t = Tensor::from_slice(acts, (acts.len() / D_SAE, D_SAE), &device).unwrap();
        Encoded::Bits(
            DeviceCuts::new(&cuts, D_SAE, &device)
                .unwrap()
                .apply(&t)
                .unwrap(),
        )
    }

    #[test]
    fn overlapped_and_bit_slices_count_as_host_slices_do() {
        let slices: Vec<Vec<f32>> = (0..5).map(|s| rows(8, s)).collect();
        let mut inline = counting(false);
        let mut overlapped = counting(true);
        let mut from_bits = counting(true);
        for acts in &slices {
            let slice = |encoded| Slice {
                batch: batch(2),
                first_row: 0,
                encoded,
            };
            inline.submit(slice(Encoded::Dense(acts.clone()))).unwrap();
            overlapped
                .submit(slice(Encoded::Dense(acts.clone())))
                .unwrap();
            from_bits.submit(slice(bits(acts))).unwrap();
        }
        // Buffers come back for reuse once their slice is counted.
        assert_eq!(overlapped.wait().unwrap()[0].tokens(), 40);
        assert_eq!(overlapped.buffer().len(), 8 * D_SAE);
        let expected = inline.finish().unwrap();
        assert!(expected[0].get(0, 0) > 0 && expected[1].tokens() == 40);
        assert!(expected[0] != expected[1]);
        assert!(overlapped.finish().unwrap() == expected);
        assert!(from_bits.finish().unwrap() == expected);
    }

    #[test]
    fn a_non_finite_activation_counted_on_the_thread_names_its_position() {
        for encoded in [true, false] {
            let mut acts = rows(8, 1);
            acts[5 * D_SAE + 3] = f32::NAN;
            let mut counting = counting(true);
            let encoded = if encoded {
                bits(&acts)
            } else {
                Encoded::Dense(acts)
            };
            let slice = Slice {
                batch: batch(4),
                first_row: 8,
                encoded,
            };
            // The error surfaces when the slice is waited for (here: at the next wait).
            counting.submit(slice).unwrap();
            let err = counting.wait().unwrap_err().to_string();
            // Row 8 + 5 = 13: window 3, position 1.
            assert!(err.contains("NaN at window 3 position 1"), "{err}");
        }
    }
}
