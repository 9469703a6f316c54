//! Grey erosion, dilation and opening with a flat [`Footprint`], MATLAB
//! parity (docs/methods/background.md): outside the image is +∞ for erosion and −∞ for
//! dilation; a decomposed element is applied line after line on a domain
//! padded by the element's total extent, then cropped — bit-identical to the
//! brute-force filter with the full element.
//!
//! Lines with the same step are merged first (`L(p₁, v) ⊕ L(p₂, v) =
//! L(p₁ + p₂, v)`: the short correction lines of the decomposition cost no
//! pass of their own), so an n = 4 disk takes four passes per filter. Each
//! pass is a 1-D running min/max along the chains `{x₀ + t·v}` of the padded
//! domain by the van Herk / Gil–Werman algorithm ([`super::vanherk`]): 3
//! comparisons per sample whatever the line length, so the cost is
//! independent of R; lines of half-width ≤ 2 are taken directly (≤ 4
//! comparisons, cheaper than van Herk's bookkeeping). Erosion and dilation
//! share one padded plane pair. Work is split over rows or row strips
//! (rayon); every output pixel is computed by one task from the same
//! inputs, so the result does not depend on the thread count.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::strel::{Footprint, Line};
use super::vanherk::{horizontal_van_herk, pick_shifted, row, running, strip_van_herk, RunBuf};

/// Min or max, with its identity (±∞).
pub(crate) trait Extremum: Copy + Send + Sync {
    const IDENTITY: f32;
    fn pick(a: f32, b: f32) -> f32;
}

#[derive(Clone, Copy)]
pub(crate) struct Min;
#[derive(Clone, Copy)]
pub(crate) struct Max;

impl Extremum for Min {
    const IDENTITY: f32 = f32::INFINITY;
    #[inline(always)]
    fn pick(a: f32, b: f32) -> f32 {
        if b < a {
            b
        } else {
            a
        }
    }
}
impl Extremum for Max {
    const IDENTITY: f32 = f32::NEG_INFINITY;
    #[inline(always)]
    fn pick(a: f32, b: f32) -> f32 {
        if b > a {
            b
        } else {
            a
        }
    }
}

/// Half-widths up to this are filtered directly (2p comparisons per pixel
/// on contiguous, vectorisable rows); longer lines use van Herk. Measured at
/// 1024² on the 2-core machine: a direct pass costs 0.2 ms (p = 1), 0.3 ms
/// (p = 2), ≈ 0.4 ms (p = 3); a van Herk pass 0.33 ms (vertical/diagonal)
/// to 0.6 ms (horizontal) whatever p.
const DIRECT_MAX_P: usize = 2;

/// One line pass on a row-major `ny × nx` plane: `dst` = running extremum of
/// `src` along every chain of step `v` with half-width `p`, outside =
/// identity. Exact for every pixel whose window stays inside the plane
/// (which the ±∞ padding guarantees for the pixels that reach the output).
fn line_pass<E: Extremum>(src: &[f32], dst: &mut [f32], (ny, nx): (usize, usize), line: Line) {
    let (vy, vx) = normalised(line.v);
    let p = line.p;
    if vy == 0 {
        if p <= DIRECT_MAX_P || vx != 1 {
            dst.par_chunks_mut(nx)
                .zip(src.par_chunks(nx))
                .for_each(|(o, r)| {
                    o.copy_from_slice(r);
                    for t in 1..=p as i64 {
                        pick_shifted::<E>(o, r, t * vx);
                        pick_shifted::<E>(o, r, -t * vx);
                    }
                });
        } else {
            horizontal_van_herk::<E>(src, dst, (ny, nx), p);
        }
        return;
    }
    if p > DIRECT_MAX_P {
        strip_van_herk::<E>(src, dst, (ny, nx), (vy as usize, vx), p);
        return;
    }
    let ny_i = ny as i64;
    dst.par_chunks_mut(nx).enumerate().for_each(|(y, o)| {
        o.copy_from_slice(row(src, y, nx));
        for t in 1..=p as i64 {
            for sgn in [1i64, -1] {
                let yy = y as i64 + sgn * t * vy;
                if (0..ny_i).contains(&yy) {
                    pick_shifted::<E>(o, row(src, yy as usize, nx), sgn * t * vx);
                }
            }
        }
    });
}

/// Lines with the same step merged: `L(p₁, v) ⊕ L(p₂, v) = L(p₁ + p₂, v)`,
/// so a decomposition's correction lines (the short horizontal and vertical
/// ones) cost no extra pass. The Minkowski sum is unchanged, and so is the
/// result, bit for bit.
fn merged_lines(fp: &Footprint) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::new();
    for &l in fp.lines() {
        let v = normalised(l.v);
        match out.iter_mut().find(|m| m.v == v) {
            Some(m) => m.p += l.p,
            None => out.push(Line { p: l.p, v }),
        }
    }
    out
}

/// The step with a positive row (or, for a horizontal line, a positive
/// column): a line and its mirror are the same set.
fn normalised(v: (i64, i64)) -> (i64, i64) {
    if v.0 < 0 || (v.0 == 0 && v.1 < 0) {
        (-v.0, -v.1)
    } else {
        v
    }
}

