//! `qdscope phonon dos|coupling|dephasing|histogram|rmsf`: the phonon half
//! on CP2K (or other XYZ) trajectories and gap series. Every subcommand
//! writes CSV tables (units in the headers), a JSON summary with the
//! run's metadata (docs/methods/conventions.md), and a PNG plot; nothing is written unless
//! the analysis succeeded. `gap` holds the gap-series commands (coupling,
//! dephasing, histogram), `traj` the trajectory commands (dos, rmsf).

use std::path::PathBuf;

use qdscope::error::{Error, Result};
use qdscope::io::xyz::VelocityUnit;
use qdscope::phonon::analysis::{GapParams, Remark, TrajParams};
use qdscope::phonon::trajectory::RigidMode;

mod gap;
mod traj;

pub use gap::{CouplingArgs, DephasingArgs, HistogramArgs, Threshold};
pub use traj::{DosArgs, RmsfArgs};

/// Subcommands of `qdscope phonon`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Phonon DOS (eq. 1) from velocities (or positions), total and per element.
    Dos(DosArgs),
    /// Huang–Rhys spectrum (eqs. 2–5), band couplings (eq. 6), Λ and Γ(T) from a gap series.
    Coupling(CouplingArgs),
    /// Gap ACF, line-shape function, dephasing D(t) and linewidths (eqs. 7–8).
    Dephasing(DephasingArgs),
    /// Gap histograms of several runs (full, frozen shell, frozen core) with Gaussian fits.
    Histogram(HistogramArgs),
    /// RMSF (eq. 9) per atom, element and layer after rigid-body removal.
    Rmsf(RmsfArgs),
}

/// A gap series input.
#[derive(Debug, Clone, clap::Args)]
pub struct GapInput {
    /// Gap series: a CP2K MOLog (`PROJECT-mo.MOLog`) or two columns `time_fs gap_eV`.
    pub gap: PathBuf,
    /// Time step in fs (required for a MOLog: the MD step between printed blocks).
    #[arg(long, value_name = "FS")]
    pub dt_fs: Option<f64>,
    /// HOMO index (default N_el/2 from the MOLog's occupation sum).
    #[arg(long, value_name = "N")]
    pub homo_index: Option<usize>,
    /// Equilibration to drop from the start, fs.
    #[arg(long, value_name = "FS", default_value_t = 0.0)]
    pub skip_fs: f64,
    /// CP2K `.ener` file of the run: gives Δt, checks that every printed
    /// step has one MO block (and, for coupling, the mean temperature).
    #[arg(long, value_name = "FILE")]
    pub ener: Option<PathBuf>,
    /// MO blocks to drop from the start of the MOLog before pairing them with steps.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub mo_offset: usize,
    /// Use the complete MO blocks of a MOLog whose last block was cut off (killed job).
    #[arg(long)]
    pub allow_truncated: bool,
}

impl GapInput {
    /// A plain gap file or MOLog with defaults (no `.ener`, no offset).
    #[must_use]
    pub fn plain(gap: PathBuf, dt_fs: Option<f64>, skip_fs: f64) -> Self {
        GapInput {
            gap,
            dt_fs,
            homo_index: None,
            skip_fs,
            ener: None,
            mo_offset: 0,
            allow_truncated: false,
        }
    }

    /// The library's reading parameters.
    pub(crate) fn params(&self) -> GapParams {
        GapParams {
            dt_fs: self.dt_fs,
            homo_index: self.homo_index,
            skip_fs: self.skip_fs,
            ener: self.ener.clone(),
            mo_offset: self.mo_offset,
            allow_truncated: self.allow_truncated,
        }
    }
}

/// Print the library's remarks on the inputs, one line each.
pub(crate) fn print_remarks(remarks: &[Remark]) {
    for r in remarks {
        match r {
            Remark::Warning(w) => eprintln!("qdscope: warning: {w}"),
            Remark::Note(n) => eprintln!("qdscope: note: {n}"),
        }
    }
}

/// A trajectory input.
#[derive(Debug, Clone, clap::Args)]
pub struct TrajInput {
    /// Positions (XYZ / extended XYZ, Å), e.g. CP2K `PROJECT-pos-1.xyz`.
    pub positions: PathBuf,
    /// Velocities (XYZ), e.g. CP2K `PROJECT-vel-1.xyz`.
    #[arg(long, value_name = "FILE")]
    pub velocities: Option<PathBuf>,
    /// Unit of the velocity file (CP2K default: bohr/a.u.t).
    #[arg(long, value_enum, default_value_t = VelocityUnit::BohrPerAut)]
    pub vel_unit: VelocityUnit,
    /// Time step, fs (when the files carry no times).
    #[arg(long, value_name = "FS")]
    pub dt_fs: Option<f64>,
    /// Equilibration to drop, fs.
    #[arg(long, value_name = "FS", default_value_t = 0.0)]
    pub skip_fs: f64,
    /// Rigid-body removal (default: project; none when atoms are frozen).
    #[arg(long, value_enum)]
    pub rigid: Option<RigidMode>,
    /// Use the complete frames of a trajectory whose last frame was cut off (killed job).
    #[arg(long)]
    pub allow_truncated: bool,
}

impl TrajInput {
    /// The library's reading parameters.
    pub(crate) fn params(&self) -> TrajParams {
        TrajParams {
            velocities: self.velocities.clone(),
            velocity_unit: self.vel_unit,
            dt_fs: self.dt_fs,
            skip_fs: self.skip_fs,
            rigid: self.rigid,
            allow_truncated: self.allow_truncated,
        }
    }
}

pub(crate) fn run(cmd: &Command, quiet: bool) -> Result<()> {
    let allowed = match cmd {
        Command::Coupling(a) => a.input.allow_truncated,
        Command::Dephasing(a) => a.input.allow_truncated,
        Command::Histogram(a) => a.allow_truncated,
        Command::Dos(a) => a.input.allow_truncated,
        Command::Rmsf(a) => a.input.allow_truncated,
    };
    match cmd {
        Command::Coupling(a) => gap::run_coupling(a),
        Command::Dephasing(a) => gap::run_dephasing(a),
        Command::Histogram(a) => gap::run_histogram(a),
        Command::Dos(a) => traj::run_dos(a, quiet),
        Command::Rmsf(a) => traj::run_rmsf(a, quiet),
    }
    .map_err(|e| truncation_in_words(e, allowed))
}

/// The library's [`Error::Truncated`] as the command line words it: the
/// flag that accepts the complete records, or (flag given) that there are
/// none.
fn truncation_in_words(e: Error, allowed: bool) -> Error {
    match e {
        Error::Truncated { path, line, what } => Error::format(
            &path,
            if allowed {
                format!("line {line}: truncated {what} at the end of the file, and no complete one before it")
            } else {
                format!("line {line}: truncated {what} at the end of the file (a killed run?); --allow-truncated uses the complete ones")
            },
        ),
        e => e,
    }
}
