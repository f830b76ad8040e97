//! Products of float16 weight matrices with a few f32 input rows, reading each weight once.
//!
//! Why: a decoding step multiplies one token's state by every weight of Whisper's decoder, so it
//! is bound by reading the weights from memory, and float16 weights are half the bytes.
//!
//! On x86-64 CPUs with AVX2, FMA and F16C (detected at run time: the binary stays portable) a dot
//! product widens eight weights per instruction; this is the one `unsafe` function of the crate,
//! and `half`'s own conversion could not take its place (it makes a call per eight values, which
//! cost more than the products). Elsewhere each weight row is widened by `half` into a buffer and
//! dotted in eight lanes, a shape the compiler turns into vector instructions.

use half::{f16, slice::HalfFloatSliceExt};
use rayon::prelude::*;

/// Outputs computed per task (enough work to be worth handing to another thread).
const OUTPUTS_PER_TASK: usize = 64;

/// `rows` rows of `x` (`rows × inputs`, row-major) times `w` (`outputs × inputs`, row-major)
/// transposed: `rows × outputs`, row-major. The outputs are shared out over rayon's threads.
///
/// # Panics
/// When `x` or `w` is shorter than its shape says.
pub fn rows_times_transposed(w: &[f16], x: &[f32], rows: usize, inputs: usize) -> Vec<f32> {
    let outputs = w.len().checked_div(inputs).unwrap_or(0);
    assert!(x.len() >= rows * inputs, "x holds fewer than {rows} rows of {inputs}");
    // Each task writes its outputs of every row (output-major); they are put row-major after.
    let mut by_output = vec![0f32; outputs * rows];
    if rows == 0 {
        return by_output;
    }
    by_output.par_chunks_mut(OUTPUTS_PER_TASK * rows).enumerate().for_each(|(task, chunk)| {
        let first = task * OUTPUTS_PER_TASK;
        let mut widened = Vec::new();
        for (o, out) in chunk.chunks_mut(rows).enumerate() {
            let row = &w[(first + o) * inputs..(first + o + 1) * inputs];
            for (r, value) in out.iter_mut().enumerate() {
                *value = dot_f16(row, &x[r * inputs..(r + 1) * inputs], &mut widened);
            }
        }
    });
    if rows == 1 {
        return by_output;
    }
    let mut y = vec![0f32; rows * outputs];
    for (o, per_row) in by_output.chunks(rows).enumerate() {
        for (r, &value) in per_row.iter().enumerate() {
            y[r * outputs + o] = value;
        }
    }
    y
}

/// `Σ w[i] · x[i]`, each float16 widened as it is read; `scratch` is a buffer for CPUs without
/// the vector path.
fn dot_f16(w: &[f16], x: &[f32], scratch: &mut Vec<f32>) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if let Some(sum) = x86::dot(w, x) {
        return sum;
    }
    scratch.resize(w.len(), 0.0);
    w.convert_to_f32_slice(scratch);
    dot(scratch, x)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use half::f16;
    use std::arch::x86_64::*;

    /// [`super::dot_f16`], or `None` when this CPU lacks AVX2, FMA or F16C.
    #[allow(unsafe_code)]
    pub fn dot(w: &[f16], x: &[f32]) -> Option<f32> {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")) {
            return None;
        }
        /// # Safety
        /// The CPU must have AVX2, FMA and F16C.
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn run(w: &[f16], x: &[f32]) -> f32 {
            let n = w.len().min(x.len());
            let (wp, xp) = (w.as_ptr().cast::<u16>(), x.as_ptr());
            let mut acc = [_mm256_setzero_ps(); 4];
            let mut i = 0;
            // SAFETY (every load): `i + 32 <= n`, then `i + 8 <= n`, so each 8-value read at
            // `i + 8 * j` lies inside both slices; unaligned loads take any address.
            while i + 32 <= n {
                for (j, a) in acc.iter_mut().enumerate() {
                    let at = i + 8 * j;
                    let weights = _mm256_cvtph_ps(_mm_loadu_si128(wp.add(at).cast()));
                    *a = _mm256_fmadd_ps(weights, _mm256_loadu_ps(xp.add(at)), *a);
                }
                i += 32;
            }
            while i + 8 <= n {
                let weights = _mm256_cvtph_ps(_mm_loadu_si128(wp.add(i).cast()));
                acc[0] = _mm256_fmadd_ps(weights, _mm256_loadu_ps(xp.add(i)), acc[0]);
                i += 8;
            }
            let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
            lanes.iter().sum::<f32>() + w[i..n].iter().zip(&x[i..n]).map(|(w, x)| w.to_f32() * x).sum::<f32>()
        }
        // SAFETY: the three features were detected above.
        Some(unsafe { run(w, x) })
    }
}

/// `Σ a[i] · b[i]` in eight lanes.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a_tail, b_tail) = (a.chunks_exact(8).remainder(), b.chunks_exact(8).remainder());
    for (a, b) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            lanes[i] += a[i] * b[i];
        }
    }
    lanes.iter().sum::<f32>() + a_tail.iter().zip(b_tail).map(|(a, b)| a * b).sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The products are the plain f32 products of the widened weights, for sizes that are and
    /// are not multiples of the lanes and of a task.
    #[test]
    fn products_match_the_widened_weights() {
        for (inputs, outputs, rows) in [(13, 3, 1), (512, 130, 1), (512, 130, 3), (37, 200, 8)] {
            let value = |i: usize| ((i * 7919) % 101) as f32 / 50.0 - 1.0;
            let w: Vec<f16> = (0..inputs * outputs).map(|i| f16::from_f32(value(i))).collect();
            let x: Vec<f32> = (0..rows * inputs).map(|i| value(i * 31 + 5)).collect();
            let y = rows_times_transposed(&w, &x, rows, inputs);
            assert_eq!(y.len(), rows * outputs);
            for r in 0..rows {
                for o in 0..outputs {
                    let expected: f64 =
                        (0..inputs).map(|i| f64::from(w[o * inputs + i].to_f32()) * f64::from(x[r * inputs + i])).sum();
                    let got = f64::from(y[r * outputs + o]);
                    assert!(
                        (got - expected).abs() < 1e-3,
                        "{inputs}x{outputs}, row {r}, output {o}: {got} vs {expected}"
                    );
                }
            }
        }
    }
}
