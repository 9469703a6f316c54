//! Thickness series of CsPbBr3 \[001\] (docs/methods/multislice.md, docs/methods/optics.md): frozen
//! phonon configurations × Gauss–Hermite defocus nodes, every probe
//! position of one unit cell (the 4mm wedge about the Cs column by
//! default), the ADF fraction recorded after every unit cell, so one
//! propagation gives the whole series. Work items (configuration, node)
//! can be split into shards and summed by [`merge`](super::merge::merge).
//!
//! Crystal (A-site origin, `structure::perovskite_planes_001`): Cs (0,0,0),
//! Pb (½,½,½), Br (½,½,0), (½,0,½), (0,½,½); slice 1 at z = 0 (Cs,
//! Br(½,½)), slice 2 at z = ½ (Pb, Br(½,0), Br(0,½)). Frozen phonons: independent Gaussian x/y
//! displacements per atom (per-axis RMS per element), atoms keep their
//! nominal slice; drawn by [`displace`](super::displace) from random
//! streams seeded per (seed, configuration, layer, slice, cell offset), so
//! results do not depend on threads or shards.
//!
//! This module is the entry point of a run: [`run_shard`] dispatches on
//! [`SimParams::method`] to [`conventional`] multislice
//! or [`prism`]. The types of a run live in
//! [`params`](super::params) and [`work`](super::work) and are re-exported
//! here.

use crate::error::Result;
use crate::multislice::conventional;
use crate::multislice::params::Method;
use crate::multislice::prism;

pub use crate::multislice::conventional::{engine, engine_in, multislice_bytes};
pub use crate::multislice::params::{SimParams, MAX_GRID_N, RNG_SCHEME};
pub use crate::multislice::work::{defocus_nodes, in_shard, positions, Item, Partial};

/// Run the work items of shard `i` of `n`; `tick` is called once per
/// finished propagation. Multislice shards take contiguous blocks of
/// (configuration, node) pairs ([`in_shard`]); PRISM ([`super::prism`])
/// takes whole configurations.
///
/// # Errors
/// As [`engine`].
pub fn run_shard(
    p: &SimParams,
    shard: (usize, usize),
    tick: &(dyn Fn() + Sync),
) -> Result<Partial> {
    match p.method() {
        Method::Prism { interpolation } => prism::run_shard(p, interpolation, shard, tick),
        Method::Multislice if p.double_precision => conventional::run_shard::<f64>(p, shard, tick),
        Method::Multislice => conventional::run_shard::<f32>(p, shard, tick),
    }
}
