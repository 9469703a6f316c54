//! The trajectory analyses: the phonon DOS (eq. 1) and the RMSF (eq. 9)
//! from position (and velocity) files (docs/methods/phonon.md,
//! docs/guide/phonon.md).

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use serde::Serialize;

use super::input::{measured_temperature, TrajParams};
use super::Remark;
use crate::error::{Error, Result};
use crate::io::cp2k;
use crate::phonon::dos::{self, Dos, DosParams, Route};
use crate::phonon::rmsf::{self, Rmsf};
use crate::phonon::trajectory::Info;
use crate::structure::LATTICE_ANGSTROM;

/// Which temperature normalises the VDOS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TNorm {
    /// The thermostat target.
    #[default]
    Target,
    /// The mean of the `.ener` temperature column.
    Measured,
}

/// Parameters of [`dos()`]. `Default` is the command line's (with the
/// thermostat at 300 K, as [`DosParams::default`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DosRunParams {
    /// How the trajectory is read.
    pub input: TrajParams,
    /// The spectrum; its `temperature_k` is the thermostat target, which
    /// normalises the VDOS unless `t_norm` is `Measured`.
    pub spectrum: DosParams,
    /// CP2K `.ener` file of the run: its mean temperature after the skip
    /// is checked against the target (and normalises with `t_norm =
    /// Measured`).
    pub ener: Option<PathBuf>,
    /// Normalisation temperature: the target or the `.ener` mean.
    pub t_norm: TNorm,
}

impl DosRunParams {
    /// Check the parameters before reading anything.
    ///
    /// # Errors
    /// The first invalid value, naming its field.
    pub fn validate(&self) -> Result<()> {
        self.spectrum.validate()?;
        self.input.validate()?;
        if self.t_norm == TNorm::Measured && self.ener.is_none() {
            return Err(Error::param(
                "t_norm",
                "measured needs the run's .ener file (`ener = FILE`)",
            ));
        }
        if self.spectrum.route == Route::Velocities && self.input.velocities.is_none() {
            return Err(dos::no_velocities());
        }
        Ok(())
    }
}

/// Everything [`dos()`] measures.
#[derive(Debug, Clone, Serialize)]
pub struct DosRun {
    /// The spectrum.
    pub dos: Dos,
    /// Facts about the trajectory (atoms, frames, Δt, rigid mode, remarks).
    pub info: Info,
    /// The temperature that normalised the VDOS, K.
    pub t_norm_k: f64,
    /// Mean temperature of the `.ener` file after the skip, K.
    pub measured_temperature_k: Option<f64>,
}

/// The phonon DOS of the trajectory at `positions` (eq. 1; see
/// [`dos::vdos`]), normalised at the thermostat target or at the measured
/// mean temperature. `progress` is advanced once per frame read. Remarks
/// (the `.ener` mean far from the target) go to `remarks`; those of the
/// trajectory are in [`Info::warnings`].
///
/// # Errors
/// Invalid parameters; the errors of the `.ener` reader and of
/// [`dos::vdos`].
pub fn dos(
    positions: &Path,
    p: &DosRunParams,
    progress: Option<ProgressBar>,
    remarks: &mut Vec<Remark>,
) -> Result<DosRun> {
    p.validate()?;
    let src = p.input.source(positions, progress);
    let target = p.spectrum.temperature_k;
    let measured = match &p.ener {
        Some(e) => Some(measured_temperature(
            e,
            &cp2k::read_ener(e)?,
            p.input.skip_fs,
            target,
            remarks,
        )?),
        None => None,
    };
    let t_norm_k = match (p.t_norm, measured) {
        (TNorm::Measured, Some(t)) => t,
        _ => target,
    };
    let spectrum = DosParams {
        temperature_k: t_norm_k,
        ..p.spectrum.clone()
    };
    let (d, info) = dos::vdos(&src, p.input.rigid, &spectrum)?;
    Ok(DosRun {
        dos: d,
        info,
        t_norm_k,
        measured_temperature_k: measured,
    })
}

/// Parameters of [`rmsf()`]. `Default` is the command line's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RmsfParams {
    /// How the trajectory is read.
    pub input: TrajParams,
    /// Lattice constant for the layer depth, Å (> 0).
    pub lattice_angstrom: f64,
}

impl Default for RmsfParams {
    fn default() -> Self {
        RmsfParams {
            input: TrajParams::default(),
            lattice_angstrom: LATTICE_ANGSTROM,
        }
    }
}

impl RmsfParams {
    /// Check the parameters before reading anything.
    ///
    /// # Errors
    /// The first invalid value, naming its field.
    pub fn validate(&self) -> Result<()> {
        self.input.validate()?;
        rmsf::check_lattice(self.lattice_angstrom)
    }
}

/// Everything [`rmsf()`] measures.
#[derive(Debug, Clone, Serialize)]
pub struct RmsfRun {
    /// ρ per atom, per element and per element × layer.
    pub rmsf: Rmsf,
    /// Facts about the trajectory (atoms, frames, Δt, rigid mode, remarks).
    pub info: Info,
}

/// The RMSF of the trajectory at `positions` (eq. 9; see [`rmsf::rmsf`]).
/// `progress` is advanced once per frame read.
///
/// # Errors
/// Invalid parameters; the errors of [`rmsf::rmsf`].
pub fn rmsf(positions: &Path, p: &RmsfParams, progress: Option<ProgressBar>) -> Result<RmsfRun> {
    p.validate()?;
    let src = p.input.source(positions, progress);
    let (r, info) = rmsf::rmsf(&src, p.input.rigid, p.lattice_angstrom)?;
    Ok(RmsfRun { rmsf: r, info })
}
