//! Softmax over rows and GELU, in place, on rayon's threads, with an exponential written so the
//! compiler vectorises it.
//!
//! [`exp`] is Cephes' `expf` (range reduction by ln 2, a degree-6 polynomial, the power of two put
//! in the exponent bits): within 2 units in the last place of the C library's over the range a
//! softmax or a GELU uses, without branches or calls, so a loop of it becomes vector instructions.

use rayon::prelude::*;

/// Values per task for the element-wise loops.
const CHUNK: usize = 16 * 1024;

/// `e^x` for f32 (`0` below -87.3, where `expf` is subnormal; `e^88.7` above 88.7).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and taking away 1.5 · 2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let low = x < -87.3;
    let x = x.clamp(-87.3, 88.7);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if low {
        0.0
    } else {
        e * scale
    }
}

/// Each row of `values` (rows of `cols`, row-major) replaced by its softmax.
pub fn softmax_rows(values: &mut [f32], cols: usize) {
    if cols == 0 {
        return;
    }
    values.par_chunks_mut(cols).for_each(|row| {
        let mut maxima = [f32::NEG_INFINITY; 8];
        for chunk in row.chunks(8) {
            for (v, lane) in chunk.iter().zip(maxima.iter_mut()) {
                *lane = if *v > *lane { *v } else { *lane };
            }
        }
        let max = maxima.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut lanes = [0f32; 8];
        for chunk in row.chunks_mut(8) {
            for (v, lane) in chunk.iter_mut().zip(lanes.iter_mut()) {
                *v = exp(*v - max);
                *lane += *v;
            }
        }
        let inverse = 1.0 / lanes.iter().sum::<f32>();
        for v in row.iter_mut() {
            *v *= inverse;
        }
    });
}

/// GELU in its tanh form, as candle's `gelu` (and OpenAI's Whisper through it here) computes it:
/// `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`, with `tanh y = 1 - 2 / (e^{2y} + 1)`.
pub fn gelu(values: &mut [f32]) {
    const SQRT_TWO_OVER_PI: f32 = 0.797_884_6;
    values.par_chunks_mut(CHUNK).for_each(|chunk| {
        for v in chunk.iter_mut() {
            let x = *v;
            let y = SQRT_TWO_OVER_PI * x * (1.0 + 0.044_715 * x * x);
            let tanh = 1.0 - 2.0 / (exp(2.0 * y) + 1.0);
            *v = 0.5 * x * (1.0 + tanh);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_c_librarys() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (ours, theirs) = (exp(x), x.exp());
            worst = worst.max((ours - theirs).abs() / theirs);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_match_the_direct_formula() {
        let cols = 37;
        let mut values: Vec<f32> = (0..cols * 5).map(|i| ((i * 7919) % 97) as f32 / 9.0 - 5.0).collect();
        values[3] = f32::NEG_INFINITY;
        let before = values.clone();
        softmax_rows(&mut values, cols);
        for (row, original) in values.chunks(cols).zip(before.chunks(cols)) {
            let max = original.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = original.iter().map(|v| (v - max).exp()).sum();
            for (got, v) in row.iter().zip(original) {
                assert!((got - (v - max).exp() / sum).abs() < 1e-6);
            }
        }
        assert_eq!(values[3], 0.0);
    }

    #[test]
    fn gelu_matches_the_tanh_formula() {
        let mut values: Vec<f32> = (0..50_000).map(|i| i as f32 / 2_000.0 - 12.5).collect();
        let before = values.clone();
        gelu(&mut values);
        for (got, x) in values.iter().zip(before) {
            let expected = 0.5 * x * (1.0 + (0.797_884_6 * x * (1.0 + 0.044_715 * x * x)).tanh());
            assert!((got - expected).abs() < 2e-6, "gelu({x}) = {got}, expected {expected}");
        }
    }
}
