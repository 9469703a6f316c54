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
use crate::fft::transpose;

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

/// Half-widths up to this are filtered directly (2p comparisons per pixel
/// on contiguous, vectorisable rows); longer lines use van Herk.
const DIRECT_MAX_P: usize = 6;

/// `dst[x] = pick(dst[x], src[x + off])` where `x + off` is inside the row.
#[inline]
fn pick_shifted<E: Extremum>(dst: &mut [f32], src: &[f32], off: i64) {
    let n = dst.len() as i64;
    if off.abs() >= n {
        return;
    }
    if off >= 0 {
        let o = off as usize;
        for (d, s) in dst[..n as usize - o].iter_mut().zip(&src[o..]) {
            *d = E::pick(*d, *s);
        }
    } else {
        let o = (-off) as usize;
        for (d, s) in dst[o..].iter_mut().zip(&src[..n as usize - o]) {
            *d = E::pick(*d, *s);
        }
    }
}

/// `dst[i] = pick(a[i], b[i + off])` where `i + off` is inside, else `a[i]`
/// (a copy fused with [`pick_shifted`]: one write per pixel).
#[inline]
fn pick2_shifted<E: Extremum>(dst: &mut [f32], a: &[f32], b: &[f32], off: i64) {
    let n = dst.len();
    let o = off.unsigned_abs() as usize;
    if o >= n {
        dst.copy_from_slice(a);
        return;
    }
    if off >= 0 {
        for ((d, x), y) in dst[..n - o].iter_mut().zip(&a[..n - o]).zip(&b[o..]) {
            *d = E::pick(*x, *y);
        }
        dst[n - o..].copy_from_slice(&a[n - o..]);
    } else {
        dst[..o].copy_from_slice(&a[..o]);
        for ((d, x), y) in dst[o..].iter_mut().zip(&a[o..]).zip(&b[..n - o]) {
            *d = E::pick(*x, *y);
        }
    }
}

/// Scratch of a line pass (van Herk prefix/suffix planes), reused.
#[derive(Default)]
pub(crate) struct PassScratch {
    p: Vec<f32>,
    q: Vec<f32>,
}

/// One line pass on a row-major `ny × nx` plane: `dst` = running extremum of
/// `src` along every chain of step `v` with half-width `p`, outside =
/// identity. Exact for every pixel whose window stays inside the plane
/// (which the ±∞ padding guarantees for the pixels that reach the output).
fn line_pass<E: Extremum>(
    src: &[f32],
    dst: &mut [f32],
    (ny, nx): (usize, usize),
    line: Line,
    scratch: &mut PassScratch,
) {
    let (vy, vx) = if line.v.0 < 0 || (line.v.0 == 0 && line.v.1 < 0) {
        (-line.v.0, -line.v.1)
    } else {
        line.v
    };
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
            dst.par_chunks_mut(nx)
                .zip(src.par_chunks(nx))
                .for_each_init(RunBuf::default, |buf, (o, r)| running::<E>(r, p, o, buf));
        }
        return;
    }
    let (vy_u, ny_i) = (vy as usize, ny as i64);
    if p <= DIRECT_MAX_P {
        dst.par_chunks_mut(nx).enumerate().for_each(|(y, o)| {
            o.copy_from_slice(&src[y * nx..(y + 1) * nx]);
            for t in 1..=p as i64 {
                for sgn in [1i64, -1] {
                    let yy = y as i64 + sgn * t * vy;
                    if (0..ny_i).contains(&yy) {
                        let row = &src[yy as usize * nx..(yy as usize + 1) * nx];
                        pick_shifted::<E>(o, row, sgn * t * vx);
                    }
                }
            }
        });
        return;
    }
    // Row-wise van Herk: blocks of w chain steps aligned on absolute rows
    // (block of row y = (y / vy) / w); prefix P and suffix S follow the chain
    // from row to row, so every row operation is a contiguous slice.
    let w = 2 * p + 1;
    let chunk_rows = vy_u * w;
    scratch.p.resize(ny * nx, 0.0);
    scratch.q.resize(ny * nx, 0.0);
    let (pp, qq) = (&mut scratch.p, &mut scratch.q);
    pp.par_chunks_mut(chunk_rows * nx)
        .zip(qq.par_chunks_mut(chunk_rows * nx))
        .enumerate()
        .for_each(|(c, (pc, qc))| {
            let y0 = c * chunk_rows;
            let rows = pc.len() / nx;
            // Prefix: row y continues row y − vy unless it starts a block.
            for r in 0..rows {
                let y = y0 + r;
                let g = &src[y * nx..(y + 1) * nx];
                let (prev, cur) = pc.split_at_mut(r * nx);
                let cur = &mut cur[..nx];
                if !(y / vy_u).is_multiple_of(w) && r >= vy_u {
                    let pr = &prev[(r - vy_u) * nx..(r - vy_u + 1) * nx];
                    pick2_shifted::<E>(cur, g, pr, -vx);
                } else {
                    cur.copy_from_slice(g);
                }
            }
            // Suffix: row y continues row y + vy unless it ends a block.
            for r in (0..rows).rev() {
                let y = y0 + r;
                let g = &src[y * nx..(y + 1) * nx];
                let (cur, next) = qc.split_at_mut((r + 1) * nx);
                let cur = &mut cur[r * nx..];
                if (y / vy_u) % w != w - 1 && r + vy_u < rows {
                    let nr = &next[(vy_u - 1) * nx..vy_u * nx];
                    pick2_shifted::<E>(cur, g, nr, vx);
                } else {
                    cur.copy_from_slice(g);
                }
            }
        });
    let (pp, qq) = (&scratch.p, &scratch.q);
    let h = p as i64;
    dst.par_chunks_mut(nx).enumerate().for_each(|(y, o)| {
        let ys = y as i64 - h * vy;
        let ye = y as i64 + h * vy;
        if (0..ny_i).contains(&ys) {
            // o[i] = Q[ys][i − h·vx], identity outside (one write per pixel).
            let row = &qq[ys as usize * nx..(ys as usize + 1) * nx];
            let off = -h * vx;
            let k = off.unsigned_abs() as usize;
            if k >= nx {
                o.fill(E::IDENTITY);
            } else if off >= 0 {
                o[..nx - k].copy_from_slice(&row[k..]);
                o[nx - k..].fill(E::IDENTITY);
            } else {
                o[..k].fill(E::IDENTITY);
                o[k..].copy_from_slice(&row[..nx - k]);
            }
        } else {
            o.fill(E::IDENTITY);
        }
        if (0..ny_i).contains(&ye) {
            let row = &pp[ye as usize * nx..(ye as usize + 1) * nx];
            pick_shifted::<E>(o, row, h * vx);
        }
    });
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

