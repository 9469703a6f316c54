//! Pixel-integrated elliptical Gaussians, the testbed's columns and
//! texture blobs (see the module documentation of [`super`]).

use ndarray::Array2;

/// Supersampling factor per pixel axis (4×4 mid-point samples per pixel).
pub const SUPERSAMPLE: usize = 4;

/// Gaussians are rendered out to this many σ (the mass outside < 1e-5).
pub(super) const CUTOFF_SIGMA: f64 = 5.5;

/// An elliptical Gaussian ready to render: exp(−½(A dx² + 2B dx dy + C dy²)).
#[derive(Debug, Clone, Copy)]
pub(super) struct Splat {
    x: f64,
    y: f64,
    peak: f64,
    qa: f64,
    qb: f64,
    qc: f64,
    half_x: f64,
    half_y: f64,
}

impl Splat {
    pub(super) fn new(
        x: f64,
        y: f64,
        volume: f64,
        s_major: f64,
        s_minor: f64,
        angle_rad: f64,
    ) -> Self {
        let (s, c) = angle_rad.sin_cos();
        let (i1, i2) = (1.0 / (s_major * s_major), 1.0 / (s_minor * s_minor));
        let sxx = c * c * s_major * s_major + s * s * s_minor * s_minor;
        let syy = s * s * s_major * s_major + c * c * s_minor * s_minor;
        Splat {
            x,
            y,
            peak: volume / (std::f64::consts::TAU * s_major * s_minor),
            qa: c * c * i1 + s * s * i2,
            qb: c * s * (i1 - i2),
            qc: s * s * i1 + c * c * i2,
            half_x: CUTOFF_SIGMA * sxx.sqrt(),
            half_y: CUTOFF_SIGMA * syy.sqrt(),
        }
    }

    /// Add the pixel-integrated Gaussian (mean of SUPERSAMPLE² mid-point
    /// samples per pixel) displaced by (dx, dy) to `img`.
    pub(super) fn add_to(&self, img: &mut Array2<f64>, dx: f64, dy: f64) {
        let (ny, nx) = img.dim();
        let (cx, cy) = (self.x + dx, self.y + dy);
        let x_lo = ((cx - self.half_x).floor().max(0.0)) as usize;
        let y_lo = ((cy - self.half_y).floor().max(0.0)) as usize;
        let x_hi = (cx + self.half_x).ceil();
        let y_hi = (cy + self.half_y).ceil();
        if x_hi < 0.0 || y_hi < 0.0 {
            return;
        }
        let x_hi = (x_hi as usize).min(nx.saturating_sub(1));
        let y_hi = (y_hi as usize).min(ny.saturating_sub(1));
        if x_lo > x_hi || y_lo > y_hi || x_lo >= nx || y_lo >= ny {
            return;
        }
        let ss = SUPERSAMPLE;
        let h = 1.0 / ss as f64;
        let w = self.peak / (ss * ss) as f64;
        let n_sub = (x_hi - x_lo + 1) * ss;
        let q_step = (-self.qa * h * h).exp();
        let mut row = vec![0.0f64; x_hi - x_lo + 1];
        for py in y_lo..=y_hi {
            row.iter_mut().for_each(|v| *v = 0.0);
            for ky in 0..ss {
                let v = py as f64 - 0.5 + (ky as f64 + 0.5) * h - cy;
                let u0 = x_lo as f64 - 0.5 + 0.5 * h - cx;
                // g(u) = exp(−½(A u² + 2B u v + C v²)); g(u + h) = g(u)·r(u),
                // r(u) = exp(−½(A(2uh + h²) + 2B h v)), r(u + h) = r(u)·exp(−A h²).
                let mut g =
                    (-0.5 * (self.qa * u0 * u0 + 2.0 * self.qb * u0 * v + self.qc * v * v)).exp();
                let mut rr =
                    (-0.5 * (self.qa * (2.0 * u0 * h + h * h) + 2.0 * self.qb * h * v)).exp();
                for m in 0..n_sub {
                    row[m / ss] += g;
                    g *= rr;
                    rr *= q_step;
                }
            }
            let mut out = img.row_mut(py);
            for (i, v) in row.iter().enumerate() {
                out[x_lo + i] += w * v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_sum_equals_volume() {
        for (s_major, s_minor, ang) in [(1.2, 1.2, 0.0), (2.3, 2.1, 0.7), (4.0, 3.7, 2.0)] {
            let sp = Splat::new(40.3, 37.8, 1234.5, s_major, s_minor, ang);
            let mut img = Array2::<f64>::zeros((80, 80));
            sp.add_to(&mut img, 0.21, -0.4);
            let sum: f64 = img.sum();
            assert!((sum / 1234.5 - 1.0).abs() < 1e-3, "{sum}");
            // Centroid at the displaced centre.
            let (mut mx, mut my) = (0.0, 0.0);
            for ((y, x), v) in img.indexed_iter() {
                mx += x as f64 * v;
                my += y as f64 * v;
            }
            assert!((mx / sum - 40.51).abs() < 1e-3 && (my / sum - 37.4).abs() < 1e-3);
        }
    }
}
