//! The 5×5 median of the Du filter's magnitude spectrum: a pruned Batcher
//! selection network run on SIMD blocks, over half the spectrum thanks to
//! its point symmetry, in f32 (the median only sets a noise floor; f32
//! doubles the lanes per instruction and halves the memory traffic).
//! Hand-written: no maintained crate offers a vectorised fixed-size median
//! filter.

use ndarray::Array2;
use rayon::prelude::*;

/// Selection network for the median (index 12) of 25 values: Batcher's
/// odd–even merge sort of 32 wires restricted to the 25 real ones (the
/// padding wires hold +∞ and never move) and pruned backwards to the
/// comparators that influence wire 12. Entries `(a, b, kind)`, a < b:
/// kind 0 = compare-exchange, 1 = only min(a, b) → a is used later,
/// 2 = only max(a, b) → b. Verified by the 0–1 principle over all 2²⁵
/// inputs in the tests.
const MEDIAN25: [(usize, usize, u8); 113] = [
    (0, 1, 0),
    (2, 3, 0),
    (0, 2, 0),
    (1, 3, 0),
    (1, 2, 0),
    (4, 5, 0),
    (6, 7, 0),
    (4, 6, 0),
    (5, 7, 0),
    (5, 6, 0),
    (0, 4, 0),
    (2, 6, 0),
    (2, 4, 0),
    (1, 5, 0),
    (3, 7, 0),
    (3, 5, 0),
    (1, 2, 0),
    (3, 4, 0),
    (5, 6, 0),
    (8, 9, 0),
    (10, 11, 0),
    (8, 10, 0),
    (9, 11, 0),
    (9, 10, 0),
    (12, 13, 0),
    (14, 15, 0),
    (12, 14, 0),
    (13, 15, 0),
    (13, 14, 0),
    (8, 12, 0),
    (10, 14, 0),
    (10, 12, 0),
    (9, 13, 0),
    (11, 15, 0),
    (11, 13, 0),
    (9, 10, 0),
    (11, 12, 0),
    (13, 14, 0),
    (0, 8, 0),
    (4, 12, 0),
    (4, 8, 0),
    (2, 10, 0),
    (6, 14, 0),
    (6, 10, 0),
    (2, 4, 0),
    (6, 8, 0),
    (10, 12, 0),
    (1, 9, 0),
    (5, 13, 0),
    (5, 9, 0),
    (3, 11, 0),
    (7, 15, 1),
    (7, 11, 0),
    (3, 5, 0),
    (7, 9, 0),
    (11, 13, 0),
    (1, 2, 0),
    (3, 4, 0),
    (5, 6, 0),
    (7, 8, 0),
    (9, 10, 0),
    (11, 12, 0),
    (13, 14, 1),
    (16, 17, 0),
    (18, 19, 0),
    (16, 18, 0),
    (17, 19, 0),
    (17, 18, 0),
    (20, 21, 0),
    (22, 23, 0),
    (20, 22, 0),
    (21, 23, 0),
    (21, 22, 0),
    (16, 20, 0),
    (18, 22, 0),
    (18, 20, 0),
    (17, 21, 0),
    (19, 23, 0),
    (19, 21, 0),
    (17, 18, 0),
    (19, 20, 0),
    (21, 22, 0),
    (16, 24, 0),
    (20, 24, 0),
    (18, 20, 0),
    (22, 24, 0),
    (19, 21, 0),
    (17, 18, 0),
    (19, 20, 0),
    (21, 22, 0),
    (23, 24, 0),
    (0, 16, 2),
    (8, 24, 1),
    (8, 16, 2),
    (4, 20, 2),
    (12, 20, 1),
    (12, 16, 1),
    (2, 18, 2),
    (10, 18, 1),
    (6, 22, 1),
    (6, 10, 2),
    (10, 12, 2),
    (1, 17, 2),
    (9, 17, 2),
    (5, 21, 2),
    (13, 21, 1),
    (13, 17, 1),
    (3, 19, 2),
    (11, 19, 1),
    (7, 23, 1),
    (7, 11, 2),
    (11, 13, 1),
    (11, 12, 2),
];

/// Lanes of one block: the network runs on `[[f32; LANES]; 25]`, every
/// comparator a straight loop over the lanes that vectorises.
const LANES: usize = 16;

/// Run the network on a block (portable version: LLVM keeps the float
/// selects as branches, so x86-64 uses the SSE2/AVX version below).
#[cfg(not(target_arch = "x86_64"))]
fn median25_block(w: &mut [[f32; LANES]; 25]) {
    for &(a, b, kind) in &MEDIAN25 {
        let (lo, hi) = w.split_at_mut(b);
        let (wa, wb) = (&mut lo[a], &mut hi[0]);
        for l in 0..LANES {
            let (x, y) = (wa[l], wb[l]);
            if kind != 2 {
                wa[l] = x.min(y);
            }
            if kind != 1 {
                wb[l] = x.max(y);
            }
        }
    }
}

