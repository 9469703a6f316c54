//! CP2K text outputs: the `.ener` file, per-step HOMO/LUMO energies from the
//! MO print (`PROJECT-mo.MOLog`), and plain two-column gap series
//! (docs/methods/structure.md). Units are converted once, here:
//! Hartree → eV/meV, the a.u. eigenvalue column is the one used.
//!
//! HOMO/LUMO are taken **by orbital index** (N_el/2 and N_el/2 + 1, N_el
//! from the block's `MO| Sum:` occupation, or given), never by occupation:
//! with smearing or near crossings occupations mislead. UKS blocks
//! (`ALPHA`/`BETA`): HOMO = max over spins, LUMO = min over spins.
//! Intermediate-SCF blocks (`… AFTER SCF STEP n`) are skipped.

use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::error::{Error, Result};
use crate::units::HARTREE_EV;

/// A gap series on a uniform time grid.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GapSeries {
    /// Gap E_LUMO − E_HOMO per step, meV.
    pub gap_mev: Vec<f64>,
    /// Time step, fs.
    pub dt_fs: f64,
    /// Where it came from (`molog`, `two-column`).
    pub source: &'static str,
    /// HOMO index used (MOLog only).
    pub homo_index: Option<usize>,
    /// Steps with a near crossing (|E_HOMO − E_HOMO−1| or |E_LUMO+1 − E_LUMO|
    /// < 5 meV); None when the neighbouring levels were not printed.
    pub near_crossings: Option<usize>,
    /// MO blocks dropped because the MOLog ends in a cut-off block (only
    /// when truncation is allowed).
    pub blocks_dropped_truncated: usize,
}

/// HOMO/LUMO per MD step from a MOLog.
#[derive(Debug, Clone, PartialEq)]
pub struct MoSeries {
    /// (E_HOMO, E_LUMO) per step, eV.
    pub homo_lumo: Vec<(f64, f64)>,
    /// HOMO index used.
    pub homo_index: usize,
    /// Steps with a near crossing (< 5 meV to the next level), if the
    /// neighbouring levels were printed.
    pub near_crossings: Option<usize>,
    /// Cut-off last blocks dropped (see [`read_molog_with`]).
    pub blocks_dropped_truncated: usize,
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>> {
    Ok(BufReader::new(
        std::fs::File::open(path).map_err(|e| Error::io(path, e))?,
    ))
}

fn at(path: &Path, line: usize, msg: impl std::fmt::Display) -> Error {
    Error::format(path, format!("line {line}: {msg}"))
}

/// One row of a CP2K `.ener` file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnerRow {
    /// MD step.
    pub step: i64,
    /// Time, fs.
    pub time_fs: f64,
    /// Kinetic energy, eV.
    pub kinetic_ev: f64,
    /// Temperature, K.
    pub temperature_k: f64,
    /// Potential energy, eV.
    pub potential_ev: f64,
    /// Conserved quantity, eV.
    pub conserved_ev: f64,
}

/// Read a CP2K `PROJECT-1.ener` (energies converted Ha → eV). Duplicate
/// steps (restarts) keep the first occurrence.
///
/// # Errors
/// I/O errors; rows with fewer than 6 numbers or non-finite values (file
/// and line named); an empty file.
pub fn read_ener(path: &Path) -> Result<Vec<EnerRow>> {
    let mut rows: Vec<EnerRow> = Vec::new();
    for (i, line) in open(path)?.lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let v: Vec<f64> = t
            .split_whitespace()
            .map(str::parse::<f64>)
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| at(path, i + 1, "not a row of numbers"))?;
        if v.len() < 6 {
            return Err(at(
                path,
                i + 1,
                format!("expected ≥ 6 columns, found {}", v.len()),
            ));
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(at(path, i + 1, "non-finite value"));
        }
        let step = v[0] as i64;
        if rows.iter().rev().take(4).any(|r| r.step == step) {
            continue;
        }
        rows.push(EnerRow {
            step,
            time_fs: v[1],
            kinetic_ev: v[2] * HARTREE_EV,
            temperature_k: v[3],
            potential_ev: v[4] * HARTREE_EV,
            conserved_ev: v[5] * HARTREE_EV,
        });
    }
    if rows.is_empty() {
        return Err(Error::format(path, "no data rows"));
    }
    Ok(rows)
}

