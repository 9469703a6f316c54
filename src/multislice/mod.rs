//! Multislice ADF-STEM simulation of CsPbBr3 along \[001\] (docs/methods/multislice.md;
//! the study's Supplementary Note 2). **In progress** (issue 8): potential,
//! engine, frozen-phonon × defocus thickness series with shards, PRISM,
//! images and column-fit ratios are here.
//!
//! | module | what | section of docs/methods/multislice.md |
//! |---|---|---|
//! | [`potential`] | Kirkland f_e(q), v_z(r), K₀; slice potentials built in Fourier space and the (oversampled) band-limited transmissions on an engine's grids | §4, §6 |
//! | [`propagate`] | grid, Fresnel propagator, probe, annular detector | §5–6 |
//! | [`displace`] | frozen-phonon displacements from per-(configuration, layer, slice, cell offset) random streams: supercells share the cells around the probe | §7 |
//! | [`params`] | [`SimParams`] of a run and the [`Method`] (multislice or PRISM) it asks for | §3, §5 |
//! | [`work`] | work items (configuration × defocus node), shards, probe positions (4mm wedge), the summed fractions [`Partial`] | §5, §7 |
//! | [`conventional`] | the engine built from the parameters, the slices of a configuration, the multislice work of a shard | §3, §5, §7 |
//! | [`series`] | the entry point: validate, then dispatch a shard on [`Method`] to [`conventional`] or [`prism`]; re-exports the run's types | §3, §5, §7 |
//! | [`merge`] | sum shards, complete or partial sets, re-evaluate source size / blur / energy spread off without a new propagation | §5.2 |
//! | [`prism`] | PRISM S-matrix with interpolation f, window probes, coarse-grid detectors | §9 |
//! | [`image`] | cell images, source + blur, Fourier resampling, 7-parameter column fits, ratios | §5.2, §8 |

pub mod conventional;
pub mod displace;
pub mod image;
pub mod merge;
pub mod params;
pub mod potential;
pub mod prism;
pub mod propagate;
pub mod series;
pub mod work;

pub use params::{Method, SimParams};
pub use series::run_shard;
pub use work::Partial;