/// Run the network on a block with `minps`/`maxps` (SSE2 is part of
/// x86-64; AVX when the CPU has it). The values are finite, so the
/// instructions' NaN rules never apply.
#[cfg(target_arch = "x86_64")]
fn median25_block(w: &mut [[f32; LANES]; 25]) {
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: AVX is present (checked above).
        unsafe { median25_avx(w) }
    } else {
        // SAFETY: SSE2 is part of the x86-64 baseline.
        unsafe { median25_sse2(w) }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn median25_avx(w: &mut [[f32; LANES]; 25]) {
    use std::arch::x86_64::{_mm256_loadu_ps, _mm256_max_ps, _mm256_min_ps, _mm256_storeu_ps};
    let base = w.as_mut_ptr().cast::<f32>();
    for &(a, b, kind) in &MEDIAN25 {
        let (pa, pb) = (base.add(a * LANES), base.add(b * LANES));
        for l in (0..LANES).step_by(8) {
            let x = _mm256_loadu_ps(pa.add(l));
            let y = _mm256_loadu_ps(pb.add(l));
            if kind != 2 {
                _mm256_storeu_ps(pa.add(l), _mm256_min_ps(x, y));
            }
            if kind != 1 {
                _mm256_storeu_ps(pb.add(l), _mm256_max_ps(x, y));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
unsafe fn median25_sse2(w: &mut [[f32; LANES]; 25]) {
    use std::arch::x86_64::{_mm_loadu_ps, _mm_max_ps, _mm_min_ps, _mm_storeu_ps};
    let base = w.as_mut_ptr().cast::<f32>();
    for &(a, b, kind) in &MEDIAN25 {
        let (pa, pb) = (base.add(a * LANES), base.add(b * LANES));
        for l in (0..LANES).step_by(4) {
            let x = _mm_loadu_ps(pa.add(l));
            let y = _mm_loadu_ps(pb.add(l));
            if kind != 2 {
                _mm_storeu_ps(pa.add(l), _mm_min_ps(x, y));
            }
            if kind != 1 {
                _mm_storeu_ps(pb.add(l), _mm_max_ps(x, y));
            }
        }
    }
}

/// 5×5 median with zero padding of a non-negative n×n array, rows in
/// parallel, by the selection network on blocks of `LANES` pixels of a
/// zero-padded copy.
///
/// With `symmetric` the array must be point-symmetric about the centre
/// pixel c = ⌊n/2⌋, M(y, x) = M(2c − y, 2c − x) (indices mod n) — the
/// centred magnitude spectrum of a real image. Where neither the
/// neighbourhood nor its mirror touches the zero padding the median is
/// symmetric too, and the lower half is mirrored from the upper half (half
/// the work); border pixels are computed directly.
pub(super) fn median5x5(mag: &Array2<f32>, symmetric: bool) -> Array2<f32> {
    let n = mag.nrows();
    let np = n + 4 + LANES;
    let mut pad = vec![0.0f32; (n + 4) * np];
    for (y, row) in mag.outer_iter().enumerate() {
        for (d, v) in pad[(y + 2) * np + 2..].iter_mut().zip(row.iter()) {
            *d = *v;
        }
    }
    let pad = &pad;
    let block = |y: usize, x0: usize, w: &mut [[f32; LANES]; 25]| {
        for (k, wk) in w.iter_mut().enumerate() {
            let base = (y + k / 5) * np + x0 + k % 5;
            wk.copy_from_slice(&pad[base..base + LANES]);
        }
        median25_block(w);
    };
    let c = n / 2;
    // Rows/columns whose neighbourhood and mirrored neighbourhood avoid the
    // padding: lo ≤ i ≤ hi.
    let lo = 2usize.max((2 * c + 3).saturating_sub(n));
    let hi = (n.saturating_sub(3)).min((2 * c).saturating_sub(2));
    let mirrored = |y: usize| symmetric && n >= 8 && y > c && y >= lo && y <= hi;
    let mut med = Array2::<f32>::zeros((n, n));
    med.as_slice_mut()
        .unwrap_or(&mut [])
        .par_chunks_mut(n)
        .enumerate()
        .filter(|(y, _)| !mirrored(*y))
        .for_each(|(y, row)| {
            let mut w = [[0.0f32; LANES]; 25];
            let mut x0 = 0;
            while x0 < n {
                block(y, x0, &mut w);
                let m = LANES.min(n - x0);
                row[x0..x0 + m].copy_from_slice(&w[12][..m]);
                x0 += LANES;
            }
        });
    if symmetric {
        let (upper, mut lower) = med.view_mut().split_at(ndarray::Axis(0), c + 1);
        let upper = upper.view();
        lower
            .axis_iter_mut(ndarray::Axis(0))
            .into_par_iter()
            .enumerate()
            .filter(|(i, _)| mirrored(c + 1 + i))
            .for_each(|(i, mut row)| {
                let y = c + 1 + i;
                let src = upper.row(2 * c - y);
                for x in lo..=hi {
                    row[x] = src[2 * c - x];
                }
                // Border columns directly (one block each side).
                let mut w = [[0.0f32; LANES]; 25];
                for x0 in [0, n.saturating_sub(LANES)] {
                    block(y, x0, &mut w);
                    for (l, &v) in w[12].iter().enumerate().take(LANES.min(n)) {
                        let x = x0 + l;
                        if x < lo || x > hi {
                            row[x] = v;
                        }
                    }
                }
            });
    }
    med
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    #[test]
    fn network_selects_the_median_of_every_0_1_input() {
        // 0–1 principle: a comparator network selects rank 12 of every
        // input iff it does for all 2²⁵ binary inputs. Bit-parallel: bit j
        // of word w is input vector 64·w + j; min = AND, max = OR.
        let words = 1usize << (25 - 6);
        let mut bad = 0u64;
        for w in 0..words {
            let mut v = [0u64; 25];
            for (i, vi) in v.iter_mut().enumerate() {
                *vi = if i < 6 {
                    // Low 6 input bits vary within the word.
                    let mut m = 0u64;
                    for j in 0..64u64 {
                        if (j >> i) & 1 == 1 {
                            m |= 1 << j;
                        }
                    }
                    m
                } else if (w >> (i - 6)) & 1 == 1 {
                    u64::MAX
                } else {
                    0
                };
            }
            let mut ones = [0u32; 64];
            for vi in &v {
                for (j, o) in ones.iter_mut().enumerate() {
                    *o += ((vi >> j) & 1) as u32;
                }
            }
            for &(a, b, kind) in &MEDIAN25 {
                let (x, y) = (v[a], v[b]);
                if kind != 2 {
                    v[a] = x & y;
                }
                if kind != 1 {
                    v[b] = x | y;
                }
            }
            for (j, o) in ones.iter().enumerate() {
                // Rank 12 of a 0/1 vector is 1 iff it has ≥ 13 ones.
                let want = u64::from(*o >= 13);
                bad += ((v[12] >> j) & 1) ^ want;
            }
        }
        assert_eq!(bad, 0);
    }

    #[test]
    fn symmetric_median_equals_direct() {
        // Centred magnitude spectra of real images, even and odd n.
        for n in [16usize, 17, 40, 41] {
            let mut rng = StdRng::seed_from_u64(n as u64);
            let img = Array2::from_shape_fn((n, n), |_| rng.gen_range(0.0..1.0f64));
            let c = n / 2;
            let mag = Array2::from_shape_fn((n, n), |(y, x)| {
                // |F(k)| by direct DFT (small n), k centred at c.
                let (ky, kx) = (y as f64 - c as f64, x as f64 - c as f64);
                let mut re = 0.0;
                let mut im = 0.0;
                for ((yy, xx), v) in img.indexed_iter() {
                    let ph = -std::f64::consts::TAU * (ky * yy as f64 + kx * xx as f64) / n as f64;
                    re += v * ph.cos();
                    im += v * ph.sin();
                }
                // Round so that mirrored values are bit-identical.
                (((re * re + im * im).sqrt() * 1e6).round() / 1e6) as f32
            });
            assert_eq!(median5x5(&mag, true), median5x5(&mag, false), "n = {n}");
        }
    }

    #[test]
    fn median_equals_sorting() {
        let mut rng = StdRng::seed_from_u64(5);
        let mag = Array2::from_shape_fn((17, 17), |_| rng.gen_range(0.0..10.0f32).round());
        let med = median5x5(&mag, false);
        for y in 0..17i64 {
            for x in 0..17i64 {
                let mut v = Vec::new();
                for dy in -2..=2 {
                    for dx in -2..=2 {
                        let (yy, xx) = (y + dy, x + dx);
                        v.push(if (0..17).contains(&yy) && (0..17).contains(&xx) {
                            mag[[yy as usize, xx as usize]]
                        } else {
                            0.0
                        });
                    }
                }
                v.sort_by(f32::total_cmp);
                assert_eq!(med[[y as usize, x as usize]], v[12]);
            }
        }
    }
}