/// The MD time step (fs) between the printed rows of a `.ener` file:
/// uniform spacing required.
///
/// # Errors
/// Fewer than 2 rows, or non-uniform times (file named).
pub fn ener_time_step(path: &Path, rows: &[EnerRow]) -> Result<f64> {
    if rows.len() < 2 {
        return Err(Error::format(path, "fewer than 2 steps: no time step"));
    }
    let dt = rows[1].time_fs - rows[0].time_fs;
    let uniform = rows
        .windows(2)
        .all(|w| ((w[1].time_fs - w[0].time_fs) - dt).abs() <= 1e-6 * dt.abs().max(1.0));
    if !(dt > 0.0 && uniform) {
        return Err(Error::format(
            path,
            "times are not uniformly increasing: cannot pair steps with MO blocks",
        ));
    }
    Ok(dt)
}

#[derive(Default)]
struct Block {
    spin: usize,                  // 0 restricted/alpha, 1 beta
    rows: Vec<(usize, f64, f64)>, // index, energy Ha, occupation
    sum: Option<f64>,
}

/// The MD-step groups of one MOLog file, appended to `blocks`.
/// The MD-step groups of one MOLog file appended to `blocks`; returns the
/// number of cut-off last steps dropped (only with `allow_truncated`).
fn molog_groups<'a>(
    path: &'a Path,
    blocks: &mut Vec<(Vec<Block>, &'a Path, usize)>,
    allow_truncated: bool,
) -> Result<usize> {
    let mut dropped = 0usize;
    let mut current: Option<Block> = None;
    let mut group: Vec<Block> = Vec::new();
    let mut start_line = 0;
    let mut skipping = false;
    let flush = |group: &mut Vec<Block>, cur: &mut Option<Block>| {
        if let Some(b) = cur.take() {
            if !b.rows.is_empty() {
                group.push(b);
            }
        }
    };
    for (i, line) in open(path)?.lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        let t = line.trim();
        if !t.starts_with("MO|") {
            continue;
        }
        let body = t[3..].trim();
        let upper = body.to_ascii_uppercase();
        if upper.contains("EIGENVALUES")
            || upper.contains("ENERGIES") && upper.contains("OCCUPATION")
        {
            if upper.contains("AFTER SCF STEP") {
                flush(&mut group, &mut current);
                skipping = true;
                continue;
            }
            let spin = usize::from(upper.starts_with("BETA"));
            flush(&mut group, &mut current);
            // A new restricted or ALPHA block starts a new MD step.
            if spin == 0 && !group.is_empty() {
                blocks.push((std::mem::take(&mut group), path, start_line));
            }
            if spin == 0 {
                start_line = i + 1;
            }
            skipping = false;
            current = Some(Block {
                spin,
                ..Block::default()
            });
            continue;
        }
        if skipping {
            continue;
        }
        let Some(b) = current.as_mut() else { continue };
        if upper.starts_with("SUM:") {
            b.sum = body[4..]
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok());
            continue;
        }
        let f: Vec<&str> = body.split_whitespace().collect();
        if f.len() >= 4 {
            if let (Ok(idx), Ok(ha), Ok(occ)) = (
                f[0].parse::<usize>(),
                f[1].parse::<f64>(),
                f[3].parse::<f64>(),
            ) {
                if !ha.is_finite() {
                    return Err(at(path, i + 1, "non-finite eigenvalue"));
                }
                b.rows.push((idx, ha, occ));
            }
        }
    }
    // CP2K ends every block with `MO| Sum:`; a last block without it
    // (when earlier blocks have one) was cut off mid-write.
    let any_sum = blocks
        .iter()
        .any(|(g, p, _)| *p == path && g.iter().any(|b| b.sum.is_some()))
        || group.iter().any(|b| b.sum.is_some());
    if current.as_ref().is_some_and(|b| b.sum.is_none()) && any_sum {
        if !allow_truncated {
            return Err(Error::Truncated {
                path: path.to_path_buf(),
                line: start_line,
                what: "MO block (no `MO| Sum:` line)".into(),
            });
        }
        // The whole MD step goes (an UKS step's ALPHA block too).
        current = None;
        group.clear();
        dropped += 1;
    }
    flush(&mut group, &mut current);
    if !group.is_empty() {
        blocks.push((group, path, start_line));
    }
    Ok(dropped)
}

/// HOMO/LUMO energies (eV) per MD step from a MOLog (or several per-step
/// MOLog files, given in order). `homo` overrides the HOMO index.
///
/// # Errors
/// I/O errors; malformed rows; a block without the HOMO or LUMO index;
/// [`Error::Truncated`] for a last block cut off (see [`read_molog_with`]).
pub fn read_molog(paths: &[&Path], homo: Option<usize>) -> Result<MoSeries> {
    read_molog_with(paths, homo, false)
}

