//! The crystal lattice measured from the image itself: the shortest
//! reciprocal vectors of the particle's spectrum (docs/methods/columns.md,
//! "Lattice from the image").
//!
//! Along \[001\] the projected structure factor of a cubic ABX3 perovskite
//! (A at (0,0), B/X at (½,½), X at (½,0) and (0,½)) is
//! `F(h,k) = f_A + (−1)^(h+k) f_BX + [(−1)^h + (−1)^k] f_X`: the (1,0)
//! reflections carry `f_A − f_BX` (strong whenever the two column classes
//! differ), (1,1) carries `f_A + f_BX − 2 f_X`. The spectrum of the particle
//! therefore shows the square lattice of the cube constant a itself, and its
//! two shortest independent peaks give the basis. Nothing here depends on a
//! given lattice constant or a tuned peak separation: the given constant is
//! only compared with the measured one afterwards.
//!
//! Steps: the image minus its weighted mean, times a smooth window (the
//! particle mask), is Fourier transformed; each bin's power is divided by
//! the median power of its ring (|k| bin), which flattens the smooth
//! envelope and the diffuse ring of an amorphous support; local maxima of
//! that contrast inside the band of d-spacings are candidate reflections,
//! refined to sub-bin precision by their power centroid. Among pairs of
//! candidates the basis is the pair whose lattice indexes the candidates
//! best (log-contrast of indexed peaks, minus a penalty for predicted
//! reflections inside the band that are not seen), reduced to the shortest
//! vectors (Lagrange–Gauss). The origin is the site of the class that makes
//! `F(1,0)` and `F(0,1)` real and positive: the brighter class (from the
//! phases of the two reflections evaluated exactly at the measured g, with
//! coordinates taken from the window's centroid).
//!
//! Written here: no maintained crate measures a crystal lattice from an
//! image spectrum; the FFT itself is the shared [`crate::fft`] layer.

use ndarray::{Array2, ArrayView2};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::fft::{self, Complex};

mod basis;

use basis::{crystal_basis, index_of};

/// One reflection of the spectrum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Reflection {
    /// Spatial frequency (x, y), cycles/px.
    pub k: [f64; 2],
    /// Power over the median power of its ring.
    pub contrast: f64,
    /// Index (h, k) in the measured basis, when it indexes.
    pub index: Option<(i64, i64)>,
}

/// The lattice measured from the spectrum.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasuredLattice {
    /// Reciprocal basis g₁, g₂ (x, y), cycles/px; the shortest pair.
    pub g: [[f64; 2]; 2],
    /// Real-space basis a₁, a₂ (x, y), px, with a_i · g_j = δ_ij.
    pub a: [[f64; 2]; 2],
    /// A site of the brighter column class (x, y), px.
    pub origin: [f64; 2],
    /// Contrast (power over ring median) at g₁ and g₂.
    pub contrast_g: [f64; 2],
    /// Every candidate reflection (half plane), strongest first.
    pub reflections: Vec<Reflection>,
}

impl MeasuredLattice {
    /// Mean length of a₁ and a₂, px.
    #[must_use]
    pub fn a_px(&self) -> f64 {
        0.5 * (norm(self.a[0]) + norm(self.a[1]))
    }
    /// |a₁|/|a₂| − 1 and the angle between a₁ and a₂ in degrees.
    #[must_use]
    pub fn squareness(&self) -> (f64, f64) {
        let (l1, l2) = (norm(self.a[0]), norm(self.a[1]));
        let c = (self.a[0][0] * self.a[1][0] + self.a[0][1] * self.a[1][1]) / (l1 * l2);
        (l1 / l2 - 1.0, c.clamp(-1.0, 1.0).acos().to_degrees())
    }
}

fn norm(v: [f64; 2]) -> f64 {
    v[0].hypot(v[1])
}

/// Settings of [`measure`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatticeSearch {
    /// Shortest d-spacing searched, px.
    pub d_min_px: f64,
    /// Longest d-spacing searched, px.
    pub d_max_px: f64,
    /// Minimum contrast (power over ring median) of a reflection.
    pub min_contrast: f64,
}

