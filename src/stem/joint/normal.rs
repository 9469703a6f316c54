//! The normal matrix of the joint fit's linear part, assembled and factored
//! (sparse Cholesky) as the preconditioner of its conjugate gradients.
//!
//! Why: with the Jacobi preconditioner alone every linear solve took
//! 30–200 CG iterations (the column volumes and the background nodes under
//! them are strongly coupled, the more so the finer the grid and the wider
//! the columns), and a refit solves 7–9 times per iteration — one solve for
//! the volumes and one per nonlinear parameter of the width step. The
//! matrix itself is small and sparse (one row per column, background node
//! and plateau height; a column couples to the columns and nodes its stamp
//! overlaps), so it is assembled from the same f32 stamps and weights the
//! matrix-free products use and factored once per iteration: the solve of
//! the volumes then converges in one or two CG steps, and the solves of
//! the width step (the same matrix at a width 10⁻³ away) in a few. The
//! solution is the same — CG still stops at the same residual of the
//! matrix-free system.
//!
//! The factorization is faer's supernodal sparse Cholesky with its
//! fill-reducing ordering (no maintained crate besides faer offers one in
//! Rust; nalgebra-sparse's has no ordering). Assembly is written here:
//! it is the product of the fit's own stamps.

use faer::sparse::linalg::solvers::{Llt, SymbolicLlt};
use faer::sparse::{SparseColMat, Triplet};
use faer::{MatMut, Side};
use rayon::prelude::*;

use super::linear::Linear;
use super::region::Bilinear;

/// A factored normal matrix: z = N⁻¹·r.
pub(super) struct Factor {
    llt: Llt<usize, f64>,
    n: usize,
}

impl Factor {
    /// The factor of `op`'s normal matrix (AᵀWA + the background's
    /// smoothness term); `None` when it is not numerically positive
    /// definite (the caller falls back to the Jacobi preconditioner).
    #[cfg(test)]
    pub(super) fn new(op: &Linear) -> Option<Factor> {
        Factor::new_reusing(op, &mut Symbolic::default())
    }
    /// As [`Factor::new`], taking the symbolic factorization from `sym`
    /// when the matrix has the sparsity of the last one factored there
    /// (and leaving this one's there): the same factor, without the
    /// ordering and elimination tree (a fifth of a factorization's time).
    pub(super) fn new_reusing(op: &Linear, sym: &mut Symbolic) -> Option<Factor> {
        let n = op.n + op.nb + usize::from(!op.plateau.is_empty());
        let t = triplets(op);
        let m = SparseColMat::<usize, f64>::try_new_from_triplets(n, n, &t).ok()?;
        let pattern = m.symbolic();
        let symbolic = match &sym.last {
            Some((ptr, idx, s)) if ptr == pattern.col_ptr() && idx == pattern.row_idx() => {
                s.clone()
            }
            _ => {
                let s = SymbolicLlt::try_new(pattern, Side::Lower).ok()?;
                sym.last = Some((
                    pattern.col_ptr().to_vec(),
                    pattern.row_idx().to_vec(),
                    s.clone(),
                ));
                s
            }
        };
        let llt = Llt::try_new_with_symbolic(symbolic, m.as_ref(), Side::Lower).ok()?;
        Some(Factor { llt, n })
    }
    /// `z` = N⁻¹·`r`.
    pub(super) fn apply(&self, r: &[f64], z: &mut [f64]) {
        use faer::linalg::solvers::SolveCore;
        z.copy_from_slice(r);
        let col = MatMut::from_column_major_slice_mut(z, self.n, 1);
        self.llt.solve_in_place_with_conj(faer::Conj::No, col);
    }
}

/// The symbolic factorization (fill-reducing ordering, elimination tree)
/// of the last normal matrix factored, with its sparsity (column pointers,
/// row indices): one fit's iterations nearly always keep the sparsity, as
/// their columns' stamps overlap the same columns and nodes.
#[derive(Default)]
pub(super) struct Symbolic {
    last: Option<(Vec<usize>, Vec<usize>, SymbolicLlt<usize>)>,
}

