//! Multislice ADF-STEM simulation of CsPbBr3 along [001] (simulation spec;
//! the study's Supplementary Note 2). **In progress** (issue 8): the
//! potential and the propagation engine are here and tested against the
//! spec's analytic cases; the thickness series, frozen phonons, partial
//! coherence, PRISM and `qdscope simulate` are not built yet.
//!
//! | module | what | spec |
//! |---|---|---|
//! | [`potential`] | Kirkland f_e(q), v_z(r), K₀ | §4 |
//! | [`propagate`] | grid, band-limited transmission, Fresnel propagator, probe, annular detector | §5–6 |

pub mod potential;
pub mod propagate;
