//! The linear part of the joint fit: the Gaussian stamps on the fit region
//! (`region.rs`), and the volumes + background nodes solved matrix-free by
//! Jacobi-preconditioned conjugate gradients on the normal equations.

use rayon::prelude::*;

use super::normal::Factor;
use super::region::Region;

/// Gaussian stamps of the columns: `g[i]` lists (region pixel, value per
/// unit W) of column i, `r2[i]` the squared distance r² = dᵀS⁻¹d of each
/// entry in the shape's metric. The values are f32 (8 bytes an entry
/// instead of 24 with r²): every product of the linear solve streams them,
/// and its time is memory bandwidth (a whole `analyze --neighbours joint`
/// of a 1024² stack: docs/benchmarks.md); sums and solutions stay f64, and
/// forward and adjoint use the same values, so the operator stays exactly
/// symmetric.
pub(super) struct Stamps {
    pub(super) g: Vec<Vec<(u32, f32)>>,
    pub(super) r2: Vec<Vec<f32>>,
}

impl Stamps {
    /// Number of columns.
    pub(super) fn len(&self) -> usize {
        self.g.len()
    }
    /// (region pixel, value) of column i.
    pub(super) fn column(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.g[i].iter().map(|&(k, g)| (k as usize, f64::from(g)))
    }
    /// (region pixel, r²) of column i.
    pub(super) fn column_r2(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.g[i]
            .iter()
            .zip(&self.r2[i])
            .map(|(&(k, _), &r2)| (k as usize, f64::from(r2)))
    }
}

/// The shared shape of every column: covariance σ_c²·S with det S = 1,
/// S = [[1 + q₁, q₂], [q₂, 1 − q₁]] / √(1 − q₁² − q₂²) (an elliptical
/// probe; q = 0 is round). Shared by all classes, so an elliptical probe
/// is not taken for a difference between the classes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Shape {
    pub(super) q1: f64,
    pub(super) q2: f64,
}