/// [`read_molog`]; with `allow_truncated` a last MD step whose block was
/// cut off (a killed job) is dropped and counted instead of failing.
///
/// # Errors
/// As [`read_molog`].
pub fn read_molog_with(
    paths: &[&Path],
    homo: Option<usize>,
    allow_truncated: bool,
) -> Result<MoSeries> {
    let mut blocks: Vec<(Vec<Block>, &Path, usize)> = Vec::new();
    let mut dropped = 0usize;
    for &path in paths {
        dropped += molog_groups(path, &mut blocks, allow_truncated)?;
    }
    if blocks.is_empty() {
        return Err(Error::format(
            paths.first().copied().unwrap_or(Path::new("MOLog")),
            "no `MO| EIGENVALUES` blocks found (is this a CP2K MOLog?)",
        ));
    }
    Ok(MoSeries {
        blocks_dropped_truncated: dropped,
        ..energies(&blocks, homo)?
    })
}

/// HOMO/LUMO (eV) of each MD step's blocks (UKS: HOMO = max, LUMO = min
/// over spins) and the near crossings.
fn energies(blocks: &[(Vec<Block>, &Path, usize)], homo: Option<usize>) -> Result<MoSeries> {
    let mut out = Vec::with_capacity(blocks.len());
    let mut homo_used = 0;
    let (mut crossings, mut checked) = (0usize, true);
    for (group, path, line) in blocks {
        let (mut h, mut l) = (f64::NEG_INFINITY, f64::INFINITY);
        let mut near = false;
        for b in group {
            let spins = if group.len() > 1 { 1.0 } else { 2.0 };
            let hi = match homo {
                Some(h) => h,
                None => {
                    let s = b.sum.ok_or_else(|| {
                        at(
                            path,
                            *line,
                            "block without `MO| Sum:` line; give `homo_index`",
                        )
                    })?;
                    if !(s.is_finite() && (0.0..=1e9).contains(&s)) {
                        return Err(at(
                            path,
                            *line,
                            format!("`MO| Sum:` {s} is not an electron count (0 to 1e9); give `homo_index`"),
                        ));
                    }
                    (s / spins).round() as usize
                }
            };
            homo_used = hi;
            let e = |idx: usize| b.rows.iter().find(|r| r.0 == idx).map(|r| r.1 * HARTREE_EV);
            let (eh, el) = (e(hi), hi.checked_add(1).and_then(e));
            match (
                hi.checked_sub(1).and_then(e),
                hi.checked_add(2).and_then(e),
                eh,
                el,
            ) {
                (Some(h1), Some(l1), Some(a), Some(c)) => {
                    near |= (a - h1).abs() < 5e-3 || (l1 - c).abs() < 5e-3;
                }
                _ => checked = false,
            }
            match (eh, el) {
                (Some(a), Some(c)) => {
                    h = h.max(a);
                    l = l.min(c);
                }
                _ => {
                    return Err(at(
                        path,
                        *line,
                        format!(
                            "block does not list MO {hi} (HOMO) and {} (LUMO)",
                            hi.saturating_add(1)
                        ),
                    ))
                }
            }
            let _ = b.spin;
        }
        out.push((h, l));
        crossings += usize::from(near);
    }
    Ok(MoSeries {
        homo_lumo: out,
        homo_index: homo_used,
        near_crossings: checked.then_some(crossings),
        blocks_dropped_truncated: 0,
    })
}

/// Times (fs) with the line each came from.
type TimesWithLines = Vec<(f64, usize)>;

