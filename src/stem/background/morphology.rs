//! Grey erosion, dilation and opening with a flat [`Footprint`], MATLAB
//! parity (stem spec §2): outside the image is +∞ for erosion and −∞ for
//! dilation; a decomposed element is applied line after line on a domain
//! padded by the element's total extent, then cropped — bit-identical to the
//! brute-force filter with the full element.
//!
//! Each line pass is a 1-D running min/max along the chains `{x₀ + t·v}` of
//! the padded domain by the van Herk / Gil–Werman algorithm: 3 comparisons
//! per sample whatever the line length, so the cost is independent of R.
//! Chains are processed in parallel (rayon); each pixel belongs to exactly
//! one chain, so the result does not depend on the thread count.

use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;

use super::strel::{Footprint, Line};

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

/// Scratch for [`running`]: prefix and suffix arrays.
#[derive(Default)]
pub(crate) struct RunBuf {
    g: Vec<f32>,
    p: Vec<f32>,
    q: Vec<f32>,
}

/// Centred running extremum of half-width `h` (window 2h+1), outside = identity.
///
/// van Herk (1992) / Gil & Werman (1993): pad with h identities each side,
/// extend to a multiple of w; per block of w, prefix P and suffix S;
/// `out[j] = pick(S[j], P[j + 2h])`.
pub(crate) fn running<E: Extremum>(f: &[f32], h: usize, out: &mut [f32], buf: &mut RunBuf) {
    let n = f.len();
    if h == 0 || n == 0 {
        out[..n].copy_from_slice(f);
        return;
    }
    let w = 2 * h + 1;
    let len = (n + 2 * h).div_ceil(w) * w;
    buf.g.clear();
    buf.g.resize(len, E::IDENTITY);
    buf.g[h..h + n].copy_from_slice(f);
    buf.p.resize(len, 0.0);
    buf.q.resize(len, 0.0);
    let (g, p, q) = (&buf.g, &mut buf.p, &mut buf.q);
    for b in (0..len).step_by(w) {
        p[b] = g[b];
        for i in b + 1..b + w {
            p[i] = E::pick(p[i - 1], g[i]);
        }
        q[b + w - 1] = g[b + w - 1];
        for i in (b..b + w - 1).rev() {
            q[i] = E::pick(q[i + 1], g[i]);
        }
    }
    for j in 0..n {
        out[j] = E::pick(q[j], p[j + 2 * h]);
    }
}

/// Raw pointer that may be shared across rayon workers writing disjoint pixels.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: used only for writes to pairwise-disjoint indices (one chain per
// pixel), never read concurrently with a write to the same index.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// One line pass on a standard-layout array: out = running extremum of `a`
/// along every chain of step `v` with half-width `line.p`.
fn line_pass<E: Extremum>(a: &Array2<f32>, line: Line) -> Array2<f32> {
    let (ny, nx) = a.dim();
    let (vy, vx) = if line.v.0 < 0 || (line.v.0 == 0 && line.v.1 < 0) {
        (-line.v.0, -line.v.1)
    } else {
        line.v
    };
    let src = a.as_slice().unwrap_or(&[]);
    let mut out = Array2::<f32>::zeros((ny, nx));
    if src.is_empty() {
        return out;
    }
    if (vy, vx) == (0, 1) {
        // Rows are contiguous chains.
        out.as_slice_mut()
            .unwrap_or(&mut [])
            .par_chunks_mut(nx)
            .zip(src.par_chunks(nx))
            .for_each_init(RunBuf::default, |buf, (o, r)| {
                running::<E>(r, line.p, o, buf)
            });
        return out;
    }
    let inside = |y: i64, x: i64| y >= 0 && x >= 0 && y < ny as i64 && x < nx as i64;
    // Chain starts: pixels whose predecessor x − v is outside.
    let mut starts = Vec::new();
    for y in 0..ny as i64 {
        for x in 0..nx as i64 {
            if !inside(y - vy, x - vx) {
                starts.push((y, x));
            }
        }
    }
    let optr = SharedOut(out.as_mut_ptr());
    starts.par_iter().for_each_init(
        || (RunBuf::default(), Vec::new(), Vec::new()),
        |(buf, vals, res), &(y0, x0)| {
            vals.clear();
            let (mut y, mut x) = (y0, x0);
            while inside(y, x) {
                vals.push(src[y as usize * nx + x as usize]);
                y += vy;
                x += vx;
            }
            res.resize(vals.len(), 0.0);
            running::<E>(vals, line.p, res, buf);
            let o = optr;
            let (mut y, mut x) = (y0, x0);
            for v in res.iter() {
                // SAFETY: (y, x) is inside the array and lies on this chain
                // only; chains partition the pixels, so writes are disjoint.
                unsafe { *o.0.add(y as usize * nx + x as usize) = *v };
                y += vy;
                x += vx;
            }
        },
    );
    out
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

fn filter<E: Extremum>(image: ArrayView2<f32>, fp: &Footprint) -> Array2<f32> {
    if fp.lines().is_empty() {
        return chord_filter::<E>(image, fp);
    }
    let (ny, nx) = image.dim();
    let (ey, ex) = fp.extent();
    let mut pad = Array2::<f32>::from_elem((ny + 2 * ey, nx + 2 * ex), E::IDENTITY);
    pad.slice_mut(s![ey..ey + ny, ex..ex + nx]).assign(&image);
    for &l in fp.lines() {
        pad = line_pass::<E>(&pad, l);
    }
    pad.slice(s![ey..ey + ny, ex..ex + nx]).to_owned()
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
#[must_use]
pub fn opening(image: ArrayView2<f32>, fp: &Footprint) -> Array2<f32> {
    dilate(erode(image, fp).view(), fp)
}
