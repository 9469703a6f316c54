//! The phonon analyses as a program calls them — what `qdscope phonon
//! coupling|dephasing|histogram|dos|rmsf` run (docs/guide/phonon.md): a
//! params struct per analysis with `Default` (the command line's defaults)
//! and a `validate()` holding every check made before any work, the inputs
//! read and checked as the command line reads them, and a typed result
//! that the command line only writes out.
//!
//! | analysis | params | result |
//! |---|---|---|
//! | [`coupling()`] / [`coupling_of()`] | [`CouplingParams`] | [`Coupling`] |
//! | [`dephasing()`] | [`DephasingParams`] | [`DephasingRun`] |
//! | [`histograms()`] | [`HistogramParams`] | [`HistogramRun`] per run |
//! | [`dos()`] | [`DosRunParams`] | [`DosRun`] |
//! | [`rmsf()`] | [`RmsfParams`] | [`RmsfRun`] |
//!
//! Errors name the params field (`skip_fs`, `temperature_k`, …). Remarks
//! on the inputs (a cut-off MOLog block, a restart block dropped, a mean
//! temperature off the thermostat's) are pushed to a `Vec<`[`Remark`]`>`
//! as they arise, so that a caller sees them also when an error follows.

mod gap;
mod input;
mod traj;

#[cfg(test)]
mod tests;

use serde::Serialize;

pub use gap::{
    coupling, coupling_of, dephasing, histograms, BandCoupling, Coupling, CouplingParams,
    DephasingParams, DephasingRun, GammaAt, HistogramParams, HistogramRun,
};
pub use input::{
    mean_temperature, mean_temperature_of, measured_temperature, read_gap, GapParams, GapRead,
    TrajParams,
};
pub use traj::{dos, rmsf, DosRun, DosRunParams, RmsfParams, RmsfRun, TNorm};

pub(crate) use super::check_temperature;

/// A remark on the inputs of an analysis: done, but worth knowing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Remark {
    /// Something that may make a result suspect (the command line prints
    /// `qdscope: warning: …`).
    Warning(String),
    /// Something done on the caller's behalf (`qdscope: note: …`).
    Note(String),
}
