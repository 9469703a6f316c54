//! The crystal's reciprocal basis from the candidate reflections: the pair
//! whose lattice indexes the candidates best, refined by least squares,
//! reduced to the shortest vectors (Lagrange–Gauss), and halved when it
//! spans the combined lattice of both column classes (see the module
//! documentation of [`super`]).

use super::{norm, LatticeSearch, Reflection};
use crate::error::{Error, Result};

/// The crystal's reciprocal basis: the pair of candidates that indexes the
/// others best, reduced, and halved when it spans the combined lattice.
pub(super) fn crystal_basis(
    cands: &[Reflection],
    (k_lo, k_hi): (f64, f64),
    s: &LatticeSearch,
) -> Result<[[f64; 2]; 2]> {
    let no_lattice = |why: String| Error::Empty {
        what: "lattice measurement".into(),
        reason: format!(
            "no crystal lattice in the image ({why}); noise or amorphous support only?"
        ),
    };
    if cands.len() < 2 {
        return Err(no_lattice(format!(
            "{} reflection(s) with contrast ≥ {} at d = {:.1}…{:.1} px",
            cands.len(),
            s.min_contrast,
            s.d_min_px,
            s.d_max_px
        )));
    }
    let g = best_basis(cands, k_lo, k_hi, s.min_contrast)
        .ok_or_else(|| no_lattice("no two independent reflections index the others".into()))?;
    let mut g = reduce(g);
    // A reflection at (½, ½) of the basis means the basis spans the
    // combined lattice (both classes as one, a/√2) and the crystal's own
    // cell is twice as large: switch to (g₁ ± g₂)/2. In a noise-free image
    // the many strong higher orders can outscore the weaker (1,0)s.
    let half = [0.5 * (g[0][0] + g[1][0]), 0.5 * (g[0][1] + g[1][1])];
    let half2 = [0.5 * (g[0][0] - g[1][0]), 0.5 * (g[0][1] - g[1][1])];
    let seen = |k: [f64; 2]| {
        cands.iter().any(|c| {
            let tol = 0.1 * norm(k);
            (c.k[0] - k[0]).hypot(c.k[1] - k[1]) < tol || (c.k[0] + k[0]).hypot(c.k[1] + k[1]) < tol
        })
    };
    if seen(half) || seen(half2) {
        g = reduce(refine(reduce([half, half2]), cands, 0.12));
    }
    Ok(g)
}

/// (h, k) of `k` in basis `g` when both are within `tol` of integers.
pub(super) fn index_of(g: &[[f64; 2]; 2], k: [f64; 2], tol: f64) -> Option<(i64, i64)> {
    let det = g[0][0] * g[1][1] - g[0][1] * g[1][0];
    if det.abs() < 1e-300 {
        return None;
    }
    // k = h g1 + l g2.
    let h = (k[0] * g[1][1] - k[1] * g[1][0]) / det;
    let l = (g[0][0] * k[1] - g[0][1] * k[0]) / det;
    let (hr, lr) = (h.round(), l.round());
    ((h - hr).abs() < tol && (l - lr).abs() < tol && (hr != 0.0 || lr != 0.0))
        .then_some((hr as i64, lr as i64))
}