/// The (time fs, line) and gap (meV) columns of a text table: a header
/// (or numpy-style `#` header) names them — `time…`/`t` and `…gap…`, units
/// `fs`/`ps` and `eV`/`meV` from the name's suffix —, else the first two
/// columns are `time_fs gap_eV`.
fn two_columns(path: &Path, text: &str) -> Result<(TimesWithLines, Vec<f64>)> {
    let table = crate::report::table::parse(path, text)?;
    let named = |t: &crate::report::table::Table| {
        let time = t.column(|n| n == "t" || n.starts_with("time"))?;
        let gap = t.column(|n| n.contains("gap"))?;
        Some((time, gap))
    };
    let (ti, gi, names) = match (named(&table), &table.header) {
        (Some((a, b)), _) => (a, b, table.names().map(<[String]>::to_vec)),
        (None, Some(h)) => {
            return Err(Error::format(
                path,
                format!(
                    "header '{}' names no time column (time_fs) and gap column (gap_eV)",
                    h.join(" ")
                ),
            ))
        }
        (None, None) if table.rows[0].1.len() >= 2 => (0, 1, None),
        (None, None) => {
            return Err(at(
                path,
                table.rows[0].0,
                "expected two columns: time (fs) and gap (eV)",
            ))
        }
    };
    let (t_scale, g_scale) = match &names {
        Some(n) => {
            let ts = crate::report::table::unit_factor(&n[ti], &[("fs", 1.0), ("ps", 1e3)], 1.0);
            let gs = crate::report::table::unit_factor(&n[gi], &[("meV", 1.0), ("eV", 1e3)], 1e3);
            match (ts, gs) {
                (Some(a), Some(b)) => (a, b),
                _ => {
                    return Err(Error::format(
                        path,
                        format!(
                            "columns '{}' and '{}': units not understood (time in fs or ps, gap in eV or meV)",
                            n[ti], n[gi]
                        ),
                    ))
                }
            }
        }
        None => (1.0, 1e3),
    };
    let (mut t, mut g) = (Vec::new(), Vec::new());
    for row in &table.rows {
        t.push((table.number(path, row, ti)? * t_scale, row.0));
        g.push(table.number(path, row, gi)? * g_scale);
    }
    Ok((t, g))
}

/// Read a gap series: a CP2K MOLog (needs `dt_fs`, the MD step between
/// printed blocks) or a text table of time (fs) and gap (eV): `#`
/// comments, comma / tab / whitespace separators, an optional header
/// naming the columns (`time_fs,gap_eV`; `time_ps`, `gap_meV` are
/// converted); Δt from the times, which must be uniform.
///
/// # Errors
/// Unreadable files, malformed lines (file and line named), a non-uniform
/// time step, missing Δt for a MOLog.
pub fn read_gap_series(path: &Path, dt_fs: Option<f64>, homo: Option<usize>) -> Result<GapSeries> {
    read_gap_series_with(path, dt_fs, homo, false)
}

/// [`read_gap_series`]; `allow_truncated` as in [`read_molog_with`].
///
/// # Errors
/// As [`read_gap_series`].
pub fn read_gap_series_with(
    path: &Path,
    dt_fs: Option<f64>,
    homo: Option<usize>,
    allow_truncated: bool,
) -> Result<GapSeries> {
    let head = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8_lossy(&head);
    if text.contains("MO|") {
        let dt = dt_fs.ok_or_else(|| {
            Error::param(
                "dt_fs",
                format!(
                    "{}: a MOLog has no times; give the MD time step between printed blocks",
                    path.display()
                ),
            )
        })?;
        let mo = read_molog_with(&[path], homo, allow_truncated)?;
        return Ok(GapSeries {
            gap_mev: mo.homo_lumo.iter().map(|(a, b)| (b - a) * 1e3).collect(),
            dt_fs: dt,
            source: "molog",
            homo_index: Some(mo.homo_index),
            near_crossings: mo.near_crossings,
            blocks_dropped_truncated: mo.blocks_dropped_truncated,
        });
    }
    let (t, g) = two_columns(path, &text)?;
    if t.len() < 2 {
        return Err(Error::format(
            path,
            format!("needs at least 2 samples, found {}", t.len()),
        ));
    }
    let dt = t[1].0 - t[0].0;
    if dt.is_nan() || dt <= 0.0 {
        return Err(at(path, t[1].1, "time does not increase"));
    }
    if let Some(w) = t
        .windows(2)
        .find(|w| ((w[1].0 - w[0].0) - dt).abs() > 1e-6 * dt.max(1.0))
    {
        return Err(at(
            path,
            w[1].1,
            format!(
                "non-uniform time step: {} fs after {} fs steps",
                w[1].0 - w[0].0,
                dt
            ),
        ));
    }
    if let Some(d) = dt_fs {
        if (d - dt).abs() > 1e-6 * dt {
            return Err(Error::param(
                "dt_fs",
                format!("{} fs disagrees with the file's time step {dt} fs", d),
            ));
        }
    }
    Ok(GapSeries {
        gap_mev: g,
        dt_fs: dt,
        source: "two-column",
        homo_index: None,
        near_crossings: None,
        blocks_dropped_truncated: 0,
    })
}

#[cfg(test)]
mod tests;
