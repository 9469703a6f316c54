//! PRISM's probe evaluation for a tile of neighbouring probes (spec §9):
//! every probe is `ψ_p = Σ_j c_j(p) S_j` on its window, and the
//! coefficients factor, `c_j(p) = a_j · e^{−2πi k_{x,j} x_p} ·
//! e^{−2πi k_{y,j} y_p}` (aperture and defocus in `a_j`). With the plane
//! waves grouped by k_y, a tile of probes on `U` scan rows and `V` scan
//! columns is evaluated row by row of the tile's window union in two
//! steps:
//!
//! 1. `T_r(z, v, x) = Σ_{j: k_y = k_r} a_{j,z} e^{−2πi k_{x,j} x_v} S_j(x)`
//!    (every plane wave × every defocus node z and scan column v);
//! 2. `ψ_{u,v,z}(x) = Σ_r e^{−2πi k_r y_u} T_r(z, v, x)` for the probes
//!    whose window holds the row.
//!
//! Per pixel this costs `N_b·V + R·U·V` complex multiply–adds instead of
//! `N_b·U·V` (R ≈ √N_b rows of the basis), and each S-matrix row is read
//! once per tile instead of once per probe, which is what made the
//! probe-by-probe sum memory-bound. Written here rather than as a call to a
//! complex GEMM: a GEMM cannot use the factorisation, and none is in the
//! dependency set.
//!
//! The x range is processed in chunks whose accumulators stay in the L2
//! cache; the multiply–adds run on split real/imaginary rows so they
//! vectorise.

use num_complex::Complex;
use rayon::prelude::*;

/// Pixels per x chunk (measured: wider chunks push the accumulators of one
/// basis row out of the L1 cache).
const XC: usize = 128;

/// The plane waves of one k_y row of the basis.
pub(super) struct BasisRow {
    /// k_y, 1/Å.
    pub ky: f64,
    /// (index into the S-matrix, k_x 1/Å) of every member.
    pub members: Vec<(usize, f64)>,
}

/// Probes on the grid `ys × xs` (Å); `probes` are the (u, v) index pairs
/// present (a wedge may leave some out).
pub(super) struct Tile {
    pub ys: Vec<f64>,
    pub xs: Vec<f64>,
    pub probes: Vec<(usize, usize)>,
}

/// The geometry shared by every tile.
pub(super) struct Frame<'a> {
    /// The S-matrix, one `n × n` plane per plane wave.
    pub waves: &'a [Vec<Complex<f32>>],
    pub n: usize,
    /// Window side, `n / f`.
    pub nw: usize,
    /// Pixel size, Å.
    pub dx: f64,
    pub rows: &'a [BasisRow],
    /// `a_{j,z}` by node z and S-matrix index j.
    pub a: &'a [Vec<Complex<f64>>],
}

/// Window origins (virtual, unwrapped pixel index) of probe coordinates
/// `c` (Å): the window is centred on the probe's nearest pixel.
fn origins(c: &[f64], dx: f64, nw: usize) -> Vec<i64> {
    c.iter()
        .map(|&v| (v / dx).round() as i64 - (nw / 2) as i64)
        .collect()
}

/// A window row to write: (u, v, node, the row).
type Dest<'b> = (usize, usize, usize, &'b mut [Complex<f32>]);