/// Exact-disk filter: extremum over 2R+1 horizontal chords; one running
/// 1-D filter per distinct chord length, O(R) per pixel.
fn chord_filter<E: Extremum>(a: ArrayView2<f32>, fp: &Footprint) -> Array2<f32> {
    let (ny, nx) = a.dim();
    let a = a.as_standard_layout();
    let src = a.as_slice().unwrap_or(&[]);
    let chords = fp.chords();
    let mut widths: Vec<usize> = chords.iter().map(|c| c.1).collect();
    widths.sort_unstable();
    widths.dedup();
    // Row-filtered copies per distinct half-width.
    let filtered: Vec<Vec<f32>> = widths
        .par_iter()
        .map(|&h| {
            let mut out = vec![0.0f32; ny * nx];
            let mut buf = RunBuf::default();
            for (o, r) in out.chunks_mut(nx).zip(src.chunks(nx)) {
                running::<E>(r, h, o, &mut buf);
            }
            out
        })
        .collect();
    let mut out = Array2::<f32>::from_elem((ny, nx), E::IDENTITY);
    out.as_slice_mut()
        .unwrap_or(&mut [])
        .par_chunks_mut(nx)
        .enumerate()
        .for_each(|(y, orow)| {
            for &(dy, h) in &chords {
                let yy = y as i64 + dy;
                if yy < 0 || yy >= ny as i64 {
                    continue;
                }
                let k = widths.partition_point(|w| *w < h);
                let row = &filtered[k][yy as usize * nx..(yy as usize + 1) * nx];
                for (o, v) in orow.iter_mut().zip(row) {
                    *o = E::pick(*o, *v);
                }
            }
        });
    out
}

/// Padded plane `(ny + 2ey) × (nx + 2ex)`: the image inside, the
/// identity of `E` around it.
fn pad<E: Extremum>(image: ArrayView2<f32>, (ey, ex): (usize, usize)) -> Vec<f32> {
    let (ny, nx) = image.dim();
    let (pny, pnx) = (ny + 2 * ey, nx + 2 * ex);
    let mut a = vec![E::IDENTITY; pny * pnx];
    for (y, r) in image.rows().into_iter().enumerate() {
        let o = &mut a[(y + ey) * pnx + ex..(y + ey) * pnx + ex + nx];
        for (d, s) in o.iter_mut().zip(r) {
            *d = *s;
        }
    }
    a
}

/// Reset the border of a padded plane to the identity of `E` (the interior
/// is kept): the erosion's plane becomes the dilation's input in place.
fn refill_border<E: Extremum>(a: &mut [f32], (pny, pnx): (usize, usize), (ey, ex): (usize, usize)) {
    for (y, r) in a.chunks_mut(pnx).enumerate() {
        if y < ey || y >= pny - ey {
            r.fill(E::IDENTITY);
        } else {
            r[..ex].fill(E::IDENTITY);
            r[pnx - ex..].fill(E::IDENTITY);
        }
    }
}

/// Apply `lines` one after another on the padded plane `a` (ping-pong with
/// `b`); the result ends in `a`.
fn apply<E: Extremum>(a: &mut Vec<f32>, b: &mut Vec<f32>, shape: (usize, usize), lines: &[Line]) {
    b.resize(a.len(), 0.0);
    for &l in lines {
        line_pass::<E>(a, b, shape, l);
        std::mem::swap(a, b);
    }
}

/// The image part of a padded plane.
fn crop(
    a: &[f32],
    (_, pnx): (usize, usize),
    (ey, ex): (usize, usize),
    (ny, nx): (usize, usize),
) -> Array2<f32> {
    let mut v = Vec::with_capacity(ny * nx);
    for y in ey..ey + ny {
        v.extend_from_slice(&a[y * pnx + ex..y * pnx + ex + nx]);
    }
    Array2::from_shape_vec((ny, nx), v).unwrap_or_default()
}

/// Decomposed filter (lines merged by step) on the ±∞-padded domain.
fn filter<E: Extremum>(image: ArrayView2<f32>, fp: &Footprint) -> Array2<f32> {
    if fp.lines().is_empty() {
        return chord_filter::<E>(image, fp);
    }
    let dim = image.dim();
    let ext = fp.extent();
    let shape = (dim.0 + 2 * ext.0, dim.1 + 2 * ext.1);
    let mut a = pad::<E>(image, ext);
    apply::<E>(&mut a, &mut Vec::new(), shape, &merged_lines(fp));
    crop(&a, shape, ext, dim)
}

/// Grey erosion `(I ⊖ D)(x) = min_{d∈D} I(x + d)`, outside = +∞.
#[must_use]
pub fn erode(image: ArrayView2<f32>, fp: &Footprint) -> Array2<f32> {
    filter::<Min>(image, fp)
}

/// Grey dilation `(I ⊕ D)(x) = max_{d∈D} I(x − d)`, outside = −∞.
#[must_use]
pub fn dilate(image: ArrayView2<f32>, fp: &Footprint) -> Array2<f32> {
    filter::<Max>(image, fp)
}

/// Grey opening `dilate(erode(I, D), D)` (MATLAB `imopen`): removes bright
/// features smaller than D; anti-extensive, increasing, idempotent.
///
/// Erosion and dilation share the padded planes: after the erosion only the
/// border is reset to −∞ (docs/methods/background.md: "erosion (own pad, crop) then dilation
/// (own pad, crop)" without the copies).
#[must_use]
pub fn opening(image: ArrayView2<f32>, fp: &Footprint) -> Array2<f32> {
    if fp.lines().is_empty() {
        return dilate(erode(image, fp).view(), fp);
    }
    let dim = image.dim();
    let ext = fp.extent();
    let shape = (dim.0 + 2 * ext.0, dim.1 + 2 * ext.1);
    let lines = merged_lines(fp);
    let mut a = pad::<Min>(image, ext);
    let mut b = Vec::new();
    apply::<Min>(&mut a, &mut b, shape, &lines);
    refill_border::<Max>(&mut a, shape, ext);
    apply::<Max>(&mut a, &mut b, shape, &lines);
    crop(&a, shape, ext, dim)
}