/// Lines split into row-wise ones (vy ≠ 0, vectorised along rows) and
/// horizontal ones, which run as vertical lines on the transposed plane
/// (a serial 1-D scan along rows would not vectorise).
fn split_lines(fp: &Footprint) -> (Vec<Line>, Vec<Line>) {
    let mut rowwise = Vec::new();
    let mut horizontal = Vec::new();
    for &l in fp.lines() {
        if l.v.0 == 0 && l.p > DIRECT_MAX_P {
            horizontal.push(Line {
                p: l.p,
                v: (l.v.1.abs(), 0),
            });
        } else {
            rowwise.push(l);
        }
    }
    (rowwise, horizontal)
}

/// Apply `lines` one after another on a padded plane (ping-pong buffers).
fn apply<E: Extremum>(
    mut a: Array2<f32>,
    lines: &[Line],
    scratch: &mut PassScratch,
) -> Array2<f32> {
    if lines.is_empty() {
        return a;
    }
    let shape = a.dim();
    let mut b = Array2::<f32>::zeros(shape);
    for &l in lines {
        if let (Some(src), Some(dst)) = (a.as_slice(), b.as_slice_mut()) {
            line_pass::<E>(src, dst, shape, l, scratch);
            std::mem::swap(&mut a, &mut b);
        }
    }
    a
}

fn pad<E: Extremum>(image: ArrayView2<f32>, (ey, ex): (usize, usize)) -> Array2<f32> {
    let (ny, nx) = image.dim();
    let mut a = Array2::<f32>::from_elem((ny + 2 * ey, nx + 2 * ex), E::IDENTITY);
    a.slice_mut(s![ey..ey + ny, ex..ex + nx]).assign(&image);
    a
}

/// Decomposed filter, returning the result **transposed** (x, y): the
/// row-wise lines run first, then the plane is transposed once and the
/// horizontal lines run as vertical ones.
fn filter_t<E: Extremum>(
    image: ArrayView2<f32>,
    fp: &Footprint,
    s_: &mut PassScratch,
) -> Array2<f32> {
    let (ny, nx) = image.dim();
    let (ey, ex) = fp.extent();
    let (rowwise, horizontal) = split_lines(fp);
    let a = apply::<E>(pad::<E>(image, (ey, ex)), &rowwise, s_);
    let t = transpose(a.view());
    let t = apply::<E>(t, &horizontal, s_);
    t.slice(s![ex..ex + nx, ey..ey + ny]).to_owned()
}

/// Decomposed filter of a **transposed** image, returning the result in
/// normal orientation (the mirror of [`filter_t`]).
fn filter_from_t<E: Extremum>(
    image_t: ArrayView2<f32>,
    fp: &Footprint,
    s_: &mut PassScratch,
) -> Array2<f32> {
    let (nx, ny) = image_t.dim();
    let (ey, ex) = fp.extent();
    let (rowwise, horizontal) = split_lines(fp);
    let t = apply::<E>(pad::<E>(image_t, (ex, ey)), &horizontal, s_);
    let a = transpose(t.view());
    let a = apply::<E>(a, &rowwise, s_);
    a.slice(s![ey..ey + ny, ex..ex + nx]).to_owned()
}

/// Decomposed filter without any transpose (every horizontal line short).
fn filter_direct<E: Extremum>(
    image: ArrayView2<f32>,
    fp: &Footprint,
    s_: &mut PassScratch,
) -> Array2<f32> {
    let (ny, nx) = image.dim();
    let (ey, ex) = fp.extent();
    let a = apply::<E>(pad::<E>(image, (ey, ex)), fp.lines(), s_);
    a.slice(s![ey..ey + ny, ex..ex + nx]).to_owned()
}

fn filter<E: Extremum>(image: ArrayView2<f32>, fp: &Footprint) -> Array2<f32> {
    if fp.lines().is_empty() {
        return chord_filter::<E>(image, fp);
    }
    if split_lines(fp).1.is_empty() {
        return filter_direct::<E>(image, fp, &mut PassScratch::default());
    }
    let mut scratch = PassScratch::default();
    transpose(filter_t::<E>(image, fp, &mut scratch).view())
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
    if fp.lines().is_empty() {
        return dilate(erode(image, fp).view(), fp);
    }
    let mut scratch = PassScratch::default();
    if split_lines(fp).1.is_empty() {
        let e = filter_direct::<Min>(image, fp, &mut scratch);
        return filter_direct::<Max>(e.view(), fp, &mut scratch);
    }
    // Erode into the transposed orientation and dilate back: two transposes
    // for the whole opening.
    let eroded_t = filter_t::<Min>(image, fp, &mut scratch);
    filter_from_t::<Max>(eroded_t.view(), fp, &mut scratch)
}