/// The lower triangle (row ≥ column) of the normal matrix of `op`, with
/// the same terms as `Linear::normal_into`. An unknown without any pixel
/// (a column whose stamp left the region, a plateau of zero height
/// everywhere) gets 1 on the diagonal: its row of the system is zero, and
/// CG leaves it where it starts.
fn triplets(op: &Linear) -> Vec<Triplet<usize, usize, f64>> {
    let (n, nb) = (op.n, op.nb);
    let w = &op.reg.weight;
    let st = &op.st.g;
    let mut t = column_pairs(op);
    // Columns × background nodes.
    let col_nodes: Vec<Vec<(usize, f64)>> = st
        .par_iter()
        .map(|s| {
            let mut acc: Vec<(usize, f64)> = Vec::new();
            for &(k, g) in s {
                let wg = w[k as usize] * f64::from(g);
                for (node, c) in op.reg.bw[k as usize].pairs() {
                    match acc.iter_mut().find(|e| e.0 == node) {
                        Some(e) => e.1 += wg * c,
                        None => acc.push((node, wg * c)),
                    }
                }
            }
            acc
        })
        .collect();
    for (i, acc) in col_nodes.into_iter().enumerate() {
        t.extend(
            acc.into_iter()
                .map(|(node, v)| Triplet::new(n + node, i, v)),
        );
    }
    node_pairs(op, &mut t);
    if !op.plateau.is_empty() {
        let h = n + nb;
        let p = op.plateau;
        let by_column: Vec<f64> = st
            .par_iter()
            .map(|s| {
                s.iter()
                    .map(|&(k, g)| w[k as usize] * p[k as usize] * f64::from(g))
                    .sum()
            })
            .collect();
        t.extend(
            by_column
                .into_iter()
                .enumerate()
                .map(|(i, v)| Triplet::new(h, i, v)),
        );
        let mut nodes = vec![0.0; nb];
        let mut hh = 0.0;
        for ((bw, wk), pk) in op.reg.bw.iter().zip(w).zip(p) {
            hh += wk * pk * pk;
            for (node, c) in bw.pairs() {
                nodes[node] += wk * pk * c;
            }
        }
        t.extend(
            nodes
                .into_iter()
                .enumerate()
                .map(|(k, v)| Triplet::new(h, n + k, v)),
        );
        t.push(Triplet::new(h, h, if hh > 0.0 { hh } else { 1.0 }));
    }
    t
}

/// Column × column entries Σₖ wₖ·gᵢₖ·gⱼₖ of every pair of columns whose
/// stamps overlap (merge of the two stamps' pixel lists, which are sorted
/// by region pixel), the diagonal included.
fn column_pairs(op: &Linear) -> Vec<Triplet<usize, usize, f64>> {
    let w = &op.reg.weight;
    let st = &op.st.g;
    let px = &op.reg.px;
    // Bounding box (y0, y1, x0, x1) of each stamp.
    let bbox: Vec<Option<[usize; 4]>> = st
        .iter()
        .map(|s| {
            let (&(first, _), &(last, _)) = (s.first()?, s.last()?);
            let (x0, x1) = s.iter().fold((usize::MAX, 0), |(a, b), &(k, _)| {
                let x = px[k as usize].1;
                (a.min(x), b.max(x))
            });
            Some([px[first as usize].0, px[last as usize].0, x0, x1])
        })
        .collect();
    let mut order: Vec<usize> = (0..st.len()).filter(|&i| bbox[i].is_some()).collect();
    order.sort_by_key(|&i| bbox[i].map_or(0, |b| b[0]));
    let rows: Vec<Vec<Triplet<usize, usize, f64>>> = (0..order.len())
        .into_par_iter()
        .map(|a| {
            let i = order[a];
            let bi = bbox[i].unwrap_or_default();
            let mut out = Vec::new();
            for &j in &order[a..] {
                let bj = bbox[j].unwrap_or_default();
                if bj[0] > bi[1] {
                    break;
                }
                if bj[2] > bi[3] || bi[2] > bj[3] {
                    continue;
                }
                let v = overlap(&st[i], &st[j], w);
                if v != 0.0 || i == j {
                    out.push(Triplet::new(i.max(j), i.min(j), v));
                }
            }
            out
        })
        .collect();
    let mut t: Vec<_> = rows.into_iter().flatten().collect();
    // Columns without pixels: a unit diagonal.
    for (i, b) in bbox.iter().enumerate() {
        if b.is_none() {
            t.push(Triplet::new(i, i, 1.0));
        }
    }
    for e in &mut t {
        if e.row == e.col && e.val <= 0.0 {
            e.val = 1.0;
        }
    }
    t
}