impl Shape {
    /// Largest |q| allowed (axis ratio √((1 + q)/(1 − q)) ≤ 1.7).
    pub(super) const MAX_Q: f64 = 0.5;
    pub(super) const ROUND: Shape = Shape { q1: 0.0, q2: 0.0 };
    fn root(self) -> f64 {
        (1.0 - self.q1 * self.q1 - self.q2 * self.q2)
            .max(1e-6)
            .sqrt()
    }
    /// dᵀS⁻¹d.
    pub(super) fn quad(self, dx: f64, dy: f64) -> f64 {
        ((1.0 - self.q1) * dx * dx - 2.0 * self.q2 * dx * dy + (1.0 + self.q1) * dy * dy)
            / self.root()
    }
    /// S⁻¹d.
    pub(super) fn metric(self, dx: f64, dy: f64) -> (f64, f64) {
        let r = self.root();
        (
            ((1.0 - self.q1) * dx - self.q2 * dy) / r,
            (-self.q2 * dx + (1.0 + self.q1) * dy) / r,
        )
    }
    /// √ of the largest eigenvalue of S (how far the stamp reaches).
    fn max_stretch(self) -> f64 {
        ((1.0 + self.q1.hypot(self.q2)) / self.root()).sqrt()
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn stamps(
    reg: &Region,
    x: &[f64],
    y: &[f64],
    cls: &[usize],
    sigma: &[f64],
    sigma0: &[f64],
    reach: f64,
    shape: Shape,
) -> Stamps {
    let ny = reg.index.len() / reg.nx;
    let stretch = shape.max_stretch();
    let (g, r2) = (0..x.len())
        .into_par_iter()
        .map(|i| {
            let s = sigma[cls[i]];
            let rr = stretch * (reach * s).min(reach * sigma.iter().copied().fold(0.0, f64::max));
            // Amplitude per unit W: 1/(2π σ σ₀(class)), so the volume is
            // V = W σ/σ₀ and ∂h/∂σ at fixed W is orthogonal to h for an
            // isolated column (the width step does not fight the volumes).
            let norm = 1.0 / (std::f64::consts::TAU * s * sigma0[cls[i]]);
            let ri = rr.ceil() as i64;
            let (cx, cy) = (x[i].round() as i64, y[i].round() as i64);
            let (mut g, mut d2) = (Vec::new(), Vec::new());
            for yy in (cy - ri).max(0)..=(cy + ri).min(ny as i64 - 1) {
                for xx in (cx - ri).max(0)..=(cx + ri).min(reg.nx as i64 - 1) {
                    let k = reg.index[yy as usize * reg.nx + xx as usize];
                    if k == u32::MAX {
                        continue;
                    }
                    let (dx, dy) = (xx as f64 - x[i], yy as f64 - y[i]);
                    if dx * dx + dy * dy <= rr * rr {
                        let r2 = shape.quad(dx, dy);
                        g.push((k, (norm * (-r2 / (2.0 * s * s)).exp()) as f32));
                        d2.push(r2 as f32);
                    }
                }
            }
            (g, d2)
        })
        .unzip();
    Stamps { g, r2 }
}

/// The model's basis at given nonlinear parameters: the columns' stamps
/// and the plateau's value at each region pixel (empty without a plateau
/// term).
pub(super) struct Terms {
    pub(super) st: Stamps,
    pub(super) plateau: Vec<f64>,
}

/// The linear least-squares operator: unknowns [V (n); b (nodes); h (the
/// plateau's height, when the model has one)].
pub(super) struct Linear<'a> {
    pub(super) reg: &'a Region,
    pub(super) st: &'a Stamps,
    pub(super) plateau: &'a [f64],
    pub(super) n: usize,
    pub(super) nb: usize,
    pub(super) smooth: f64,
    /// The factored normal matrix (of these or nearby nonlinear
    /// parameters) preconditioning the solves; Jacobi without.
    pub(super) pre: Option<&'a Factor>,
}

impl Linear<'_> {
    /// The model A·u.
    pub(super) fn forward(&self, u: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.reg.px.len()];
        self.forward_into(u, &mut out);
        out
    }
    /// `out` = A·u (every pixel written).
    fn forward_into(&self, u: &[f64], out: &mut [f64]) {
        let nodes = &u[self.n..self.n + self.nb];
        out.par_chunks_mut(CHUNK)
            .zip(self.reg.bw.par_chunks(CHUNK))
            .for_each(|(o, bw)| {
                for (o, w) in o.iter_mut().zip(bw) {
                    *o = w.value(nodes);
                }
            });
        add_columns(self.st, &u[..self.n], out);
        if let Some(h) = u.get(self.n + self.nb) {
            for (o, p) in out.iter_mut().zip(self.plateau) {
                *o += h * p;
            }
        }
    }
    /// `out` = AᵀW·r, with W the region's pixel weights.
    fn adjoint_weighted_into(&self, r: &[f64], out: &mut [f64]) {
        let w = &self.reg.weight;
        out[..self.n]
            .par_iter_mut()
            .zip(&self.st.g)
            .for_each(|(o, s)| {
                *o = s
                    .iter()
                    .map(|&(k, g)| f64::from(g) * w[k as usize] * r[k as usize])
                    .sum();
            });
        let b = &mut out[self.n..self.n + self.nb];
        b.fill(0.0);
        for ((bw, rv), wt) in self.reg.bw.iter().zip(r).zip(w) {
            let wr = rv * wt;
            for (k, c) in bw.pairs() {
                b[k] += c * wr;
            }
        }
        if !self.plateau.is_empty() {
            out[self.n + self.nb] = self
                .plateau
                .iter()
                .zip(r)
                .zip(w)
                .map(|((p, r), w)| p * r * w)
                .sum();
        }
    }
    /// Aᵀ W r.
    fn adjoint_weighted(&self, r: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.n + self.nb + usize::from(!self.plateau.is_empty())];
        self.adjoint_weighted_into(r, &mut out);
        out
    }
    /// `out` = (AᵀWA + λL + εI_b) u; `m` is scratch of the region's size.
    pub(super) fn normal_into(&self, u: &[f64], m: &mut [f64], out: &mut [f64]) {
        self.forward_into(u, m);
        self.adjoint_weighted_into(m, out);
        let (gy, gx) = self.reg.grid;
        for y in 0..gy {
            for x in 0..gx {
                let k = y * gx + x;
                let mut acc = 1e-9 * self.smooth * u[self.n + k];
                for (yy, xx) in [
                    (y.wrapping_sub(1), x),
                    (y + 1, x),
                    (y, x.wrapping_sub(1)),
                    (y, x + 1),
                ] {
                    if yy < gy && xx < gx {
                        acc += self.smooth * (u[self.n + k] - u[self.n + yy * gx + xx]);
                    }
                }
                out[self.n + k] += acc;
            }
        }
    }
    /// The diagonal of the background's smoothness term at node `k`:
    /// λ·(its number of grid neighbours) + 10⁻⁹λ (see `normal_into`).
    pub(super) fn smoothness_diagonal(&self, k: usize) -> f64 {
        let (gy, gx) = self.reg.grid;
        let (y, x) = (k / gx, k % gx);
        let deg = [y > 0, y + 1 < gy, x > 0, x + 1 < gx]
            .iter()
            .filter(|t| **t)
            .count();
        self.smooth * deg as f64 + 1e-9 * self.smooth
    }
    fn diagonal(&self) -> Vec<f64> {
        let mut d = columns_diagonal(self.st, &self.reg.weight);
        let mut b = vec![0.0; self.nb];
        for (w, wt) in self.reg.bw.iter().zip(&self.reg.weight) {
            for (k, c) in w.pairs() {
                b[k] += wt * c * c;
            }
        }
        for (k, v) in b.iter_mut().enumerate() {
            *v += self.smoothness_diagonal(k);
        }
        d.extend(b);
        if !self.plateau.is_empty() {
            d.push(
                self.plateau
                    .iter()
                    .zip(&self.reg.weight)
                    .map(|(p, w)| w * p * p)
                    .sum(),
            );
        }
        d.iter()
            .map(|v| if *v > 0.0 { 1.0 / v } else { 1.0 })
            .collect()
    }
}

