//! The line kernels of [`super::morphology`]: van Herk / Gil–Werman
//! running extrema (van Herk 1992; Gil & Werman 1993) laid out for the
//! cache and the vector units, and the shifted row operations of the direct
//! passes.
//!
//! * [`running`]: the textbook 1-D form (prefix/suffix per block of w).
//! * [`strip_van_herk`]: lines with a row step, one row operation at a time
//!   on contiguous rows, block by block in L2-resident buffers.
//! * [`horizontal_van_herk`]: lines along rows, vectorised across a strip
//!   of interleaved rows (no transpose of the plane).

use rayon::prelude::*;

use super::morphology::Extremum;

/// Scratch for [`running`]: prefix and suffix arrays.
#[derive(Default)]
pub(super) struct RunBuf {
    g: Vec<f32>,
    p: Vec<f32>,
    q: Vec<f32>,
}

/// Centred running extremum of half-width `h` (window 2h+1), outside = identity.
///
/// van Herk (1992) / Gil & Werman (1993): pad with h identities each side,
/// extend to a multiple of w; per block of w, prefix P and suffix S;
/// `out[j] = pick(S[j], P[j + 2h])`.
pub(super) fn running<E: Extremum>(f: &[f32], h: usize, out: &mut [f32], buf: &mut RunBuf) {
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

/// `dst[x] = pick(dst[x], src[x + off])` where `x + off` is inside the row.
#[inline]
pub(super) fn pick_shifted<E: Extremum>(dst: &mut [f32], src: &[f32], off: i64) {
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
pub(super) fn pick2_shifted<E: Extremum>(dst: &mut [f32], a: &[f32], b: &[f32], off: i64) {
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

/// Rows of `plane` (row-major, `nx` wide) as one slice.
#[inline]
pub(super) fn row(plane: &[f32], y: usize, nx: usize) -> &[f32] {
    &plane[y * nx..(y + 1) * nx]
}

/// Row-wise van Herk for a line with a row step `vy ≥ 1`, strip-mined.
///
/// Blocks of w = 2h+1 chain steps are aligned on absolute rows (the block of
/// row y is `(y / vy) / w`, `vy·w` rows); the prefix P and suffix S follow
/// the chain from row to row, so every operation is on a contiguous row.
/// Output row y is `pick(S[y − h·vy] shifted by −h·vx, P[y + h·vy] shifted
/// by +h·vx)`; it needs S of one block and P of that block or the next, so
/// each task computes them block by block into three block buffers that stay
/// in the core's L2 cache instead of writing two full planes.
pub(super) fn strip_van_herk<E: Extremum>(
    src: &[f32],
    dst: &mut [f32],
    (ny, nx): (usize, usize),
    (vy, vx): (usize, i64),
    h: usize,
) {
    let w = 2 * h + 1;
    let bw = vy * w;
    let hv = h * vy;
    let nblocks = ny.div_ceil(bw);
    let per_task = (nblocks / (4 * rayon::current_num_threads())).max(1);
    // Task k owns the output rows y with y − h·vy in its blocks (the first
    // task also the rows above, the last the rows below).
    let mut tasks = Vec::new();
    let mut rest = dst;
    let mut y0 = 0;
    for c0 in (0..nblocks).step_by(per_task) {
        let c1 = (c0 + per_task).min(nblocks);
        let y1 = if c1 == nblocks {
            ny
        } else {
            (c1 * bw + hv).min(ny)
        };
        let (head, tail) = rest.split_at_mut((y1 - y0) * nx);
        tasks.push((y0, head));
        rest = tail;
        y0 = y1;
    }
    tasks.into_par_iter().for_each(|(y_start, out)| {
        let mut s_buf = StripBlock::new(bw * nx);
        let mut p_buf = [StripBlock::new(bw * nx), StripBlock::new(bw * nx)];
        for (r, o) in out.chunks_mut(nx).enumerate() {
            let y = y_start + r;
            // pick(S[y − h·vy][i − h·vx], P[y + h·vy][i + h·vx]), identity
            // outside, one write per pixel.
            let k = h as i64 * vx;
            let srow = y.checked_sub(hv).map(|ys| {
                let c = ys / bw;
                s_buf.ensure(c, |b| {
                    scan_block::<E>(src, b, (ny, nx), (vy, vx), (w, c), false)
                });
                row(&s_buf.data, ys - c * bw, nx)
            });
            let ye = y + hv;
            let prow = (ye < ny).then(|| {
                let c = ye / bw;
                let slot = c % 2;
                p_buf[slot].ensure(c, |b| {
                    scan_block::<E>(src, b, (ny, nx), (vy, vx), (w, c), true)
                });
                row(&p_buf[slot].data, ye - c * bw, nx)
            });
            match (srow, prow) {
                (Some(a), Some(b)) => pick_two::<E>(o, (a, -k), (b, k)),
                (Some(a), None) => shifted_copy(o, a, -k, E::IDENTITY),
                (None, Some(b)) => shifted_copy(o, b, k, E::IDENTITY),
                (None, None) => o.fill(E::IDENTITY),
            }
        }
    });
}

/// `o[i] = pick(a[i + ao], b[i + bo])`, a term dropped where its index is
/// outside (identity if both are).
#[inline]
fn pick_two<E: Extremum>(o: &mut [f32], (a, ao): (&[f32], i64), (b, bo): (&[f32], i64)) {
    let n = o.len() as i64;
    let first = |off: i64| (-off).clamp(0, n) as usize;
    let end = |off: i64| (n - off).clamp(0, n) as usize;
    let (c0, c1) = (first(ao).max(first(bo)), end(ao).min(end(bo)));
    let at = |v: &[f32], off: i64, i: usize| {
        let j = i as i64 + off;
        if (0..n).contains(&j) {
            v[j as usize]
        } else {
            E::IDENTITY
        }
    };
    for i in (0..c0.min(c1)).chain(c1.max(c0)..o.len()) {
        o[i] = E::pick(at(a, ao, i), at(b, bo, i));
    }
    if c0 < c1 {
        let (sa, sb) = ((c0 as i64 + ao) as usize, (c0 as i64 + bo) as usize);
        let len = c1 - c0;
        for ((d, x), y) in o[c0..c1]
            .iter_mut()
            .zip(&a[sa..sa + len])
            .zip(&b[sb..sb + len])
        {
            *d = E::pick(*x, *y);
        }
    }
}

/// A block buffer of [`strip_van_herk`] and the block it holds.
struct StripBlock {
    data: Vec<f32>,
    block: Option<usize>,
}

impl StripBlock {
    fn new(len: usize) -> Self {
        StripBlock {
            data: vec![0.0; len],
            block: None,
        }
    }
    fn ensure(&mut self, c: usize, fill: impl FnOnce(&mut [f32])) {
        if self.block != Some(c) {
            fill(&mut self.data);
            self.block = Some(c);
        }
    }
}

/// Prefix (`forward`) or suffix extremum of block `c` along the chains:
/// row y continues row y − vy (prefix) or y + vy (suffix) unless that row
/// is outside the block or the plane.
fn scan_block<E: Extremum>(
    src: &[f32],
    buf: &mut [f32],
    (ny, nx): (usize, usize),
    (vy, vx): (usize, i64),
    (w, c): (usize, usize),
    forward: bool,
) {
    let bw = vy * w;
    let rows = bw.min(ny - c * bw);
    for i in 0..rows {
        let r = if forward { i } else { rows - 1 - i };
        let g = row(src, c * bw + r, nx);
        let prior = if forward {
            r.checked_sub(vy)
        } else {
            Some(r + vy).filter(|&q| q < rows)
        };
        match prior {
            Some(q) => {
                let (cur, prev) = if q < r {
                    let (a, b) = buf.split_at_mut(r * nx);
                    (&mut b[..nx], &a[q * nx..(q + 1) * nx])
                } else {
                    let (a, b) = buf.split_at_mut(q * nx);
                    (&mut a[r * nx..(r + 1) * nx], &b[..nx])
                };
                pick2_shifted::<E>(cur, g, prev, if forward { -vx } else { vx });
            }
            None => buf[r * nx..(r + 1) * nx].copy_from_slice(g),
        }
    }
}

/// `o[i] = row[i + off]`, `fill` where `i + off` is outside.
#[inline]
pub(super) fn shifted_copy(o: &mut [f32], row: &[f32], off: i64, fill: f32) {
    let n = o.len();
    let k = off.unsigned_abs() as usize;
    if k >= n {
        o.fill(fill);
    } else if off >= 0 {
        o[..n - k].copy_from_slice(&row[k..]);
        o[n - k..].fill(fill);
    } else {
        o[..k].fill(fill);
        o[k..].copy_from_slice(&row[..n - k]);
    }
}

/// Rows filtered together by [`horizontal_van_herk`] (the SIMD lanes).
const LANES: usize = 8;

type Lanes = [f32; LANES];

#[inline(always)]
fn pick_lanes<E: Extremum>(a: &Lanes, b: &Lanes) -> Lanes {
    std::array::from_fn(|l| E::pick(a[l], b[l]))
}

/// van Herk along rows (step (0, 1)), vectorised across rows: a strip of
/// [`LANES`] rows is interleaved (sample i of every row in one vector) so
/// the serial prefix and suffix scans run on whole vectors, then written
/// back. Replaces a transpose of the whole plane by one of a cache-resident
/// strip.
pub(super) fn horizontal_van_herk<E: Extremum>(
    src: &[f32],
    dst: &mut [f32],
    (_, nx): (usize, usize),
    h: usize,
) {
    let w = 2 * h + 1;
    let len = (nx + 2 * h).div_ceil(w) * w;
    dst.par_chunks_mut(LANES * nx)
        .zip(src.par_chunks(LANES * nx))
        .for_each_init(
            || {
                (
                    vec![[E::IDENTITY; LANES]; len],
                    vec![[0.0; LANES]; len],
                    vec![[0.0; LANES]; len],
                    vec![[0.0; LANES]; nx],
                )
            },
            |(g, p, q, r), (o, s)| {
                // Interleave; lanes past the last row keep the identity.
                for (l, r) in s.chunks_exact(nx).enumerate() {
                    for (gi, v) in g[h..h + nx].iter_mut().zip(r) {
                        gi[l] = *v;
                    }
                }
                for ((gb, pb), qb) in g
                    .chunks_exact(w)
                    .zip(p.chunks_exact_mut(w))
                    .zip(q.chunks_exact_mut(w))
                {
                    // Prefix and suffix in one loop: two independent
                    // dependency chains keep the vector units busy.
                    let (mut up, mut down) = (gb[0], gb[w - 1]);
                    for i in 0..w {
                        up = pick_lanes::<E>(&up, &gb[i]);
                        pb[i] = up;
                        down = pick_lanes::<E>(&down, &gb[w - 1 - i]);
                        qb[w - 1 - i] = down;
                    }
                }
                // out[j] = pick(S[j], P[j + 2h]) per lane, then de-interleaved.
                for ((d, qj), pj) in r.iter_mut().zip(q.iter()).zip(&p[2 * h..]) {
                    *d = pick_lanes::<E>(qj, pj);
                }
                for (l, orow) in o.chunks_exact_mut(nx).enumerate() {
                    for (d, v) in orow.iter_mut().zip(r.iter()) {
                        *d = v[l];
                    }
                }
            },
        );
}