/// Write the windows of every probe of `tile` and every defocus node into
/// `out` in the order `probes × nodes` (`nw × nw` each, row-major, window
/// origin at the probe minus `nw/2` pixels; every pixel is overwritten, so
/// `out` is reused across tiles).
pub(super) fn windows(fr: &Frame<'_>, tile: &Tile, out: &mut [Vec<Complex<f32>>]) {
    let nw = fr.nw;
    let nz = fr.a.len();
    let nv = tile.xs.len();
    let nzv = nz * nv;
    let oy = origins(&tile.ys, fr.dx, nw);
    let ox = origins(&tile.xs, fr.dx, nw);
    let (oy0, ox0) = (
        oy.iter().copied().min().unwrap_or(0),
        ox.iter().copied().min().unwrap_or(0),
    );
    let offy: Vec<usize> = oy.iter().map(|&o| (o - oy0) as usize).collect();
    let offx: Vec<usize> = ox.iter().map(|&o| (o - ox0) as usize).collect();
    let h = offy.iter().max().map_or(0, |m| m + nw);
    let w = offx.iter().max().map_or(0, |m| m + nw);
    let tau = std::f64::consts::TAU;
    // Step-1 coefficients c1[r][member · nzv + z · nv + v].
    let c1: Vec<Vec<Complex<f32>>> = fr
        .rows
        .iter()
        .map(|row| {
            let mut c = Vec::with_capacity(row.members.len() * nzv);
            for &(j, kx) in &row.members {
                for a in fr.a {
                    for &x in &tile.xs {
                        let v = a[j] * Complex::from_polar(1.0, -tau * kx * x);
                        c.push(Complex::new(v.re as f32, v.im as f32));
                    }
                }
            }
            c
        })
        .collect();
    // Step-2 coefficients c2[u][r].
    let c2: Vec<Vec<Complex<f32>>> = tile
        .ys
        .iter()
        .map(|&y| {
            fr.rows
                .iter()
                .map(|row| {
                    let v = Complex::from_polar(1.0, -tau * row.ky * y);
                    Complex::new(v.re as f32, v.im as f32)
                })
                .collect()
        })
        .collect();
    // Every window row, bucketed by the tile row it comes from.
    let mut buckets: Vec<Vec<Dest<'_>>> = (0..h).map(|_| Vec::new()).collect();
    for (qz, win) in out[..tile.probes.len() * nz].iter_mut().enumerate() {
        let (u, v) = tile.probes[qz / nz];
        for (r, row) in win.chunks_mut(nw).enumerate() {
            buckets[offy[u] + r].push((u, v, qz % nz, row));
        }
    }
    let g = Geometry {
        oy0,
        ox0,
        w,
        offx: &offx,
        c1: &c1,
        c2: &c2,
        nzv,
        nv,
    };
    buckets.into_par_iter().enumerate().for_each_init(
        || Scratch::new(fr.rows.len(), nzv),
        |s, (ry, mut dests)| tile_row(fr, &g, s, ry, &mut dests),
    );
}

/// What every row of a tile shares: the union's virtual origin and width,
/// the windows' column offsets and both steps' coefficients.
struct Geometry<'a> {
    oy0: i64,
    ox0: i64,
    w: usize,
    offx: &'a [usize],
    c1: &'a [Vec<Complex<f32>>],
    c2: &'a [Vec<Complex<f32>>],
    nzv: usize,
    nv: usize,
}

