//! Trajectories streamed frame by frame: positions (and velocities) joined
//! by MD step, equilibration skipped, time step checked, rigid-body motion
//! removed against the ICP mean structure (docs/methods/phonon.md).
//!
//! Memory never grows with the number of steps: every consumer (VDOS Welch
//! segments, RMSF Welford sums) works on one frame at a time, and the ICP
//! reference costs one pass over the positions per iteration.

use std::path::{Path, PathBuf};

use nalgebra::{Matrix3, Vector3};
use serde::Serialize;

use crate::error::{Error, Result, Warnings};
use crate::io::xyz::{Frame, Prefetch, VelocityUnit, XyzReader};
use crate::phonon::rigid::{self, mass_amu};

/// How rigid-body motion is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RigidMode {
    /// Kabsch to the ICP mean structure; velocities projected (default).
    Project,
    /// Kabsch to the mean; velocities only rotated.
    Rotate,
    /// No alignment (frozen-atom runs: the frozen atoms pin the frame).
    None,
}

/// What to read.
#[derive(Debug, Clone)]
pub struct Source {
    /// Positions file (XYZ, Å).
    pub positions: PathBuf,
    /// Velocities file (XYZ) if any.
    pub velocities: Option<PathBuf>,
    /// Unit of the velocity file.
    pub velocity_unit: VelocityUnit,
    /// Time step, fs (required when the files carry no times).
    pub dt_fs: Option<f64>,
    /// Equilibration to drop from the start, fs.
    pub skip_fs: f64,
    /// Progress display, advanced once per frame read (every pass).
    pub progress: Option<indicatif::ProgressBar>,
    /// Use the complete frames of a file whose last frame was cut off (a
    /// killed job) instead of failing with [`Error::Truncated`]; the frames
    /// dropped are counted in [`Info::frames_dropped_truncated`].
    pub allow_truncated: bool,
}

/// A frame as the consumers see it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Time since the first kept frame, fs.
    pub t_fs: f64,
    /// Positions, Å (aligned when a reference is used).
    pub pos: Vec<[f64; 3]>,
    /// Velocities, Å/fs (projected/rotated per the rigid mode).
    pub vel: Option<Vec<[f64; 3]>>,
}

/// Facts about a trajectory gathered while reading it.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    /// Atoms.
    pub n_atoms: usize,
    /// Element of each atom.
    pub species: Vec<String>,
    /// Mass of each atom, amu.
    pub masses: Vec<f64>,
    /// Frames kept.
    pub n_frames: usize,
    /// Time step, fs: given, or read from the frames; `None` when neither
    /// (a single frame without one).
    pub dt_fs: Option<f64>,
    /// Rigid mode used.
    pub rigid: RigidMode,
    /// ICP iterations of the reference.
    pub icp_iterations: usize,
    /// Atoms that never move (frozen), indices.
    pub frozen: Vec<usize>,
    /// Frames of the positions dropped because a file ended in a cut-off
    /// frame (only with [`Source::allow_truncated`]).
    pub frames_dropped_truncated: usize,
    /// Remarks.
    pub warnings: Warnings,
}

/// What one pass over the joined frames found.
struct Pass {
    species: Vec<String>,
    kept: usize,
    dt: Option<f64>,
    warnings: Warnings,
    dropped: usize,
}

fn is_truncation(e: &Error) -> bool {
    matches!(e, Error::Truncated { .. })
}

/// The velocity frame matching `f` (by step when both have steps); `None`
/// when the velocity file ends, or ends in a cut-off frame, and
/// truncation is allowed.
fn next_velocity(
    src: &Source,
    r: &mut Prefetch,
    f: &Frame,
    last_vstep: &mut Option<i64>,
) -> Result<Option<Frame>> {
    let vpath = src.velocities.as_deref().unwrap_or(Path::new("velocities"));
    loop {
        let v = match r.next() {
            None if src.allow_truncated => return Ok(None),
            None => {
                return Err(Error::format(
                    vpath,
                    format!(
                        "ends before the positions' frame at line {} (step {:?})",
                        f.line, f.step
                    ),
                ))
            }
            Some(Err(e)) if src.allow_truncated && is_truncation(&e) => return Ok(None),
            Some(v) => v?,
        };
        if let (Some(vs), Some(l)) = (v.step, *last_vstep) {
            if vs <= l {
                continue;
            }
        }
        *last_vstep = v.step.or(*last_vstep);
        match (v.step, f.step) {
            (Some(vs), Some(ps)) if vs < ps => continue,
            (Some(vs), Some(ps)) if vs > ps => {
                return Err(Error::format(
                    vpath,
                    format!(
                        "line {}: no velocity frame for step {ps} (next is {vs})",
                        v.line
                    ),
                ))
            }
            _ => return Ok(Some(v)),
        }
    }
}