/// Σₖ wₖ·aₖ·bₖ over the pixels two stamps share.
fn overlap(a: &[(u32, f32)], b: &[(u32, f32)], w: &[f64]) -> f64 {
    let (mut i, mut j, mut s) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        let (ka, kb) = (a[i].0, b[j].0);
        if ka < kb {
            i += 1;
        } else if kb < ka {
            j += 1;
        } else {
            s += w[ka as usize] * f64::from(a[i].1) * f64::from(b[j].1);
            i += 1;
            j += 1;
        }
    }
    s
}

/// Background node × node entries (bilinear weights of every pixel) and the
/// smoothness term λ·(degree − adjacency) + 10⁻⁹λ·I of `normal_into`.
fn node_pairs(op: &Linear, t: &mut Vec<Triplet<usize, usize, f64>>) {
    let (n, nb) = (op.n, op.nb);
    let gx = op.reg.grid.1;
    // Fixed chunks summed in order: the same sums on any number of threads.
    const CHUNK: usize = 1 << 14;
    let parts: Vec<NodeSums> = op
        .reg
        .bw
        .par_chunks(CHUNK)
        .zip(op.reg.weight.par_chunks(CHUNK))
        .map(|(bws, ws)| node_sums(bws, ws, (n, nb, gx)))
        .collect();
    let mut acc = vec![[0.0f64; 5]; nb];
    let mut far = Vec::new();
    for part in parts {
        for (a, p) in acc.iter_mut().zip(part.acc) {
            for (x, y) in a.iter_mut().zip(p) {
                *x += y;
            }
        }
        far.extend(part.far);
    }
    let lambda = op.smooth;
    for (k, e) in acc.iter_mut().enumerate() {
        let (y, x) = (k / gx, k % gx);
        e[0] += op.smoothness_diagonal(k);
        if x > 0 {
            e[1] -= lambda;
        }
        if y > 0 {
            e[3] -= lambda;
        }
    }
    for (a, e) in acc.iter().enumerate() {
        let (y, x) = (a / gx, a % gx);
        let lower = [
            Some(a),
            (x > 0).then(|| a - 1),
            (y > 0 && x > 0).then(|| a - gx - 1),
            (y > 0).then(|| a - gx),
            (y > 0 && x + 1 < gx).then(|| a - gx + 1),
        ];
        for (b, v) in lower.iter().zip(e) {
            if let Some(b) = b {
                if *v != 0.0 || *b == a {
                    let v = if *b == a && *v <= 0.0 { 1.0 } else { *v };
                    t.push(Triplet::new(n + a, n + b, v));
                }
            }
        }
    }
    t.extend(far);
}

/// Node × node sums of a run of pixels: per node, its entries with itself
/// and its lower neighbours (slots (0,0), (0,−1), (−1,−1), (−1,0), (−1,+1)),
/// and any other pair as a triplet (a grid one node wide).
struct NodeSums {
    acc: Vec<[f64; 5]>,
    far: Vec<Triplet<usize, usize, f64>>,
}

/// [`NodeSums`] of the pixels with bilinear weights `bws` and least-squares
/// weights `ws`; `(n, nb, gx)`: columns, nodes, nodes per grid row.
fn node_sums(bws: &[Bilinear], ws: &[f64], (n, nb, gx): (usize, usize, usize)) -> NodeSums {
    let slot = |a: usize, b: usize| -> Option<usize> {
        let (ya, xa, yb, xb) = (a / gx, a % gx, b / gx, b % gx);
        match (ya - yb, xa as i64 - xb as i64) {
            (0, 0) => Some(0),
            (0, 1) => Some(1),
            (1, 1) => Some(2),
            (1, 0) => Some(3),
            (1, -1) => Some(4),
            _ => None,
        }
    };
    // A pixel's nodes are (y, x), (y, x+1), (y+1, x), (y+1, x+1) of the
    // grid: the slot of each of its 10 pairs (a ≥ b) is known without
    // arithmetic unless the grid is one node wide (nodes coincide).
    const PAIRS: [(usize, usize, usize); 10] = [
        (0, 0, 0),
        (1, 1, 0),
        (2, 2, 0),
        (3, 3, 0),
        (1, 0, 1),
        (2, 0, 3),
        (2, 1, 4),
        (3, 0, 2),
        (3, 1, 3),
        (3, 2, 1),
    ];
    let regular = |node: &[u32; 4]| {
        let a = node[0] as usize;
        node[1] as usize == a + 1 && node[2] as usize == a + gx && node[3] as usize == a + gx + 1
    };
    let mut acc = vec![[0.0f64; 5]; nb];
    let mut far = Vec::new();
    for (bw, wk) in bws.iter().zip(ws) {
        let (node, w) = bw.parts();
        if regular(node) {
            for &(i, j, s) in &PAIRS {
                acc[node[i] as usize][s] += wk * f64::from(w[i]) * f64::from(w[j]);
            }
            continue;
        }
        for (a, ca) in bw.pairs() {
            for (b, cb) in bw.pairs() {
                if a < b {
                    continue;
                }
                let v = wk * ca * cb;
                match slot(a, b) {
                    Some(s) => acc[a][s] += v,
                    None => far.push(Triplet::new(n + a, n + b, v)),
                }
            }
        }
    }
    NodeSums { acc, far }
}

