//! Serial in-place 2-D complex FFTs of row-major planes with caller-owned
//! scratch, for work that parallelises over many planes (multislice: one
//! wave per probe position per thread) rather than within one.

use std::ops::Range;
use std::sync::Arc;

use num_complex::Complex;
use num_traits::Zero;
use rustfft::Fft;

use super::plans::FftFloat;

/// Plans for `ny × nx` planes.
#[derive(Clone)]
pub struct Plane2<T: FftFloat> {
    ny: usize,
    nx: usize,
    fy: Arc<dyn Fft<T>>,
    fx: Arc<dyn Fft<T>>,
    iy: Arc<dyn Fft<T>>,
    ix: Arc<dyn Fft<T>>,
}

/// Per-thread scratch of a [`Plane2`].
pub struct Plane2Scratch<T> {
    fft: Vec<Complex<T>>,
    t: Vec<Complex<T>>,
}

/// Rows per strip of [`Plane2::forward_t`] / [`Plane2::inverse_from_t`]
/// (a multiple of the 32-row transpose tile).
const STRIP: usize = 32;

fn transpose_into<T: Copy>(src: &[T], dst: &mut [T], ny: usize, nx: usize) {
    const B: usize = 32;
    for y0 in (0..ny).step_by(B) {
        for x0 in (0..nx).step_by(B) {
            for y in y0..(y0 + B).min(ny) {
                for x in x0..(x0 + B).min(nx) {
                    dst[x * ny + y] = src[y * nx + x];
                }
            }
        }
    }
}

/// `dst` (nx × ny) rows `x ∈ cols` = columns x of `src` (ny × nx), for
/// the source rows `rows`, in 32 × 32 tiles read as contiguous row
/// segments.
fn transpose_cols<T: Copy>(
    src: &[T],
    dst: &mut [T],
    (ny, nx): (usize, usize),
    cols: &[Range<usize>],
    rows: Range<usize>,
) {
    const B: usize = 32;
    for r in cols {
        for x0 in r.clone().step_by(B) {
            let x1 = (x0 + B).min(r.end);
            for y0 in rows.clone().step_by(B) {
                for y in y0..(y0 + B).min(rows.end) {
                    for (dx, v) in src[y * nx + x0..y * nx + x1].iter().enumerate() {
                        dst[(x0 + dx) * ny + y] = *v;
                    }
                }
            }
        }
    }
}

/// The inverse of [`transpose_cols`]: `dst` (ny × nx) rows `rows`, columns
/// `x ∈ cols` from rows x of `src` (nx × ny), the other columns zero.
fn untranspose_cols<T: Copy + Zero>(
    src: &[T],
    dst: &mut [T],
    (ny, nx): (usize, usize),
    cols: &[Range<usize>],
    rows: Range<usize>,
) {
    const B: usize = 32;
    for row in dst[rows.start * nx..rows.end * nx].chunks_mut(nx) {
        let mut at = 0;
        for r in cols {
            row[at..r.start].fill(T::zero());
            at = r.end;
        }
        row[at..].fill(T::zero());
    }
    for r in cols {
        for x0 in r.clone().step_by(B) {
            let x1 = (x0 + B).min(r.end);
            for y0 in rows.clone().step_by(B) {
                let y1 = (y0 + B).min(rows.end);
                for x in x0..x1 {
                    for (dy, v) in src[x * ny + y0..x * ny + y1].iter().enumerate() {
                        dst[(y0 + dy) * nx + x] = *v;
                    }
                }
            }
        }
    }
}

impl<T: FftFloat> Plane2<T> {
    /// Plans for `ny × nx` planes (from the shared plan cache).
    #[must_use]
    pub fn new(ny: usize, nx: usize) -> Self {
        let p = T::plans();
        Plane2 {
            ny,
            nx,
            fy: p.forward(ny),
            fx: p.forward(nx),
            iy: p.inverse(ny),
            ix: p.inverse(nx),
        }
    }

    /// Scratch for one thread.
    #[must_use]
    pub fn scratch(&self) -> Plane2Scratch<T> {
        let n = [&self.fy, &self.fx, &self.iy, &self.ix]
            .iter()
            .map(|f| f.get_inplace_scratch_len())
            .max()
            .unwrap_or(0);
        Plane2Scratch {
            fft: vec![Complex::zero(); n],
            t: vec![Complex::zero(); self.ny * self.nx],
        }
    }

    fn run(&self, data: &mut [Complex<T>], s: &mut Plane2Scratch<T>, inverse: bool) {
        let (fx, fy) = if inverse {
            (&self.ix, &self.iy)
        } else {
            (&self.fx, &self.fy)
        };
        fx.process_with_scratch(data, &mut s.fft);
        transpose_into(data, &mut s.t, self.ny, self.nx);
        fy.process_with_scratch(&mut s.t, &mut s.fft);
        transpose_into(&s.t, data, self.nx, self.ny);
    }