/// Measure the lattice of `image` weighted by `window` (same shape, ≥ 0;
/// the particle region, smooth-edged).
///
/// # Errors
/// Shapes that differ, an empty window, a band outside the Nyquist limit,
/// fewer than two independent reflections (no lattice: noise, amorphous
/// support only).
pub fn measure(
    image: ArrayView2<f64>,
    window: ArrayView2<f64>,
    s: &LatticeSearch,
) -> Result<MeasuredLattice> {
    let (ny, nx) = image.dim();
    if window.dim() != (ny, nx) {
        return Err(Error::shape(
            "lattice window",
            format!("{ny}x{nx}"),
            format!("{:?}", window.dim()),
        ));
    }
    if !(s.d_min_px >= 2.0 && s.d_max_px > s.d_min_px && s.min_contrast > 1.0) {
        return Err(Error::param(
            "lattice search band",
            format!(
                "needs 2 px ≤ d_min < d_max and contrast > 1 (got d = {:.2}…{:.2} px, contrast {})",
                s.d_min_px, s.d_max_px, s.min_contrast
            ),
        ));
    }
    let windowed = Windowed::new(image, window)?;
    let spectrum = Spectrum::new(&windowed.weighted, s);
    let mut cands = spectrum.candidates(s.min_contrast);
    let g = crystal_basis(&cands, (spectrum.k_lo, spectrum.k_hi), s)?;
    let det = g[0][0] * g[1][1] - g[0][1] * g[1][0];
    // a_i · g_j = δ_ij: [a1 a2] = G⁻¹ with G rows g1, g2.
    let a = [
        [g[1][1] / det, -g[1][0] / det],
        [-g[0][1] / det, g[0][0] / det],
    ];
    for c in cands.iter_mut() {
        c.index = index_of(&g, c.k, 0.15);
    }
    let origin = windowed.bright_origin(g, a);
    let dk = spectrum.dk;
    Ok(MeasuredLattice {
        g,
        a,
        origin,
        contrast_g: [
            contrast_near(&cands, g[0], dk),
            contrast_near(&cands, g[1], dk),
        ],
        reflections: cands,
    })
}

/// The image minus its weighted mean, times the window, and the window's
/// centroid.
struct Windowed {
    /// (image − mean)·window.
    weighted: Array2<f64>,
    /// Centroid of the window (x, y), px.
    centre: [f64; 2],
}

impl Windowed {
    fn new(image: ArrayView2<f64>, window: ArrayView2<f64>) -> Result<Self> {
        let wsum: f64 = window.iter().sum();
        if wsum.is_nan() || wsum <= 0.0 {
            return Err(Error::Empty {
                what: "lattice measurement".into(),
                reason: "the particle window is empty".into(),
            });
        }
        let mean = image
            .iter()
            .zip(window.iter())
            .map(|(v, w)| v * w)
            .sum::<f64>()
            / wsum;
        let (cy, cx) = window
            .indexed_iter()
            .fold((0.0, 0.0), |(a, b), ((y, x), w)| {
                (a + y as f64 * w, b + x as f64 * w)
            });
        let centre = [cx / wsum, cy / wsum];
        let weighted: Array2<f64> = ndarray::Zip::from(&image)
            .and(&window)
            .map_collect(|v, w| (v - mean) * w);
        Ok(Windowed { weighted, centre })
    }

    /// A site of the brighter class: where the phases of F at g₁ and g₂
    /// (relative to the window centroid) are zero.
    fn bright_origin(&self, g: [[f64; 2]; 2], a: [[f64; 2]; 2]) -> [f64; 2] {
        let centre = self.centre;
        let phase = |gv: [f64; 2]| -> f64 {
            let mut acc = Complex::new(0.0, 0.0);
            for ((y, x), &v) in self.weighted.indexed_iter() {
                if v != 0.0 {
                    let t = -std::f64::consts::TAU
                        * (gv[0] * (x as f64 - centre[0]) + gv[1] * (y as f64 - centre[1]));
                    acc += Complex::new(v * t.cos(), v * t.sin());
                }
            }
            acc.arg()
        };
        let (p1, p2) = (phase(g[0]), phase(g[1]));
        let t1 = -p1 / std::f64::consts::TAU;
        let t2 = -p2 / std::f64::consts::TAU;
        [
            centre[0] + t1 * a[0][0] + t2 * a[1][0],
            centre[1] + t1 * a[0][1] + t2 * a[1][1],
        ]
    }
}

/// Spatial frequency of FFT bin `k` of `n`, cycles/px.
fn freq(k: usize, n: usize) -> f64 {
    let k = k as f64;
    let n = n as f64;
    if k >= n / 2.0 {
        (k - n) / n
    } else {
        k / n
    }
}

/// The power spectrum with the median power of each ring over the band.
struct Spectrum {
    /// |F|² of the windowed image.
    power: Array2<f64>,
    /// Median power of ring r (|k| = r·dk; NaN for an empty ring; only the
    /// rings of the band plus a margin of two).
    ring_median: Vec<f64>,
    /// Ring width, cycles/px.
    dk: f64,
    /// Band of |k| searched, cycles/px.
    k_lo: f64,
    k_hi: f64,
}

