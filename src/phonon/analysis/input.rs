//! Reading the inputs of the phonon analyses as `qdscope phonon` does: a
//! gap series (MOLog or two columns, checked against the run's `.ener`
//! file) and a trajectory (positions, velocities, time step, skip), with
//! their checks and the remarks they leave (docs/guide/phonon.md).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Remark;
use crate::error::{Error, Result};
use crate::io::cp2k::{self, EnerRow, GapSeries};
use crate::io::xyz::VelocityUnit;
use crate::phonon::trajectory::{RigidMode, Source};

/// How a gap series is read: the time step, the HOMO, the equilibration
/// dropped and the run's `.ener` file. `Default` is the command line's.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GapParams {
    /// Time step, fs: required for a MOLog without `ener` (the MD step
    /// between printed blocks); a two-column file's own step is checked
    /// against it.
    pub dt_fs: Option<f64>,
    /// HOMO index (default N_el/2 from the MOLog's occupation sum).
    pub homo_index: Option<usize>,
    /// Equilibration dropped from the start, fs (≥ 0).
    pub skip_fs: f64,
    /// CP2K `.ener` file of the run: gives Δt, checks that every printed
    /// step has one MO block (and gives the mean temperature).
    pub ener: Option<PathBuf>,
    /// MO blocks dropped from the start of a MOLog before pairing them
    /// with the `.ener` steps.
    pub mo_offset: usize,
    /// Use the complete MO blocks of a MOLog whose last block was cut off
    /// (a killed job) instead of failing.
    pub allow_truncated: bool,
}

impl GapParams {
    /// Check the parameters before reading anything.
    ///
    /// # Errors
    /// A negative or non-finite `skip_fs`, naming the field.
    pub fn validate(&self) -> Result<()> {
        check_skip(self.skip_fs)
    }
}

/// A gap series as read, with the `.ener` rows it was checked against.
#[derive(Debug, Clone, PartialEq)]
pub struct GapRead {
    /// The series after the skipped equilibration (and MO offset).
    pub series: GapSeries,
    /// The rows of `GapParams::ener`, if given.
    pub ener_rows: Option<Vec<EnerRow>>,
}

/// Read the gap series at `path` as [`GapParams`] says: the time step
/// from `dt_fs` or the `.ener` file, MOLog blocks paired with the `.ener`
/// steps (a restart point's extra first block dropped), the equilibration
/// skipped. Remarks (cut-off blocks, the restart block, near crossings)
/// go to `remarks` as they arise, also when an error follows.
///
/// # Errors
/// Invalid parameters; reader errors; an MO offset or skip that drops the
/// whole series; MO blocks and `.ener` steps that do not pair up.
pub fn read_gap(path: &Path, p: &GapParams, remarks: &mut Vec<Remark>) -> Result<GapRead> {
    p.validate()?;
    let rows = match &p.ener {
        Some(e) => Some((e, cp2k::read_ener(e)?)),
        None => None,
    };
    let dt = match (p.dt_fs, &rows) {
        (Some(d), _) => Some(d),
        (None, Some((e, r))) => Some(cp2k::ener_time_step(e, r)?),
        (None, None) => None,
    };
    let mut g = cp2k::read_gap_series_with(path, dt, p.homo_index, p.allow_truncated)?;
    if g.blocks_dropped_truncated > 0 {
        remarks.push(Remark::Warning(format!(
            "{}: {} cut-off MO block(s) dropped at the end (truncated run)",
            path.display(),
            g.blocks_dropped_truncated
        )));
    }
    if g.source == "molog" {
        pair_with_ener(path, p.mo_offset, &mut g, rows.as_ref(), remarks)?;
    }
    if let Some(n) = g.near_crossings.filter(|n| *n > 0) {
        remarks.push(Remark::Warning(format!(
            "{}: {n} step(s) with the HOMO−1/HOMO or LUMO/LUMO+1 pair within 5 meV (near crossing): the index-defined gap may switch states",
            path.display()
        )));
    }
    let skip = (p.skip_fs / g.dt_fs).round() as usize;
    if skip >= g.gap_mev.len() {
        return Err(Error::param(
            "skip_fs",
            format!(
                "{} fs drops the whole series ({} samples of {} fs)",
                p.skip_fs,
                g.gap_mev.len(),
                g.dt_fs
            ),
        ));
    }
    g.gap_mev.drain(..skip);
    Ok(GapRead {
        series: g,
        ener_rows: rows.map(|(_, r)| r),
    })
}

