//! PRISM's probe evaluation for a tile of neighbouring probes (docs/methods/multislice.md):
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
//! The x range is processed in chunks whose step-1 results stay in the L2
//! cache; both steps run on split real/imaginary rows and accumulate
//! [`LANES`] pixels in registers.

use num_complex::Complex;
use rayon::prelude::*;

/// Pixels per x chunk: the step-1 results of a chunk (basis rows ×
/// node–columns × XC) and the gathered S-matrix rows stay in the L2 cache.
/// A runtime chunk width was measured 2× slower than this constant.
const XC: usize = 128;
/// Pixels per register accumulator (one 512-bit vector of f32).
const LANES: usize = 16;
/// Node–columns accumulated together in step 1.
const ZB: usize = 4;

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
    // Node–columns, padded to a multiple of ZB with zero coefficients.
    let nzv = (nz * nv).div_ceil(ZB) * ZB;
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
    let most = fr.rows.iter().map(|r| r.members.len()).max().unwrap_or(0);
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
                c.resize(c.len() + nzv - nz * nv, Complex::new(0.0, 0.0));
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
        || Scratch::new(fr.rows.len(), most, nzv),
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
fn tile_row(fr: &Frame<'_>, g: &Geometry<'_>, s: &mut Scratch, ry: usize, dests: &mut [Dest<'_>]) {
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
        // Step 1, one basis row at a time: its S-matrix rows gathered,
        // then ZB node–columns × LANES pixels accumulated in registers
        // over the row's members.
        for (r, row) in fr.rows.iter().enumerate() {
            let nm = row.members.len();
            for (m, &(j, _)) in row.members.iter().enumerate() {
                let (sr, si) = (
                    &mut s.sr[m * XC..(m + 1) * XC],
                    &mut s.si[m * XC..(m + 1) * XC],
                );
                gather(
                    sr,
                    si,
                    &fr.waves[j][y * n..(y + 1) * n],
                    g.ox0 + c0 as i64,
                    len,
                );
            }
            let c1 = &g.c1[r];
            let t = &mut s.t[r * nzv * 2 * XC..(r + 1) * nzv * 2 * XC];
            for zb in (0..nzv).step_by(ZB) {
                for lb in (0..XC).step_by(LANES) {
                    let mut acc = [[0.0f32; LANES]; 2 * ZB];
                    for m in 0..nm {
                        let sr: &[f32; LANES] = as_lanes(&s.sr[m * XC + lb..]);
                        let si: &[f32; LANES] = as_lanes(&s.si[m * XC + lb..]);
                        for q in 0..ZB {
                            let c = c1[m * nzv + zb + q];
                            let (re, im) = acc.split_at_mut(ZB);
                            cmac::<FMA>(&mut re[q], &mut im[q], sr, si, c);
                        }
                    }
                    for q in 0..ZB {
                        let o = (zb + q) * 2 * XC + lb;
                        t[o..o + LANES].copy_from_slice(&acc[q]);
                        t[o + XC..o + XC + LANES].copy_from_slice(&acc[ZB + q]);
                    }
                }
            }
        }
        // Step 2, accumulated in registers over the basis rows.
        for (u, v, z, dst) in &mut *dests {
            let a = g.offx[*v].max(c0);
            let b = (g.offx[*v] + nw).min(c0 + len);
            if a >= b {
                continue;
            }
            let zv = *z * g.nv + *v;
            for lb in ((a - c0) / LANES * LANES..b - c0).step_by(LANES) {
                let (mut ar, mut ai) = ([0.0f32; LANES], [0.0f32; LANES]);
                for (r, &c) in g.c2[*u].iter().enumerate() {
                    let o = (r * nzv + zv) * 2 * XC + lb;
                    let tr: &[f32; LANES] = as_lanes(&s.t[o..]);
                    let ti: &[f32; LANES] = as_lanes(&s.t[o + XC..]);
                    cmac::<FMA>(&mut ar, &mut ai, tr, ti, c);
                }
                for l in 0..LANES {
                    let k = c0 + lb + l;
                    if k >= a && k < b {
                        dst[k - g.offx[*v]] = Complex::new(ar[l], ai[l]);
                    }
                }
            }
        }
    }
}

/// The first [`LANES`] values of `v`.
#[inline(always)]
fn as_lanes(v: &[f32]) -> &[f32; LANES] {
    match v.first_chunk::<LANES>() {
        Some(c) => c,
        None => &[0.0; LANES],
    }
}

/// `acc += c · s` on LANES split real/imaginary values (`FMA`: fused
/// multiply–adds, only where the CPU has them).
#[inline(always)]
fn cmac<const FMA: bool>(
    ar: &mut [f32; LANES],
    ai: &mut [f32; LANES],
    sr: &[f32; LANES],
    si: &[f32; LANES],
    c: Complex<f32>,
) {
    for l in 0..LANES {
        if FMA {
            ar[l] = c.re.mul_add(sr[l], (-c.im).mul_add(si[l], ar[l]));
            ai[l] = c.re.mul_add(si[l], c.im.mul_add(sr[l], ai[l]));
        } else {
            ar[l] += c.re * sr[l] - c.im * si[l];
            ai[l] += c.re * si[l] + c.im * sr[l];
        }
    }
}