impl Spectrum {
    fn new(weighted: &Array2<f64>, s: &LatticeSearch) -> Self {
        let (ny, nx) = weighted.dim();
        let spec = fft::fft2(weighted.mapv(|v| Complex::new(v, 0.0)).view());
        let power = spec.mapv(|c| c.norm_sqr());
        let (k_lo, k_hi) = (1.0 / s.d_max_px, (1.0 / s.d_min_px).min(0.5));
        let dk = 1.0 / ny.max(nx) as f64;
        let mut sp = Spectrum {
            power,
            ring_median: Vec::new(),
            dk,
            k_lo,
            k_hi,
        };
        // Ring medians over the band (plus a margin of two rings).
        let r_lo = ((k_lo / dk).floor() as usize).saturating_sub(2);
        let r_hi = (k_hi / dk).ceil() as usize + 2;
        let mut rings: Vec<Vec<f64>> = vec![Vec::new(); r_hi + 1];
        for ((ky, kx), &p) in sp.power.indexed_iter() {
            let r = sp.ring_of(ky, kx);
            if (r_lo..=r_hi).contains(&r) {
                rings[r].push(p);
            }
        }
        sp.ring_median = rings
            .iter_mut()
            .map(|v| {
                if v.is_empty() {
                    return f64::NAN;
                }
                let m = v.len() / 2;
                v.select_nth_unstable_by(m, f64::total_cmp);
                v[m]
            })
            .collect();
        sp
    }

    fn ring_of(&self, ky: usize, kx: usize) -> usize {
        let (ny, nx) = self.power.dim();
        (freq(ky, ny).hypot(freq(kx, nx)) / self.dk).round() as usize
    }

    /// Power over the median power of its ring (0 outside the band's rings).
    fn contrast(&self, ky: usize, kx: usize) -> f64 {
        let r = self.ring_of(ky, kx);
        match self.ring_median.get(r) {
            Some(&m) if m > 0.0 && m.is_finite() => self.power[[ky, kx]] / m,
            _ => 0.0,
        }
    }

    /// Local maxima of the contrast in the band (half plane), 5×5 window,
    /// refined to sub-bin precision; the 40 strongest, strongest first.
    fn candidates(&self, min_contrast: f64) -> Vec<Reflection> {
        let (ny, nx) = self.power.dim();
        let mut cands: Vec<Reflection> = Vec::new();
        for ky in 0..ny {
            for kx in 0..nx {
                let (fy, fx) = (freq(ky, ny), freq(kx, nx));
                if !(fy > 0.0 || (fy == 0.0 && fx > 0.0)) {
                    continue;
                }
                let kr = fy.hypot(fx);
                if kr < self.k_lo || kr > self.k_hi {
                    continue;
                }
                let c = self.contrast(ky, kx);
                if c < min_contrast || !self.is_local_max(ky, kx) {
                    continue;
                }
                let (oy, ox) = self.sub_bin(ky, kx, self.power[[ky, kx]] / c);
                cands.push(Reflection {
                    k: [fx + ox / nx as f64, fy + oy / ny as f64],
                    contrast: c,
                    index: None,
                });
            }
        }
        cands.sort_by(|a, b| b.contrast.total_cmp(&a.contrast));
        cands.truncate(40);
        cands
    }

    /// No bin of the 5×5 neighbourhood (periodic) has more power (ties:
    /// the earlier bin wins).
    fn is_local_max(&self, ky: usize, kx: usize) -> bool {
        let (ny, nx) = self.power.dim();
        let p = self.power[[ky, kx]];
        for dy in -2i64..=2 {
            for dx in -2i64..=2 {
                if dy == 0 && dx == 0 {
                    continue;
                }
                let yy = (ky as i64 + dy).rem_euclid(ny as i64) as usize;
                let xx = (kx as i64 + dx).rem_euclid(nx as i64) as usize;
                let q = self.power[[yy, xx]];
                if q > p || (q == p && (dy, dx) < (0, 0)) {
                    return false;
                }
            }
        }
        true
    }

    /// Sub-bin offset (y, x): power centroid over 3×3 above the ring
    /// median `m`.
    fn sub_bin(&self, ky: usize, kx: usize, m: f64) -> (f64, f64) {
        let (ny, nx) = self.power.dim();
        let (mut sw, mut sy, mut sx) = (0.0, 0.0, 0.0);
        for dy in -1i64..=1 {
            for dx in -1i64..=1 {
                let yy = (ky as i64 + dy).rem_euclid(ny as i64) as usize;
                let xx = (kx as i64 + dx).rem_euclid(nx as i64) as usize;
                let w = (self.power[[yy, xx]] - m).max(0.0);
                sw += w;
                sy += w * dy as f64;
                sx += w * dx as f64;
            }
        }
        if sw > 0.0 {
            (sy / sw, sx / sw)
        } else {
            (0.0, 0.0)
        }
    }
}