    /// Forward transform in place (unnormalised).
    ///
    /// # Panics
    /// Never for `data.len() == ny·nx` (checked by `debug_assert`).
    pub fn forward(&self, data: &mut [Complex<T>], s: &mut Plane2Scratch<T>) {
        debug_assert_eq!(data.len(), self.ny * self.nx);
        self.run(data, s, false);
    }

    /// Forward transform leaving the spectrum **transposed** (kx-major: row
    /// kx holds the ny values of ky) in the scratch plane, for work that
    /// stays in Fourier space for one step (multislice). Only the columns
    /// `cols` (ascending, disjoint ranges of kx indices) are transformed
    /// along y; the other rows of the result are stale. Unnormalised.
    /// With a band limit this saves the y-transforms of the dropped columns
    /// and two of the four transposes of [`Plane2::forward`] +
    /// [`Plane2::inverse`].
    pub fn forward_t<'a>(
        &self,
        data: &mut [Complex<T>],
        s: &'a mut Plane2Scratch<T>,
        cols: &[Range<usize>],
    ) -> &'a mut [Complex<T>] {
        debug_assert_eq!(data.len(), self.ny * self.nx);
        // Row strips: each strip is transposed while it is still in cache
        // from its x-transforms.
        for y0 in (0..self.ny).step_by(STRIP) {
            let y1 = (y0 + STRIP).min(self.ny);
            self.fx
                .process_with_scratch(&mut data[y0 * self.nx..y1 * self.nx], &mut s.fft);
            transpose_cols(data, &mut s.t, (self.ny, self.nx), cols, y0..y1);
        }
        for r in cols {
            self.fy
                .process_with_scratch(&mut s.t[r.start * self.ny..r.end * self.ny], &mut s.fft);
        }
        &mut s.t
    }

    /// Inverse of [`Plane2::forward_t`] into `data` (unnormalised: the
    /// result is ny·nx times the wave): the columns outside `cols` are zero.
    pub fn inverse_from_t(
        &self,
        s: &mut Plane2Scratch<T>,
        data: &mut [Complex<T>],
        cols: &[Range<usize>],
    ) {
        debug_assert_eq!(data.len(), self.ny * self.nx);
        for r in cols {
            self.iy
                .process_with_scratch(&mut s.t[r.start * self.ny..r.end * self.ny], &mut s.fft);
        }
        for y0 in (0..self.ny).step_by(STRIP) {
            let y1 = (y0 + STRIP).min(self.ny);
            untranspose_cols(&s.t, data, (self.ny, self.nx), cols, y0..y1);
            self.ix
                .process_with_scratch(&mut data[y0 * self.nx..y1 * self.nx], &mut s.fft);
        }
    }

    /// Inverse transform in place, normalised by `1/(ny·nx)`.
    pub fn inverse(&self, data: &mut [Complex<T>], s: &mut Plane2Scratch<T>) {
        debug_assert_eq!(data.len(), self.ny * self.nx);
        self.run(data, s, true);
        let k = T::one() / T::from_usize(self.ny * self.nx).unwrap_or_else(T::one);
        data.iter_mut().for_each(|v| *v = *v * k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_fft2_and_round_trips() {
        let (ny, nx) = (12, 20);
        let a = ndarray::Array2::from_shape_fn((ny, nx), |(y, x)| {
            Complex::new((y * 7 + x * 3) as f64 % 5.0, (x as f64 * 0.3).sin())
        });
        let want = super::super::fft2(a.view());
        let p = Plane2::<f64>::new(ny, nx);
        let mut s = p.scratch();
        let mut d: Vec<Complex<f64>> = a.iter().copied().collect();
        p.forward(&mut d, &mut s);
        for (g, w) in d.iter().zip(want.iter()) {
            assert!((g - w).norm() < 1e-10);
        }
        p.inverse(&mut d, &mut s);
        for (g, w) in d.iter().zip(a.iter()) {
            assert!((g - w).norm() < 1e-12);
        }
        // Transposed spectrum on the kept columns; the round trip through it
        // keeps exactly those spatial frequencies kx.
        let cols = [0..4, 15..20];
        let mut t = d.clone();
        let spec = p.forward_t(&mut t, &mut s, &cols).to_vec();
        for r in &cols {
            for kx in r.clone() {
                for ky in 0..ny {
                    assert!((spec[kx * ny + ky] - want[[ky, kx]]).norm() < 1e-10);
                }
            }
        }
        p.inverse_from_t(&mut s, &mut t, &cols);
        let mut f = a.mapv(|v| v);
        let mut masked: Vec<Complex<f64>> = want
            .indexed_iter()
            .map(|((_, kx), v)| {
                if cols.iter().any(|r| r.contains(&kx)) {
                    *v
                } else {
                    Complex::zero()
                }
            })
            .collect();
        p.inverse(&mut masked, &mut s);
        f.iter_mut()
            .zip(&masked)
            .for_each(|(d, v)| *d = *v * (ny * nx) as f64);
        for (g, w) in t.iter().zip(f.iter()) {
            assert!((g - w).norm() < 1e-9);
        }
    }
}