/// The pair of candidates whose lattice indexes the candidates best.
fn best_basis(c: &[Reflection], k_lo: f64, k_hi: f64, min_contrast: f64) -> Option<[[f64; 2]; 2]> {
    let n = c.len().min(24);
    let mut best: Option<(f64, f64, [[f64; 2]; 2])> = None;
    for i in 0..n {
        for j in i + 1..n {
            let g = [c[i].k, c[j].k];
            let cross = g[0][0] * g[1][1] - g[0][1] * g[1][0];
            let sin = cross.abs() / (norm(g[0]) * norm(g[1]));
            if sin < 0.5 {
                continue;
            }
            // Index with a loose tolerance, refine the basis by least
            // squares on what indexed (the sub-bin positions of low orders
            // are the least precise), then score with the strict one.
            let gr = refine(reduce(g), c, 0.25);
            let gr = refine(gr, c, 0.12);
            let mut score = 0.0;
            for r in c {
                if index_of(&gr, r.k, 0.12).is_some() {
                    score += r.contrast.ln();
                }
            }
            // Lowest-order predicted reflections ((1,0), (0,1), (1,±1) of
            // this basis) in the band that are not seen: a finer lattice
            // than the crystal's predicts reflections that are not there.
            // Higher orders are not counted: the column width damps them.
            let kmax = 1.01 * std::f64::consts::SQRT_2 * norm(gr[0]).max(norm(gr[1]));
            let mut missing = 0usize;
            for h in -1i64..=1 {
                for l in -1i64..=1 {
                    let k = [
                        h as f64 * gr[0][0] + l as f64 * gr[1][0],
                        h as f64 * gr[0][1] + l as f64 * gr[1][1],
                    ];
                    let kr = norm(k);
                    if kr < k_lo
                        || kr > k_hi.min(kmax)
                        || !(k[1] > 0.0 || (k[1] == 0.0 && k[0] > 0.0))
                    {
                        continue;
                    }
                    let seen = c
                        .iter()
                        .any(|r| (r.k[0] - k[0]).hypot(r.k[1] - k[1]) < 0.12 * norm(gr[0]));
                    if !seen {
                        missing += 1;
                    }
                }
            }
            score -= missing as f64 * min_contrast.ln();
            let area = cross.abs();
            let better = match &best {
                None => true,
                Some((s, a, _)) => score > *s + 1e-9 || ((score - *s).abs() <= 1e-9 && area < *a),
            };
            if better {
                best = Some((score, area, gr));
            }
        }
    }
    best.filter(|b| b.0 > 0.0).map(|b| b.2)
}

/// Least-squares basis from every reflection that indexes in `g` within
/// `tol` (k = h g₁ + l g₂, weights 1); `g` itself when fewer than three do.
fn refine(g: [[f64; 2]; 2], c: &[Reflection], tol: f64) -> [[f64; 2]; 2] {
    let mut m = [[0.0f64; 2]; 2]; // Σ [h l]ᵀ[h l]
    let mut b = [[0.0f64; 2]; 2]; // Σ [h l]ᵀ k  (rows: basis, cols: x, y)
    let mut n = 0;
    for r in c {
        if let Some((h, l)) = index_of(&g, r.k, tol) {
            let (h, l) = (h as f64, l as f64);
            m[0][0] += h * h;
            m[0][1] += h * l;
            m[1][1] += l * l;
            for (d, kd) in r.k.iter().enumerate() {
                b[0][d] += h * kd;
                b[1][d] += l * kd;
            }
            n += 1;
        }
    }
    m[1][0] = m[0][1];
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    if n < 3 || det.abs() < 1e-9 {
        return g;
    }
    let inv = [
        [m[1][1] / det, -m[0][1] / det],
        [-m[1][0] / det, m[0][0] / det],
    ];
    let mut out = [[0.0; 2]; 2];
    for i in 0..2 {
        for d in 0..2 {
            out[i][d] = inv[i][0] * b[0][d] + inv[i][1] * b[1][d];
        }
    }
    out
}

/// Lagrange–Gauss reduction: the shortest basis of the same lattice, with
/// g₁ · g₂ ≤ 0 avoided (acute pair) and g₁ the shorter.
pub(super) fn reduce(mut g: [[f64; 2]; 2]) -> [[f64; 2]; 2] {
    let dot = |a: [f64; 2], b: [f64; 2]| a[0] * b[0] + a[1] * b[1];
    for _ in 0..64 {
        if dot(g[0], g[0]) > dot(g[1], g[1]) {
            g.swap(0, 1);
        }
        let mu = (dot(g[0], g[1]) / dot(g[0], g[0])).round();
        if mu == 0.0 {
            break;
        }
        g[1] = [g[1][0] - mu * g[0][0], g[1][1] - mu * g[0][1]];
    }
    if dot(g[0], g[0]) > dot(g[1], g[1]) {
        g.swap(0, 1);
    }
    g
}