/// Strongest contrast of a candidate within 2 rings of ±`gv`.
fn contrast_near(cands: &[Reflection], gv: [f64; 2], dk: f64) -> f64 {
    cands
        .iter()
        .filter(|c| {
            (c.k[0] - gv[0]).hypot(c.k[1] - gv[1]) < 2.0 * dk
                || (c.k[0] + gv[0]).hypot(c.k[1] + gv[1]) < 2.0 * dk
        })
        .map(|c| c.contrast)
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::basis::reduce;
    use super::*;

    /// Two-class square lattice (bright at the origin class) rotated by
    /// `rot` rad, spacing `a` px, Gaussian columns σ px.
    fn lattice_image(n: usize, a: f64, rot: f64, dim: f64, sigma: f64) -> Array2<f64> {
        let (s, c) = rot.sin_cos();
        let (a1, a2) = ([a * c, a * s], [-a * s, a * c]);
        let o = [n as f64 / 2.0 + 0.3, n as f64 / 2.0 - 0.2];
        let mut img = Array2::<f64>::zeros((n, n));
        let m = (n as f64 / a) as i64 + 2;
        for i in -m..=m {
            for j in -m..=m {
                for (fi, fj, amp) in [(0.0, 0.0, 1.0), (0.5, 0.5, dim)] {
                    let x = o[0] + (i as f64 + fi) * a1[0] + (j as f64 + fj) * a2[0];
                    let y = o[1] + (i as f64 + fi) * a1[1] + (j as f64 + fj) * a2[1];
                    if x < -4.0 * sigma || y < -4.0 * sigma {
                        continue;
                    }
                    let (x0, x1) = (
                        (x - 4.0 * sigma).max(0.0) as usize,
                        (x + 4.0 * sigma) as usize,
                    );
                    let (y0, y1) = (
                        (y - 4.0 * sigma).max(0.0) as usize,
                        (y + 4.0 * sigma) as usize,
                    );
                    for yy in y0..=y1.min(n - 1) {
                        for xx in x0..=x1.min(n - 1) {
                            let r2 = (xx as f64 - x).powi(2) + (yy as f64 - y).powi(2);
                            img[[yy, xx]] += amp * (-r2 / (2.0 * sigma * sigma)).exp();
                        }
                    }
                }
            }
        }
        img
    }

    fn search() -> LatticeSearch {
        LatticeSearch {
            d_min_px: 6.0,
            d_max_px: 60.0,
            min_contrast: 20.0,
        }
    }

    #[test]
    fn square_two_class_lattice_measured_to_two_percent_and_bright_origin() {
        for (a, rot) in [(20.0, 0.0), (23.7, 0.4), (31.0, 1.2), (25.0, -0.7)] {
            let img = lattice_image(256, a, rot, 0.4, 3.0);
            let w = Array2::<f64>::ones((256, 256));
            let m = measure(img.view(), w.view(), &search()).unwrap();
            let err = (m.a_px() / a - 1.0).abs();
            assert!(err < 0.02, "a = {a}: measured {} ({err})", m.a_px());
            let (ratio, angle) = m.squareness();
            assert!(
                ratio.abs() < 0.02 && (angle - 90.0).abs() < 1.0,
                "{ratio} {angle}"
            );
            // The origin is a bright site: integer lattice coordinates of
            // the true bright origin relative to it.
            let (s, c) = rot.sin_cos();
            let o = [128.3, 127.8];
            let d = [o[0] - m.origin[0], o[1] - m.origin[1]];
            let _ = (s, c);
            let det = m.a[0][0] * m.a[1][1] - m.a[0][1] * m.a[1][0];
            let u = (d[0] * m.a[1][1] - d[1] * m.a[1][0]) / det;
            let v = (m.a[0][0] * d[1] - m.a[0][1] * d[0]) / det;
            assert!(
                (u - u.round()).abs() < 0.05 && (v - v.round()).abs() < 0.05,
                "origin off the bright class: ({u}, {v})"
            );
        }
    }

    #[test]
    fn equal_classes_give_the_combined_lattice_and_noise_gives_none() {
        let img = lattice_image(256, 24.0, 0.2, 1.0, 3.0);
        let w = Array2::<f64>::ones((256, 256));
        let m = measure(img.view(), w.view(), &search()).unwrap();
        assert!((m.a_px() / (24.0 / 2f64.sqrt()) - 1.0).abs() < 0.02);
        // White noise: no lattice.
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(3);
        let noise = Array2::from_shape_fn((256, 256), |_| rng.gen::<f64>());
        assert!(measure(noise.view(), w.view(), &search()).is_err());
    }

    #[test]
    fn reduction_gives_the_shortest_basis() {
        let g = reduce([[1.0, 0.0], [3.0, 1.0]]);
        assert_eq!(g, [[1.0, 0.0], [0.0, 1.0]]);
    }
}
