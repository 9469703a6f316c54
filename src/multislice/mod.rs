//! Multislice ADF-STEM simulation of CsPbBr3 along \[001\] (docs/methods/multislice.md;
//! the study's Supplementary Note 2). **In progress** (issue 8): potential,
//! engine, frozen-phonon × defocus thickness series with shards, PRISM,
//! images and column-fit ratios are here.
//!
//! | module | what | section of docs/methods/multislice.md |
//! |---|---|---|
//! | [`potential`] | Kirkland f_e(q), v_z(r), K₀; slice potentials built in Fourier space and the (oversampled) band-limited transmissions on an engine's grids | Projected potential |
//! | [`propagate`] | grid, Fresnel propagator, probe, annular detector | Propagation and detector |
//! | [`displace`] | frozen-phonon displacements from per-(configuration, layer, slice, cell offset) random streams: supercells share the cells around the probe | Frozen phonons |
//! | [`params`] | [`SimParams`] of a run and the [`Method`] (multislice or PRISM) it asks for | Parameters |
//! | [`preset`] | the [`Quality`] presets, [`Overrides`] of them, `SimParams::default()` (= `quick`, the command line's defaults) | Parameters |
//! | [`work`] | work items (configuration × defocus node), shards, probe positions (4mm wedge), the summed fractions [`Partial`] | Structure and slicing; Frozen phonons |
//! | [`conventional`] | the engine built from the parameters, the slices of a configuration, the multislice work of a shard | Propagation and detector |
//! | [`series`] | the entry point: validate, then dispatch a shard on [`Method`] to [`conventional`] or [`prism`]; re-exports the run's types | Structure and slicing |
//! | [`merge`] | sum shards, complete or partial sets, re-evaluate source size / blur / energy spread off without a new propagation | From images to the ratio |
//! | [`prism`] | PRISM S-matrix with interpolation f, window probes, coarse-grid detectors | PRISM |
//! | [`image`] | cell images, source + blur, Fourier resampling, 7-parameter column fits, ratios, leave-one-out series | From images to the ratio |
//! | [`jackknife`] | jackknife s.e. of the ratios per thickness and the 15 / 30 u.c. summary | Frozen phonons (statistical error) |
//! | [`diagnostics`] | a run's sampling (grid, band limit, probe step) and the warnings its result carries | Tests and convergence |

pub mod conventional;
pub mod diagnostics;
pub mod displace;
pub mod image;
pub mod jackknife;
pub mod merge;
pub mod params;
pub mod potential;
pub mod preset;
pub mod prism;
pub mod propagate;
pub mod series;
pub mod work;

pub use params::{Method, SimParams};
pub use preset::{Overrides, Quality};
pub use series::run_shard;
pub use work::Partial;
