//! `qdscope phonon dos|coupling|dephasing|histogram|rmsf`: the phonon half
//! on CP2K (or other XYZ) trajectories and gap series. Every subcommand
//! writes CSV tables (units in the headers), a JSON summary with the
//! run's metadata (docs/methods/conventions.md), and a PNG plot; nothing is written unless
//! the analysis succeeded. `gap` holds the gap-series commands (coupling,
//! dephasing, histogram), `traj` the trajectory commands (dos, rmsf).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::cp2k::{self, GapSeries};
use crate::io::xyz::VelocityUnit;
use crate::phonon::trajectory::{RigidMode, Source};
use crate::report;

mod gap;
mod traj;

pub use gap::{coupling_outputs, CouplingArgs, DephasingArgs, HistogramArgs, Threshold};
pub use traj::{DosArgs, RmsfArgs, TNorm};

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

    pub(crate) fn load(&self) -> Result<GapSeries> {
        Ok(self.load_with_ener()?.0)
    }

    /// The gap series and the `.ener` rows it was checked against (read once).
    pub(crate) fn load_with_ener(&self) -> Result<(GapSeries, Option<Vec<cp2k::EnerRow>>)> {
        let rows = match &self.ener {
            Some(e) => Some((e, cp2k::read_ener(e)?)),
            None => None,
        };
        let dt = match (self.dt_fs, &rows) {
            (Some(d), _) => Some(d),
            (None, Some((e, r))) => Some(cp2k::ener_time_step(e, r)?),
            (None, None) => None,
        };
        let mut g =
            cp2k::read_gap_series_with(&self.gap, dt, self.homo_index, self.allow_truncated)?;
        if g.blocks_dropped_truncated > 0 {
            eprintln!(
                "qdscope: warning: {}: {} cut-off MO block(s) dropped at the end (truncated run)",
                self.gap.display(),
                g.blocks_dropped_truncated
            );
        }
        if g.source == "molog" {
            if self.mo_offset >= g.gap_mev.len() {
                return Err(Error::param(
                    "--mo-offset",
                    format!(
                        "{} drops all {} MO blocks of {}",
                        self.mo_offset,
                        g.gap_mev.len(),
                        self.gap.display()
                    ),
                ));
            }
            g.gap_mev.drain(..self.mo_offset);
            if let Some((e, r)) = &rows {
                // A run continued from a restart file evaluates (and prints
                // the MOs of) the restart point, which its .ener and
                // trajectory files do not repeat: drop that first block.
                if self.mo_offset == 0 && r[0].step > 0 && g.gap_mev.len() == r.len() + 1 {
                    eprintln!(
                        "qdscope: note: {}: first MO block is the restart point (step {}), not in {}; dropped",
                        self.gap.display(),
                        r[0].step - 1,
                        e.display()
                    );
                    g.gap_mev.remove(0);
                }
                if r.len() != g.gap_mev.len() {
                    return Err(Error::format(
                        &self.gap,
                        format!(
                            "{} MO blocks (after --mo-offset {}) but {} printed steps in {}: the files are not from the same run or one is truncated",
                            g.gap_mev.len(),
                            self.mo_offset,
                            r.len(),
                            e.display()
                        ),
                    ));
                }
            }
        }
        if let Some(n) = g.near_crossings.filter(|n| *n > 0) {
            eprintln!(
                "qdscope: warning: {}: {n} step(s) with the HOMO−1/HOMO or LUMO/LUMO+1 pair within 5 meV (near crossing): the index-defined gap may switch states",
                self.gap.display()
            );
        }
        if !(self.skip_fs.is_finite() && self.skip_fs >= 0.0) {
            return Err(Error::param("--skip-fs", "must be ≥ 0"));
        }
        let skip = (self.skip_fs / g.dt_fs).round() as usize;
        if skip >= g.gap_mev.len() {
            return Err(Error::param(
                "--skip-fs",
                format!(
                    "{} fs drops the whole series ({} samples of {} fs)",
                    self.skip_fs,
                    g.gap_mev.len(),
                    g.dt_fs
                ),
            ));
        }
        g.gap_mev.drain(..skip);
        Ok((g, rows.map(|(_, r)| r)))
    }
}

/// Mean temperature (K) of a CP2K `.ener` file after `skip_fs`.
///
/// # Errors
/// Reader errors; no rows after the skip.
pub fn mean_temperature(ener: &Path, skip_fs: f64) -> Result<f64> {
    mean_temperature_of(ener, &cp2k::read_ener(ener)?, skip_fs)
}

/// Mean temperature (K) of rows already read from `ener`, after `skip_fs`.
///
/// # Errors
/// No rows after the skip.
pub fn mean_temperature_of(ener: &Path, rows: &[cp2k::EnerRow], skip_fs: f64) -> Result<f64> {
    let t0 = rows.first().map_or(0.0, |r| r.time_fs);
    let kept: Vec<f64> = rows
        .iter()
        .filter(|r| r.time_fs - t0 >= skip_fs - 1e-9)
        .map(|r| r.temperature_k)
        .collect();
    if kept.is_empty() {
        return Err(Error::Empty {
            what: ener.display().to_string(),
            reason: "no rows after the skipped equilibration".into(),
        });
    }
    Ok(kept.iter().sum::<f64>() / kept.len() as f64)
}

pub(crate) fn check_measured_t(ener: &Path, skip_fs: f64, target: f64) -> Result<f64> {
    check_measured_t_of(ener, &cp2k::read_ener(ener)?, skip_fs, target)
}

/// [`check_measured_t`] on rows already read.
pub(crate) fn check_measured_t_of(
    ener: &Path,
    rows: &[cp2k::EnerRow],
    skip_fs: f64,
    target: f64,
) -> Result<f64> {
    let t = mean_temperature_of(ener, rows, skip_fs)?;
    if (t - target).abs() > 0.1 * target {
        eprintln!(
            "qdscope: warning: {}: mean temperature {t:.1} K differs from the thermostat target {target} K by more than 10 %",
            ener.display()
        );
    }
    Ok(t)
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
    pub(crate) fn source(&self, quiet: bool) -> Result<Source> {
        if !(self.skip_fs.is_finite() && self.skip_fs >= 0.0) {
            return Err(Error::param("--skip-fs", "must be ≥ 0"));
        }
        if let Some(d) = self.dt_fs {
            if !(d.is_finite() && d > 0.0) {
                return Err(Error::param("--dt-fs", format!("must be > 0, got {d}")));
            }
        }
        Ok(Source {
            positions: self.positions.clone(),
            velocities: self.velocities.clone(),
            velocity_unit: self.vel_unit,
            dt_fs: self.dt_fs,
            skip_fs: self.skip_fs,
            progress: Some(report::spinner("frames", quiet)),
            allow_truncated: self.allow_truncated,
        })
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

pub(crate) fn check_temperature(t: f64) -> Result<()> {
    if t.is_finite() && t > 0.0 {
        Ok(())
    } else {
        Err(Error::param(
            "--temperature-k",
            format!("must be > 0 K, got {t}"),
        ))
    }
}