/// Drop `mo_offset` MO blocks and pair the rest with the `.ener` steps.
fn pair_with_ener(
    path: &Path,
    mo_offset: usize,
    g: &mut GapSeries,
    rows: Option<&(&PathBuf, Vec<EnerRow>)>,
    remarks: &mut Vec<Remark>,
) -> Result<()> {
    if mo_offset >= g.gap_mev.len() {
        return Err(Error::param(
            "mo_offset",
            format!(
                "{} drops all {} MO blocks of {}",
                mo_offset,
                g.gap_mev.len(),
                path.display()
            ),
        ));
    }
    g.gap_mev.drain(..mo_offset);
    let Some((e, r)) = rows else {
        return Ok(());
    };
    // A run continued from a restart file evaluates (and prints the MOs
    // of) the restart point, which its .ener and trajectory files do not
    // repeat: drop that first block.
    if mo_offset == 0 && r[0].step > 0 && g.gap_mev.len() == r.len() + 1 {
        remarks.push(Remark::Note(format!(
            "{}: first MO block is the restart point (step {}), not in {}; dropped",
            path.display(),
            r[0].step - 1,
            e.display()
        )));
        g.gap_mev.remove(0);
    }
    if r.len() != g.gap_mev.len() {
        return Err(Error::format(
            path,
            format!(
                "{} MO blocks (after `mo_offset = {}`) but {} printed steps in {}: the files are not from the same run or one is truncated",
                g.gap_mev.len(),
                mo_offset,
                r.len(),
                e.display()
            ),
        ));
    }
    Ok(())
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
pub fn mean_temperature_of(ener: &Path, rows: &[EnerRow], skip_fs: f64) -> Result<f64> {
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

/// The mean temperature of the `.ener` rows after `skip_fs`, with a
/// remark when it differs from the thermostat `target` by more than 10 %.
///
/// # Errors
/// As [`mean_temperature_of`].
pub fn measured_temperature(
    ener: &Path,
    rows: &[EnerRow],
    skip_fs: f64,
    target: f64,
    remarks: &mut Vec<Remark>,
) -> Result<f64> {
    let t = mean_temperature_of(ener, rows, skip_fs)?;
    if (t - target).abs() > 0.1 * target {
        remarks.push(Remark::Warning(format!(
            "{}: mean temperature {t:.1} K differs from the thermostat target {target} K by more than 10 %",
            ener.display()
        )));
    }
    Ok(t)
}

/// How a trajectory is read (everything but the positions file and the
/// progress display). `Default` is the command line's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrajParams {
    /// Velocities (XYZ), e.g. CP2K `PROJECT-vel-1.xyz`.
    pub velocities: Option<PathBuf>,
    /// Unit of the velocity file (CP2K default: bohr/a.u.t).
    pub velocity_unit: VelocityUnit,
    /// Time step, fs (> 0; when the files carry no times).
    pub dt_fs: Option<f64>,
    /// Equilibration dropped, fs (≥ 0).
    pub skip_fs: f64,
    /// Rigid-body removal (`None`: project, or none when atoms are frozen).
    pub rigid: Option<RigidMode>,
    /// Use the complete frames of a trajectory whose last frame was cut
    /// off (a killed job) instead of failing.
    pub allow_truncated: bool,
}

impl Default for TrajParams {
    fn default() -> Self {
        TrajParams {
            velocities: None,
            velocity_unit: VelocityUnit::BohrPerAut,
            dt_fs: None,
            skip_fs: 0.0,
            rigid: None,
            allow_truncated: false,
        }
    }
}

impl TrajParams {
    /// Check the parameters before reading anything.
    ///
    /// # Errors
    /// A negative `skip_fs` or a non-positive `dt_fs`, naming the field.
    pub fn validate(&self) -> Result<()> {
        check_skip(self.skip_fs)?;
        if let Some(d) = self.dt_fs {
            if !(d.is_finite() && d > 0.0) {
                return Err(Error::param("dt_fs", format!("must be > 0, got {d}")));
            }
        }
        Ok(())
    }

    /// The [`Source`] of the trajectory at `positions`.
    #[must_use]
    pub fn source(&self, positions: &Path, progress: Option<indicatif::ProgressBar>) -> Source {
        Source {
            positions: positions.to_path_buf(),
            velocities: self.velocities.clone(),
            velocity_unit: self.velocity_unit,
            dt_fs: self.dt_fs,
            skip_fs: self.skip_fs,
            progress,
            allow_truncated: self.allow_truncated,
        }
    }
}

fn check_skip(skip_fs: f64) -> Result<()> {
    if skip_fs.is_finite() && skip_fs >= 0.0 {
        Ok(())
    } else {
        Err(Error::param("skip_fs", "must be ≥ 0"))
    }
}
