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
//! | [`series`] | crystal slices, configurations, Gauss–Hermite focal spread, probe positions (4mm wedge), shards | §3, §5, §7 |
//! | [`merge`] | sum shards, complete or partial sets, re-evaluate source size / blur / energy spread off without a new propagation | §5.2 |
//! | [`prism`] | PRISM S-matrix with interpolation f, window probes, coarse-grid detectors | §9 |
//! | [`image`] | cell images, source + blur, Fourier resampling, 7-parameter column fits, ratios | §5.2, §8 |

pub mod displace;
pub mod image;
pub mod merge;
pub mod potential;
pub mod prism;
pub mod propagate;
pub mod series;