#[cfg(test)]
mod tests {
    use super::super::linear::{stamps, Linear, Shape};
    use super::super::region::build_region;
    use super::super::JointColumn;
    use super::*;
    use ndarray::Array2;

    /// The assembled matrix is the matrix-free one: N·eⱼ for every unit
    /// vector matches `normal_into` to rounding, and the factor inverts it.
    #[test]
    fn assembled_matrix_is_the_matrix_free_product() {
        let img = Array2::from_shape_fn((40, 44), |(y, x)| ((x * 7 + y * 3) % 11) as f64);
        let cols: Vec<JointColumn> = [(10.0, 10.0), (15.3, 11.0), (20.0, 24.5), (30.2, 28.0)]
            .iter()
            .enumerate()
            .map(|(i, &(x, y))| JointColumn {
                x,
                y,
                class: i % 2,
                fixed: false,
            })
            .collect();
        let mut reg = build_region(img.view(), &cols, 9.0, (6.0, None), None).expect("region");
        for (k, w) in reg.weight.iter_mut().enumerate() {
            *w = 0.5 + (k % 5) as f64 * 0.25;
        }
        let x: Vec<f64> = cols.iter().map(|c| c.x).collect();
        let y: Vec<f64> = cols.iter().map(|c| c.y).collect();
        let st = stamps(
            &reg,
            &x,
            &y,
            &[0, 1, 0, 1],
            &[2.0, 2.5],
            &[2.0, 2.5],
            3.0,
            Shape::ROUND,
        );
        let plateau: Vec<f64> = reg.px.iter().map(|&(yy, _)| yy as f64 / 40.0).collect();
        let nb = reg.grid.0 * reg.grid.1;
        let op = Linear {
            reg: &reg,
            st: &st,
            plateau: &plateau,
            n: cols.len(),
            nb,
            smooth: 0.3,
            pre: None,
        };
        let dim = cols.len() + nb + 1;
        let t = triplets(&op);
        let mut dense = vec![0.0; dim * dim];
        for e in &t {
            dense[e.row * dim + e.col] += e.val;
            if e.row != e.col {
                dense[e.col * dim + e.row] += e.val;
            }
        }
        let mut m = vec![0.0; reg.px.len()];
        let mut out = vec![0.0; dim];
        for j in 0..dim {
            let mut e = vec![0.0; dim];
            e[j] = 1.0;
            op.normal_into(&e, &mut m, &mut out);
            for i in 0..dim {
                let d = dense[i * dim + j];
                assert!(
                    (out[i] - d).abs() <= 1e-9 * (1.0 + d.abs()),
                    "N[{i},{j}] = {d}, matrix-free {}",
                    out[i]
                );
            }
        }
        let f = Factor::new(&op).expect("positive definite");
        let r: Vec<f64> = (0..dim).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut z = vec![0.0; dim];
        f.apply(&r, &mut z);
        op.normal_into(&z, &mut m, &mut out);
        for (a, b) in out.iter().zip(&r) {
            assert!((a - b).abs() < 1e-8, "N·N⁻¹r = {a}, r = {b}");
        }
        // A symbolic factorization kept from the same sparsity gives the
        // same factor to the last bit.
        let mut sym = Symbolic::default();
        let fresh = Factor::new_reusing(&op, &mut sym).expect("positive definite");
        assert!(sym.last.is_some());
        let reused = Factor::new_reusing(&op, &mut sym).expect("positive definite");
        let (mut z1, mut z2) = (vec![0.0; dim], vec![0.0; dim]);
        fresh.apply(&r, &mut z1);
        reused.apply(&r, &mut z2);
        assert_eq!(z1, z2);
        assert_eq!(z1, z);
    }
}