fn time_of(f: &Frame, idx: usize, dt: Option<f64>) -> Option<f64> {
    f.time_fs
        .or_else(|| dt.map(|d| f.step.map_or(idx as f64 * d, |s| s as f64 * d)))
}

/// Iterate joined frames, calling `each(snapshot_raw_pos, raw_vel, t)`.
fn for_each_raw(
    src: &Source,
    mut each: impl FnMut(&Frame, Option<&Frame>, f64) -> Result<()>,
) -> Result<Pass> {
    let mut pos = Prefetch::open(&src.positions)?;
    let mut vel = match &src.velocities {
        Some(p) => Some(Prefetch::open(p)?),
        None => None,
    };
    let mut warnings = Warnings::default();
    let mut species: Option<Vec<String>> = None;
    let (mut last_step, mut last_vstep) = (None::<i64>, None::<i64>);
    let (mut t0, mut t_prev, mut dt) = (None::<f64>, None::<f64>, src.dt_fs);
    let mut kept = 0usize;
    let mut idx = 0usize;
    let mut dup = 0usize;
    let mut dropped = 0usize;
    while let Some(f) = pos.next() {
        let f = match f {
            Err(e) if src.allow_truncated && is_truncation(&e) => {
                dropped += 1;
                break;
            }
            f => f?,
        };
        idx += 1;
        if let Some(pb) = &src.progress {
            pb.inc(1);
        }
        if let (Some(s), Some(l)) = (f.step, last_step) {
            if s <= l {
                dup += 1;
                continue;
            }
        }
        last_step = f.step.or(last_step);
        let vf = match vel.as_mut() {
            None => None,
            Some(r) => match next_velocity(src, r, &f, &mut last_vstep)? {
                Some(v) => Some(v),
                None => {
                    // The velocities end early: this and every later
                    // position frame lack theirs.
                    dropped += 1 + pos.by_ref().count();
                    break;
                }
            },
        };
        if let Some(v) = &vf {
            if v.xyz.len() != f.xyz.len() {
                return Err(Error::format(
                    src.velocities.as_deref().unwrap_or(Path::new("velocities")),
                    format!(
                        "line {}: {} atoms, the positions have {}",
                        v.line,
                        v.xyz.len(),
                        f.xyz.len()
                    ),
                ));
            }
        }
        let t = time_of(&f, idx - 1, dt).ok_or_else(|| {
            Error::param(
                "dt_fs",
                format!(
                    "{}: frames carry no time or step; give the time step",
                    src.positions.display()
                ),
            )
        })?;
        let start = *t0.get_or_insert(t);
        if t - start < src.skip_fs - 1e-9 {
            continue;
        }
        if let Some(tp) = t_prev {
            let step = t - tp;
            match dt {
                None => dt = Some(step),
                Some(d) if (step - d).abs() > 1e-6 * d.max(1e-12) => {
                    return Err(Error::format(
                        &src.positions,
                        format!(
                            "line {}: non-uniform time step: {step} fs after {d} fs",
                            f.line
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        t_prev = Some(t);
        if species.is_none() {
            species = Some(f.species.clone());
        }
        each(&f, vf.as_ref(), t)?;
        kept += 1;
    }
    if dup > 0 {
        warnings.push(format!(
            "{dup} repeated step(s) dropped (restart boundaries)"
        ));
    }
    let species = species.ok_or_else(|| Error::Empty {
        what: src.positions.display().to_string(),
        reason: "no frames after the skipped equilibration".into(),
    })?;
    if dropped > 0 {
        warnings.push(format!(
            "{dropped} frame(s) dropped at the end: a file ends in a cut-off frame (truncated run)"
        ));
    }
    Ok(Pass {
        species,
        kept,
        dt,
        warnings,
        dropped,
    })
}

/// Masses of the species (error names the unknown element).
///
/// # Errors
/// An element without a mass in the table.
pub fn masses(species: &[String], file: &Path) -> Result<Vec<f64>> {
    species
        .iter()
        .map(|s| {
            mass_amu(s)
                .ok_or_else(|| Error::format(file, format!("unknown element '{s}' (no mass)")))
        })
        .collect()
}

/// Reference structure: aligned mean, iterated (ICP) until the RMS change
/// is < 1e-6 Å. Returns the centred reference, iterations, frozen atoms.
fn reference(src: &Source, masses: &[f64]) -> Result<(Vec<Vector3<f64>>, usize, Vec<usize>)> {
    // Pass 0: frame 0 as reference; also find atoms that never move.
    let mut first: Option<Vec<[f64; 3]>> = None;
    let mut moved: Vec<bool> = Vec::new();
    for_each_raw(src, |f, _, _| {
        match &first {
            None => {
                moved = vec![false; f.xyz.len()];
                first = Some(f.xyz.clone());
            }
            Some(r0) => {
                for (i, (a, b)) in f.xyz.iter().zip(r0).enumerate() {
                    if a != b {
                        moved[i] = true;
                    }
                }
            }
        }
        Ok(())
    })?;
    let r0 = first.unwrap_or_default();
    let frozen: Vec<usize> = moved
        .iter()
        .enumerate()
        .filter(|(_, m)| !**m)
        .map(|(i, _)| i)
        .collect();
    let c0 = rigid::centre(&r0, masses);
    let mut reference: Vec<Vector3<f64>> = r0.iter().map(|p| Vector3::from(*p) - c0).collect();
    for it in 1..=50 {
        if let Some(pb) = &src.progress {
            pb.set_message(format!("ICP pass {it}"));
        }
        let mut sum = vec![Vector3::zeros(); reference.len()];
        let mut n = 0usize;
        for_each_raw(src, |f, _, _| {
            let (rot, c) = rigid::kabsch(&f.xyz, &reference, masses);
            for (s, a) in sum.iter_mut().zip(rigid::apply(&f.xyz, &rot, &c)) {
                *s += a;
            }
            n += 1;
            Ok(())
        })?;
        let mean: Vec<Vector3<f64>> = sum.iter().map(|s| s / n as f64).collect();
        let cm = {
            let mut c = Vector3::zeros();
            let mut w = 0.0;
            for (p, m) in mean.iter().zip(masses) {
                c += p * *m;
                w += m;
            }
            c / w
        };
        let mean: Vec<Vector3<f64>> = mean.iter().map(|p| p - cm).collect();
        let change = (mean
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).norm_squared())
            .sum::<f64>()
            / mean.len() as f64)
            .sqrt();
        reference = mean;
        if change < 1e-6 {
            return Ok((reference, it, frozen));
        }
    }
    Err(Error::Numerical {
        what: src.positions.display().to_string(),
        reason: "the ICP reference did not converge in 50 iterations (RMS change ≥ 1e-6 Å)".into(),
    })
}

/// Stream the trajectory with rigid-body motion removed; `each` sees every
/// kept frame. `rigid` None → chosen automatically: `None` when any atom
/// never moves (frozen run), else `Project`.
///
/// # Errors
/// Reader errors, unknown elements, non-uniform steps, ICP failure.
pub fn stream(
    src: &Source,
    rigid: Option<RigidMode>,
    mut each: impl FnMut(&Snapshot) -> Result<()>,
) -> Result<Info> {
    // Species and masses from the first frame.
    let first = XyzReader::open(&src.positions)?
        .next()
        .ok_or_else(|| Error::Empty {
            what: src.positions.display().to_string(),
            reason: "no frames".into(),
        })??;
    let m = masses(&first.species, &src.positions)?;
    let (refr, iters, frozen) = match rigid {
        Some(RigidMode::None) => (Vec::new(), 0, Vec::new()),
        _ => reference(src, &m)?,
    };
    let mode = match rigid {
        Some(r) => r,
        None if !frozen.is_empty() => RigidMode::None,
        None => RigidMode::Project,
    };
    if let Some(pb) = &src.progress {
        pb.set_message("final pass");
    }
    let conv = src.velocity_unit.to_angstrom_per_fs();
    let mut t0 = None;
    let Pass {
        species,
        kept: n_frames,
        dt,
        mut warnings,
        dropped,
    } = for_each_raw(src, |f, v, t| {
        let start = *t0.get_or_insert(t);
        let (rot, c) = if mode == RigidMode::None {
            (Matrix3::identity(), Vector3::zeros())
        } else {
            rigid::kabsch(&f.xyz, &refr, &m)
        };
        let pos: Vec<[f64; 3]> = if mode == RigidMode::None {
            f.xyz.clone()
        } else {
            rigid::apply(&f.xyz, &rot, &c)
                .iter()
                .map(|p| [p[0], p[1], p[2]])
                .collect()
        };
        let vel = v.map(|v| {
            let raw: Vec<[f64; 3]> = v
                .xyz
                .iter()
                .map(|u| [u[0] * conv, u[1] * conv, u[2] * conv])
                .collect();
            match mode {
                RigidMode::None => raw,
                RigidMode::Rotate => raw
                    .iter()
                    .map(|u| {
                        let w = rot * Vector3::from(*u);
                        [w[0], w[1], w[2]]
                    })
                    .collect(),
                RigidMode::Project => rigid::project_velocities(&f.xyz, &raw, &m, &rot, &c),
            }
        });
        each(&Snapshot {
            t_fs: t - start,
            pos,
            vel,
        })
    })?;
    if let Some(dt) = dt.filter(|dt| *dt > 10.0 + 1e-9) {
        warnings.push(format!(
            "frames every {dt} fs: the spectrum ends at {:.1} meV (Nyquist)",
            crate::units::H_EV_FS * 1e3 / (2.0 * dt)
        ));
    }
    Ok(Info {
        n_atoms: species.len(),
        masses: m,
        species,
        n_frames,
        dt_fs: dt,
        rigid: mode,
        icp_iterations: iters,
        frozen,
        frames_dropped_truncated: dropped,
        warnings,
    })
}