/// Split `len` pixels of the periodic row `src` from virtual column `x0`
/// into `sr`/`si` (zero beyond `len`): at most two contiguous runs, so the
/// copy vectorises.
#[inline(always)]
fn gather(sr: &mut [f32], si: &mut [f32], src: &[Complex<f32>], x0: i64, len: usize) {
    let n = src.len();
    let x = x0.rem_euclid(n as i64) as usize;
    let first = len.min(n - x);
    let runs = [(&src[x..x + first], 0), (&src[..len - first], first)];
    for (run, at) in runs {
        for ((c, r), i) in run
            .iter()
            .zip(&mut sr[at..at + run.len()])
            .zip(&mut si[at..at + run.len()])
        {
            *r = c.re;
            *i = c.im;
        }
    }
    sr[len..].fill(0.0);
    si[len..].fill(0.0);
}

/// Per-thread buffers: the step-1 accumulators (row r, node–column zv,
/// re/im, [`XC`] pixels) and the gathered S-matrix rows of one basis row.
struct Scratch {
    t: Vec<f32>,
    sr: Vec<f32>,
    si: Vec<f32>,
}

impl Scratch {
    /// For `rows` basis rows of at most `members` plane waves and `nzv`
    /// node–columns (a multiple of [`ZB`]).
    fn new(rows: usize, members: usize, nzv: usize) -> Self {
        Self {
            t: vec![0.0; rows * nzv * 2 * XC],
            sr: vec![0.0; members * XC],
            si: vec![0.0; members * XC],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiled two-step evaluation equals the direct sum
    /// `Σ_j a_{j,z} e^{−2πi k_j·r_p} S_j` on every window, with windows
    /// wrapping around the periodic cell, a tile with a probe missing (as
    /// in the wedge), two defocus nodes and a node–column count that is not
    /// a multiple of ZB.
    #[test]
    fn tiles_equal_the_direct_sum() {
        let (n, nw, dx) = (40, 20, 0.5);
        // Pseudo-random S-matrix of 7 plane waves.
        let mut seed = 12345u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        };
        let waves: Vec<Vec<Complex<f32>>> = (0..7)
            .map(|_| {
                (0..n * n)
                    .map(|_| Complex::new(rnd() as f32, rnd() as f32))
                    .collect()
            })
            .collect();
        let k = [
            (-0.1, 0.0),
            (-0.1, 0.1),
            (0.0, -0.1),
            (0.0, 0.0),
            (0.0, 0.1),
            (0.1, -0.1),
            (0.1, 0.2),
        ];
        let mut rows: Vec<BasisRow> = Vec::new();
        for (j, &(ky, kx)) in k.iter().enumerate() {
            match rows.iter_mut().find(|r| r.ky == ky) {
                Some(r) => r.members.push((j, kx)),
                None => rows.push(BasisRow {
                    ky,
                    members: vec![(j, kx)],
                }),
            }
        }
        let a: Vec<Vec<Complex<f64>>> = (0..2)
            .map(|_| (0..7).map(|_| Complex::new(rnd(), rnd())).collect())
            .collect();
        let tile = Tile {
            ys: vec![0.0, 1.0, 2.5],
            xs: vec![17.0, 18.5, 19.5],
            probes: vec![(0, 0), (0, 2), (1, 1), (2, 0), (2, 1), (2, 2)],
        };
        let fr = Frame {
            waves: &waves,
            n,
            nw,
            dx,
            rows: &rows,
            a: &a,
        };
        let mut out = vec![vec![Complex::new(0.0f32, 0.0); nw * nw]; tile.probes.len() * 2];
        windows(&fr, &tile, &mut out);
        let mut worst = 0.0f64;
        for (q, &(u, v)) in tile.probes.iter().enumerate() {
            let (y, x) = (tile.ys[u], tile.xs[v]);
            let o = |c: f64| (c / dx).round() as i64 - (nw / 2) as i64;
            for z in 0..2 {
                for r in 0..nw {
                    for c in 0..nw {
                        let yy = (o(y) + r as i64).rem_euclid(n as i64) as usize;
                        let xx = (o(x) + c as i64).rem_euclid(n as i64) as usize;
                        let want: Complex<f64> = (0..7)
                            .map(|j| {
                                let ph = -std::f64::consts::TAU * (k[j].0 * y + k[j].1 * x);
                                let s = waves[j][yy * n + xx];
                                a[z][j]
                                    * Complex::from_polar(1.0, ph)
                                    * Complex::new(f64::from(s.re), f64::from(s.im))
                            })
                            .sum();
                        let got = out[q * 2 + z][r * nw + c];
                        let d = (Complex::new(f64::from(got.re), f64::from(got.im)) - want).norm();
                        worst = worst.max(d);
                    }
                }
            }
        }
        assert!(worst < 1e-5, "largest difference {worst}");
    }
}
