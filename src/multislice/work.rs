//! The work of a series run and its results: work items (frozen-phonon
//! configuration × Gauss–Hermite defocus node), how they split into shards,
//! the probe positions of one unit cell (the 4mm wedge about the Cs column
//! or every position), and the summed detector fractions ([`Partial`]) that
//! both engines return and [`merge`](super::merge) combines
//! (docs/methods/multislice.md).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::multislice::params::SimParams;
use crate::optics::GAUSS_HERMITE_5;

/// Detector fractions of one work item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Frozen-phonon configuration.
    pub config: usize,
    /// Defocus node.
    pub node: usize,
    /// Weight (Gauss–Hermite weight / configurations).
    pub weight: f64,
    /// `sums[d][t][q]`: weight × fraction for detector d, thickness t+1
    /// u.c., computed position q.
    pub sums: Vec<Vec<Vec<f64>>>,
}

impl Item {
    /// The item of (`config`, `node`) from per-position records
    /// `recs[q][d][t]` (detector fractions), each multiplied by `weight`
    /// and stored as `sums[d][t][q]`.
    pub(crate) fn weighted(
        config: usize,
        node: usize,
        weight: f64,
        (detectors, thicknesses): (usize, usize),
        recs: &[&Vec<Vec<f64>>],
    ) -> Item {
        let mut sums = vec![vec![vec![0.0; recs.len()]; thicknesses]; detectors];
        for (q, rq) in recs.iter().enumerate() {
            for (d, rd) in rq.iter().enumerate() {
                for (t, v) in rd.iter().enumerate() {
                    sums[d][t][q] = weight * v;
                }
            }
        }
        Item {
            config,
            node,
            weight,
            sums,
        }
    }
}

/// The work items of a run or shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    /// The parameters (merge checks they agree).
    pub params: SimParams,
    /// Work items done.
    pub items: Vec<Item>,
    /// Lowest Σ|ψ|² after the last slice over all propagations.
    pub min_intensity: f64,
    /// Wall time of the computing shard(s), s.
    pub seconds: f64,
}

impl Partial {
    /// A run of `params` holding configurations `0..configs`, each one item
    /// without sums (what the diagnostics read of a run: its parameters,
    /// which configurations it holds, its lowest intensity), e.g. to check
    /// the warnings of a run without computing it.
    #[must_use]
    pub fn without_sums(params: SimParams, configs: usize, min_intensity: f64) -> Partial {
        Partial {
            params,
            items: (0..configs)
                .map(|config| Item {
                    config,
                    node: 0,
                    weight: 1.0,
                    sums: Vec::new(),
                })
                .collect(),
            min_intensity,
            seconds: 0.0,
        }
    }

    /// The frozen-phonon configurations that have items, ascending.
    #[must_use]
    pub fn configurations(&self) -> Vec<usize> {
        let mut c: Vec<usize> = self.items.iter().map(|it| it.config).collect();
        c.sort_unstable();
        c.dedup();
        c
    }

    /// Σ over items of the weighted fractions and Σ weights, summed in
    /// (configuration, node) order so shards merge to the bit-identical
    /// result of one run.
    #[must_use]
    pub fn totals(&self) -> (Vec<Vec<Vec<f64>>>, f64) {
        let mut order: Vec<&Item> = self.items.iter().collect();
        order.sort_by_key(|i| (i.config, i.node));
        let mut sums = order.first().map(|i| i.sums.clone()).unwrap_or_default();
        sums.iter_mut().flatten().flatten().for_each(|v| *v = 0.0);
        let mut weight = 0.0;
        for it in order {
            for (a, b) in sums.iter_mut().flatten().zip(it.sums.iter().flatten()) {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
            }
            weight += it.weight;
        }
        (sums, weight)
    }
}

/// Gauss–Hermite nodes (standard normal z, weight) for 1, 3 or 5 nodes.
///
/// # Errors
/// Another count.
pub fn defocus_nodes(n: usize) -> Result<Vec<(f64, f64)>> {
    Ok(match n {
        1 => vec![(0.0, 1.0)],
        3 => {
            let z = 3f64.sqrt();
            vec![(-z, 1.0 / 6.0), (0.0, 2.0 / 3.0), (z, 1.0 / 6.0)]
        }
        5 => GAUSS_HERMITE_5.to_vec(),
        _ => {
            return Err(Error::param(
                "defocus nodes",
                format!("must be 1, 3 or 5, got {n}"),
            ))
        }
    })
}

/// Computed probe positions (i, j) in units of a/p, and for every one of
/// the p×p positions the index of the computed one it equals by symmetry.
#[must_use]
pub fn positions(p: usize, wedge: bool) -> (Vec<(usize, usize)>, Vec<usize>) {
    if !wedge {
        let all: Vec<(usize, usize)> = (0..p).flat_map(|i| (0..p).map(move |j| (i, j))).collect();
        let map = (0..p * p).collect();
        return (all, map);
    }
    let h = p / 2;
    let mut comp = Vec::new();
    for i in 0..=h {
        for j in 0..=i {
            comp.push((i, j));
        }
    }
    let map = (0..p * p)
        .map(|q| {
            let (i, j) = (q / p, q % p);
            let (a, b) = (i.min(p - i), j.min(p - j));
            let (a, b) = (a.max(b), a.min(b));
            comp.iter().position(|&c| c == (a, b)).unwrap_or(0)
        })
        .collect();
    (comp, map)
}

/// Whether work item `k` of `total` belongs to shard `(i, n)`. Shards are
/// contiguous blocks, so the items of one configuration (its defocus
/// nodes) stay together and a shard builds each configuration's slices
/// once.
#[must_use]
pub fn in_shard(k: usize, total: usize, shard: (usize, usize)) -> bool {
    k * shard.1 / total.max(1) == shard.0
}