/// Both steps for tile row `ry`, writing the window rows `dests`
/// ((u, v, z, row)); with fused multiply–adds on 512- or 256-bit vectors
/// when the CPU has them (the same sums, rounded once per product).
fn tile_row(
    fr: &Frame<'_>,
    g: &Geometry<'_>,
    s: &mut Scratch,
    ry: usize,
    dests: &mut [Dest<'_>],
) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("fma") {
            // SAFETY: AVX-512F and FMA are present (checked above).
            unsafe { tile_row_avx512(fr, g, s, ry, dests) };
            return;
        }
        if has!("avx2") && has!("fma") {
            // SAFETY: AVX2 and FMA are present (checked above).
            unsafe { tile_row_avx2(fr, g, s, ry, dests) };
            return;
        }
    }
    tile_row_body::<false>(fr, g, s, ry, dests);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn tile_row_avx512(
    fr: &Frame<'_>,
    g: &Geometry<'_>,
    s: &mut Scratch,
    ry: usize,
    dests: &mut [Dest<'_>],
) {
    tile_row_body::<true>(fr, g, s, ry, dests);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_row_avx2(
    fr: &Frame<'_>,
    g: &Geometry<'_>,
    s: &mut Scratch,
    ry: usize,
    dests: &mut [Dest<'_>],
) {
    tile_row_body::<true>(fr, g, s, ry, dests);
}

#[inline(always)]
fn tile_row_body<const FMA: bool>(
    fr: &Frame<'_>,
    g: &Geometry<'_>,
    s: &mut Scratch,
    ry: usize,
    dests: &mut [Dest<'_>],
) {
    let (n, nw, nzv) = (fr.n, fr.nw, g.nzv);
    let y = (g.oy0 + ry as i64).rem_euclid(n as i64) as usize;
    for c0 in (0..g.w).step_by(XC) {
        let len = XC.min(g.w - c0);
        s.t.fill(0.0);
        // Step 1.
        for (r, row) in fr.rows.iter().enumerate() {
            for (m, &(j, _)) in row.members.iter().enumerate() {
                s.gather(&fr.waves[j][y * n..(y + 1) * n], g.ox0 + c0 as i64, len);
                let t = &mut s.t[r * nzv * 2 * XC..(r + 1) * nzv * 2 * XC];
                for (&c, tz) in g.c1[r][m * nzv..(m + 1) * nzv]
                    .iter()
                    .zip(t.chunks_exact_mut(2 * XC))
                {
                    let (tr, ti) = tz.split_at_mut(XC);
                    axpy::<FMA>(tr, ti, &s.sr, &s.si, c);
                }
            }
        }
        // Step 2.
        for (u, v, z, dst) in &mut *dests {
            let a = g.offx[*v].max(c0);
            let b = (g.offx[*v] + nw).min(c0 + len);
            if a >= b {
                continue;
            }
            let (ar, ai) = s.acc.split_at_mut(XC);
            ar.fill(0.0);
            ai.fill(0.0);
            for (r, &c) in g.c2[*u].iter().enumerate() {
                let t = (r * nzv + *z * g.nv + *v) * 2 * XC;
                let (tr, ti) = s.t[t..t + 2 * XC].split_at(XC);
                axpy::<FMA>(ar, ai, tr, ti, c);
            }
            for (k, d) in (a..b).zip(&mut dst[a - g.offx[*v]..b - g.offx[*v]]) {
                *d = Complex::new(ar[k - c0], ai[k - c0]);
            }
        }
    }
}

/// Per-thread buffers: the step-1 accumulators (row r, node–column zv,
/// re/im, x), one gathered S-matrix row chunk and a step-2 accumulator,
/// for chunks of [`XC`] pixels.
struct Scratch {
    t: Vec<f32>,
    sr: Vec<f32>,
    si: Vec<f32>,
    acc: Vec<f32>,
}

impl Scratch {
    fn new(rows: usize, nzv: usize) -> Self {
        Self {
            t: vec![0.0; rows * nzv * 2 * XC],
            sr: vec![0.0; XC],
            si: vec![0.0; XC],
            acc: vec![0.0; 2 * XC],
        }
    }

    /// Split `len` pixels of the periodic row `src` from virtual column
    /// `x0` into `sr`/`si` (zero beyond `len`): at most two contiguous
    /// runs, so the copy vectorises.
    #[inline(always)]
    fn gather(&mut self, src: &[Complex<f32>], x0: i64, len: usize) {
        let n = src.len();
        let x = x0.rem_euclid(n as i64) as usize;
        let first = len.min(n - x);
        let runs = [(&src[x..x + first], 0), (&src[..len - first], first)];
        for (run, at) in runs {
            for ((c, r), i) in run
                .iter()
                .zip(&mut self.sr[at..at + run.len()])
                .zip(&mut self.si[at..at + run.len()])
            {
                *r = c.re;
                *i = c.im;
            }
        }
        self.sr[len..].fill(0.0);
        self.si[len..].fill(0.0);
    }
}

/// `t += c · s` on split real/imaginary rows (`FMA`: fused multiply–adds,
/// only where the CPU has them).
#[inline(always)]
fn axpy<const FMA: bool>(tr: &mut [f32], ti: &mut [f32], sr: &[f32], si: &[f32], c: Complex<f32>) {
    let (tr, ti, sr, si) = (&mut tr[..XC], &mut ti[..XC], &sr[..XC], &si[..XC]);
    for k in 0..XC {
        if FMA {
            tr[k] = c.re.mul_add(sr[k], (-c.im).mul_add(si[k], tr[k]));
            ti[k] = c.re.mul_add(si[k], c.im.mul_add(sr[k], ti[k]));
        } else {
            tr[k] += c.re * sr[k] - c.im * si[k];
            ti[k] += c.re * si[k] + c.im * sr[k];
        }
    }
}