/// Pixels per parallel chunk of the per-pixel loops.
const CHUNK: usize = 8192;

/// `out` += Σᵢ vᵢ·Gᵢ: the columns' model at weights `v`.
pub(super) fn add_columns(st: &Stamps, v: &[f64], out: &mut [f64]) {
    for (s, &v) in st.g.iter().zip(v) {
        if v != 0.0 {
            for &(k, g) in s {
                out[k as usize] += v * f64::from(g);
            }
        }
    }
}

/// Gᵢᵀr of every column.
pub(super) fn columns_adjoint(st: &Stamps, r: &[f64]) -> Vec<f64> {
    st.g.par_iter()
        .map(|s| s.iter().map(|&(k, g)| f64::from(g) * r[k as usize]).sum())
        .collect()
}

/// GᵢᵀWGᵢ of every column (pixel weights `w`).
pub(super) fn columns_diagonal(st: &Stamps, w: &[f64]) -> Vec<f64> {
    st.g.iter()
        .map(|s| {
            s.iter()
                .map(|&(k, g)| w[k as usize] * f64::from(g).powi(2))
                .sum::<f64>()
        })
        .collect()
}

pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Preconditioned CG on the normal equations, from `u`: with the factored
/// normal matrix `op.pre` when given, else Jacobi.
pub(super) fn solve(op: &Linear, data: &[f64], u: &mut [f64]) {
    let rhs = op.adjoint_weighted(data);
    let mut m = vec![0.0; op.reg.px.len()];
    let mut apply = |v: &[f64], out: &mut [f64]| op.normal_into(v, &mut m, out);
    match op.pre {
        Some(f) => pcg_with(&mut apply, &rhs, &|r, z| f.apply(r, z), u, 400),
        None => pcg(&mut apply, &rhs, &op.diagonal(), u, 400),
    }
}

/// Conjugate gradients on A·u = rhs (A symmetric positive definite, given
/// by its product `apply(v, out)`: out = A·v) with the Jacobi
/// preconditioner `minv` (the inverse diagonal), from `u`; stops at a
/// residual 1e-10 of |rhs| or after `max_iter` steps.
pub(super) fn pcg(
    apply: &mut dyn FnMut(&[f64], &mut [f64]),
    rhs: &[f64],
    minv: &[f64],
    u: &mut [f64],
    max_iter: usize,
) {
    let jacobi = |r: &[f64], z: &mut [f64]| {
        for ((z, r), m) in z.iter_mut().zip(r).zip(minv) {
            *z = r * m;
        }
    };
    pcg_with(apply, rhs, &jacobi, u, max_iter);
}

/// [`pcg`] with the preconditioner `precond(r, z)`: z = M⁻¹·r.
pub(super) fn pcg_with(
    apply: &mut dyn FnMut(&[f64], &mut [f64]),
    rhs: &[f64],
    precond: &dyn Fn(&[f64], &mut [f64]),
    u: &mut [f64],
    max_iter: usize,
) {
    let mut ap = vec![0.0; u.len()];
    apply(u, &mut ap);
    let mut r: Vec<f64> = rhs.iter().zip(&ap).map(|(a, b)| a - b).collect();
    let mut z = vec![0.0; u.len()];
    precond(&r, &mut z);
    let mut p = z.clone();
    let mut rz = dot(&r, &z);
    let r0 = dot(rhs, rhs).sqrt().max(1e-300);
    for _ in 0..max_iter {
        if dot(&r, &r).sqrt() <= 1e-10 * r0 {
            break;
        }
        apply(&p, &mut ap);
        let pap = dot(&p, &ap);
        if pap.is_nan() || pap <= 0.0 {
            break;
        }
        let alpha = rz / pap;
        for k in 0..u.len() {
            u[k] += alpha * p[k];
            r[k] -= alpha * ap[k];
        }
        precond(&r, &mut z);
        let rz1 = dot(&r, &z);
        let beta = rz1 / rz;
        rz = rz1;
        for k in 0..u.len() {
            p[k] = z[k] + beta * p[k];
        }
    }
}

/// Solve the linear part in place (warm start `u`) and return the model's
/// residual data − model over the region.
pub(super) fn solve_residual(op: &Linear, u: &mut [f64]) -> Vec<f64> {
    solve(op, &op.reg.data, u);
    let m = op.forward(u);
    op.reg.data.iter().zip(&m).map(|(d, m)| d - m).collect()
}
