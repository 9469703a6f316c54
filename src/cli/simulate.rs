//! `qdscope simulate`: multislice ADF-STEM thickness series of CsPbBr3
//! [001] and the Cs : Pb/Br column ratio vs thickness (simulation spec).
//! Writes `series.csv`, `series_se.csv` (jackknife standard errors over the
//! frozen-phonon configurations, two or more), `images/t<NN>uc.npy`, `series.png`,
//! `simulate.json`; with `--shard I/N` only `partial.json` (summed
//! detector fractions of that shard), which `--merge DIR...` combines.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::multislice::image::{jackknife, jackknife_se, series, Row};
use crate::multislice::merge::{check_complete, merge, reevaluate};
use crate::multislice::propagate::Grid;
use crate::multislice::series::{engine, in_shard, run_shard, Partial, SimParams};
use crate::optics::Microscope;
use crate::report::{self, fmt_f64, plot};

/// Presets of grid, supercell and sampling of the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    /// 3×3 u.c., 576² grid, 4 configurations, 3 defocus nodes (minutes on 2 cores).
    Quick,
    /// The study's settings: 5×5 u.c., 1536² grid, 20 configurations, 5 nodes (≈ 8 min per configuration on 2 cores, ≈ 3 h in all; shard it with --shard I/20).
    High,
}

/// Algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Plain multislice, one propagation per probe position.
    Multislice,
    /// PRISM S-matrix with interpolation factor f (`--interpolation`).
    Prism,
}

/// Arguments of `qdscope simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Thickness range in u.c., `FROM..TO` (every u.c. is recorded).
    #[arg(long, value_name = "FROM..TO", default_value = "2..30")]
    pub thickness_uc: String,
    /// High tension, kV.
    #[arg(long, value_name = "KV", default_value_t = 300.0)]
    pub kv: f64,
    /// Probe convergence semi-angle, mrad.
    #[arg(long, value_name = "MRAD", default_value_t = 18.0)]
    pub convergence_mrad: f64,
    /// Annular detector `INNER,OUTER` in mrad; repeat for several detectors.
    #[arg(long, value_name = "IN,OUT", default_value = "35,190")]
    pub detector_mrad: Vec<String>,
    /// Energy spread, eV FWHM.
    #[arg(long, value_name = "EV", default_value_t = 0.8)]
    pub energy_spread_ev: f64,
    /// Chromatic aberration C_c, mm (assumption).
    #[arg(long, value_name = "MM", default_value_t = 1.4)]
    pub cc_mm: f64,
    /// Probe defocus Δf, Å (Kirkland sign: Δf > 0 focuses the probe Δf below the entrance surface; assumption: 0).
    #[arg(long, value_name = "A", default_value_t = 0.0, allow_hyphen_values = true)]
    pub defocus_angstrom: f64,
    /// Effective source size, Å FWHM.
    #[arg(long, value_name = "ANGSTROM", default_value_t = 0.25)]
    pub source_size_angstrom: f64,
    /// Extra Gaussian blur σ, Å.
    #[arg(long, value_name = "ANGSTROM", default_value_t = 0.3)]
    pub blur_angstrom: f64,
    /// Preset of grid, supercell, configurations and defocus nodes.
    #[arg(long, value_enum, default_value_t = Quality::Quick)]
    pub quality: Quality,
    /// Frozen-phonon configurations (overrides the preset).
    #[arg(long, value_name = "N")]
    pub phonons: Option<usize>,
    /// Gauss–Hermite defocus nodes 1, 3 or 5 (overrides the preset).
    #[arg(long, value_name = "N")]
    pub defocus_nodes: Option<usize>,
    /// Supercell side in u.c. (overrides the preset).
    #[arg(long, value_name = "N")]
    pub supercell_uc: Option<usize>,
    /// Wave sampling Δx in Å (grid = L/Δx rounded up to an FFT-friendly size; overrides the preset).
    #[arg(long, value_name = "DX")]
    pub sampling_angstrom: Option<f64>,
    /// Probe positions per unit-cell side (≥ a·4α/λ).
    #[arg(long, value_name = "N", default_value_t = 24)]
    pub probe_per_cell: usize,
    /// Scan every position instead of the 4mm wedge about the Cs column.
    #[arg(long)]
    pub no_symmetry: bool,
    /// Algorithm.
    #[arg(long, value_enum, default_value_t = Method::Multislice)]
    pub method: Method,
    /// PRISM interpolation factor f (1, 2, 4 or 8; 1 equals multislice).
    #[arg(long, value_name = "F", default_value_t = 1)]
    pub interpolation: usize,
    /// Transmission functions computed on an M-times finer grid and
    /// band-limited onto the wave grid (1 … 4; 1 = sampled potential). The
    /// projected potential is singular at the nuclei: with M = 1 a column
    /// half a pixel off the grid scatters ≈ 11 % more into the ADF detector
    /// than one on a pixel (Pb/Br, 4 u.c.), with M = 2 < 0.3 %.
    #[arg(long, value_name = "M", default_value_t = 2)]
    pub potential_oversampling: usize,
    /// Double-precision complex FFTs, waves and transmissions (multislice
    /// only; default single precision, ≈ 2× faster).
    #[arg(long)]
    pub double: bool,
    /// Per-axis RMS thermal displacement per element, Å: `Cs=0.22,Pb=0.16,Br=0.22`.
    #[arg(long, value_name = "EL=A,...")]
    pub displacement_angstrom: Option<String>,
    /// Take the displacements from `qdscope phonon rmsf`'s rmsf_elements.csv (RMS per axis = RMSF/√3).
    #[arg(long, value_name = "FILE", conflicts_with = "displacement_angstrom")]
    pub phonon_rmsf: Option<PathBuf>,
    /// Pixel size of the images the columns are fitted on, Å (the experiment's).
    #[arg(long, value_name = "ANGSTROM", default_value_t = 0.1)]
    pub pixel_size_angstrom: f64,
    /// Seed of the frozen-phonon configurations.
    #[arg(long, value_name = "N", default_value_t = 2022)]
    pub seed: u64,
    /// Compute only shard I of N of the (configuration, defocus node) work items.
    #[arg(long, value_name = "I/N", conflicts_with = "merge")]
    pub shard: Option<String>,
    /// Combine the `partial.json` of shard directories instead of computing.
    #[arg(long, value_name = "DIR", num_args = 1..)]
    pub merge: Vec<PathBuf>,
    /// With --merge: accept shards holding only some configurations and
    /// average over those (a preliminary result, said in the warnings).
    #[arg(long, requires = "merge")]
    pub allow_partial: bool,
    /// Output directory.
    #[arg(short, long = "output", value_name = "DIR")]
    pub output: PathBuf,
}

/// Default U_iso of the spec (Pb 0.025, Cs 0.05, Br 0.05 Å²) as per-axis RMS (Å).
const DEFAULT_RMS: [f64; 3] = [0.223_606_8, 0.158_113_9, 0.223_606_8];

fn parse_range(s: &str) -> Result<(usize, usize)> {
    let bad = || {
        Error::param(
            "--thickness-uc",
            format!("expected FROM..TO with 1 ≤ FROM ≤ TO ≤ 200, got '{s}'"),
        )
    };
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let (a, b): (usize, usize) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a == 0 || a > b || b > 200 {
        return Err(bad());
    }
    Ok((a, b))
}

fn parse_displacements(s: &str) -> Result<[f64; 3]> {
    let mut out = DEFAULT_RMS;
    for part in s.split(',') {
        let (el, v) = part.split_once('=').ok_or_else(|| {
            Error::param(
                "--displacement-angstrom",
                format!("expected EL=VALUE, got '{part}'"),
            )
        })?;
        let v: f64 = v.trim().parse().map_err(|_| {
            Error::param("--displacement-angstrom", format!("'{v}' is not a number"))
        })?;
        if !(v.is_finite() && v >= 0.0) {
            return Err(Error::param(
                "--displacement-angstrom",
                format!("{el}: must be ≥ 0 Å"),
            ));
        }
        match el.trim() {
            "Cs" => out[0] = v,
            "Pb" => out[1] = v,
            "Br" => out[2] = v,
            e => {
                return Err(Error::param(
                    "--displacement-angstrom",
                    format!("unknown element '{e}' (Cs, Pb, Br)"),
                ))
            }
        }
    }
    Ok(out)
}

fn rmsf_displacements(path: &Path) -> Result<[f64; 3]> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = [f64::NAN; 3];
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let v = f.get(1).and_then(|v| v.parse::<f64>().ok());
        let k = match f.first().copied() {
            Some("Cs") => 0,
            Some("Pb") => 1,
            Some("Br") => 2,
            _ => continue,
        };
        out[k] = v.ok_or_else(|| Error::format(path, format!("bad row '{line}'")))? / 3f64.sqrt();
    }
    if out.iter().any(|v| !v.is_finite()) {
        return Err(Error::format(path, "needs rmsf_mean_angstrom rows for Cs, Pb and Br (qdscope phonon rmsf's rmsf_elements.csv)"));
    }
    Ok(out)
}

fn params(a: &Args) -> Result<(SimParams, (usize, usize))> {
    let range = parse_range(&a.thickness_uc)?;
    let (sc, n, ph, nodes) = match a.quality {
        Quality::Quick => (3, 576, 4, 3),
        Quality::High => (5, 1536, 20, 5),
    };
    let supercell = a.supercell_uc.unwrap_or(sc);
    let l = 5.87 * supercell as f64;
    let grid_n = match a.sampling_angstrom {
        Some(dx) if dx.is_finite() && dx > 0.0 => {
            crate::fft::convolve::fast_len((l / dx).ceil() as usize)
        }
        Some(dx) => {
            return Err(Error::param(
                "--sampling-angstrom",
                format!("must be > 0, got {dx}"),
            ))
        }
        None if supercell == sc => n,
        // The preset's sampling on another supercell (integer arithmetic:
        // 576 px per 3 u.c. is 192 per u.c. exactly).
        None => crate::fft::convolve::fast_len((n * supercell).div_ceil(sc)),
    };
    let mut detectors = Vec::new();
    for d in &a.detector_mrad {
        let v: Vec<f64> = d.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        match v.as_slice() {
            [i, o] => detectors.push((*i, *o)),
            _ => {
                return Err(Error::param(
                    "--detector-mrad",
                    format!("expected INNER,OUTER, got '{d}'"),
                ))
            }
        }
    }
    let displacement_angstrom = match (&a.displacement_angstrom, &a.phonon_rmsf) {
        (Some(s), _) => parse_displacements(s)?,
        (None, Some(p)) => rmsf_displacements(p)?,
        (None, None) => DEFAULT_RMS,
    };
    let p = SimParams {
        microscope: Microscope {
            high_tension_kv: a.kv,
            convergence_mrad: a.convergence_mrad,
            cc_mm: a.cc_mm,
            defocus_angstrom: a.defocus_angstrom,
            energy_spread_ev: a.energy_spread_ev,
            source_size_angstrom: a.source_size_angstrom,
            ..Microscope::default()
        },
        detectors,
        blur_angstrom: a.blur_angstrom,
        max_thickness_uc: range.1,
        lattice_angstrom: 5.87,
        supercell_uc: supercell,
        grid_n,
        probe_per_cell: a.probe_per_cell,
        symmetry_wedge: !a.no_symmetry,
        phonons: a.phonons.unwrap_or(ph),
        defocus_nodes: a.defocus_nodes.unwrap_or(nodes),
        displacement_angstrom,
        seed: a.seed,
        prism_interpolation: (a.method == Method::Prism).then_some(a.interpolation),
        potential_oversampling: a.potential_oversampling,
        double_precision: a.double,
    };
    if p.double_precision && p.prism_interpolation.is_some() {
        return Err(Error::param(
            "--double",
            "applies to --method multislice (PRISM runs in single precision)",
        ));
    }
    if !(1..=4).contains(&p.potential_oversampling) {
        return Err(Error::param(
            "--potential-oversampling",
            format!("must be 1 … 4, got {}", p.potential_oversampling),
        ));
    }
    if !(p.blur_angstrom.is_finite() && p.blur_angstrom >= 0.0) {
        return Err(Error::param("--blur-angstrom", "must be ≥ 0"));
    }
    if !(a.pixel_size_angstrom.is_finite()
        && a.pixel_size_angstrom > 0.0
        && a.pixel_size_angstrom < 1.0)
    {
        return Err(Error::param("--pixel-size-angstrom", "must be in (0, 1) Å"));
    }
    let e = engine(&p)?;
    if let Some(f) = p.prism_interpolation {
        let nb = crate::multislice::prism::basis(&e, &p.microscope, f).len();
        crate::multislice::prism::validate(&p, f, nb)?;
    }
    Ok((p, range))
}

/// Run `qdscope simulate`.
///
/// # Errors
/// Invalid flags, a grid too coarse for the detector, unreadable shards,
/// I/O errors; nothing is written before the computation succeeded.
pub fn run(a: &Args, quiet: bool) -> Result<()> {
    let (p, range) = params(a)?;
    let mut reevaluated = Vec::new();
    let part = if a.merge.is_empty() {
        let shard = match &a.shard {
            None => (0, 1),
            Some(s) => {
                let bad =
                    || Error::param("--shard", format!("expected I/N with 0 ≤ I < N, got '{s}'"));
                let (i, n) = s.split_once('/').ok_or_else(bad)?;
                let (i, n): (usize, usize) =
                    (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
                if n == 0 || i >= n {
                    return Err(bad());
                }
                (i, n)
            }
        };
        let total = match p.prism_interpolation {
            // PRISM: one tick per plane wave per unit cell.
            Some(f) => {
                let nb = crate::multislice::prism::basis(&engine(&p)?, &p.microscope, f).len();
                let configs = (0..p.phonons)
                    .filter(|&k| in_shard(k, p.phonons, shard))
                    .count();
                configs * nb * p.max_thickness_uc
            }
            None => {
                let items = (0..p.phonons * p.defocus_nodes)
                    .filter(|&k| in_shard(k, p.phonons * p.defocus_nodes, shard))
                    .count();
                let (comp, _) =
                    crate::multislice::series::positions(p.probe_per_cell, p.symmetry_wedge);
                items * comp.len()
            }
        };
        let pb = report::progress(total as u64, "propagations", quiet);
        let part = run_shard(&p, shard, &|| pb.inc(1))?;
        pb.finish_and_clear();
        if a.shard.is_some() {
            super::ensure_dir(&a.output)?;
            return report::write_json(&a.output.join("partial.json"), &part);
        }
        part
    } else {
        let mut parts = Vec::new();
        for d in &a.merge {
            let f = d.join("partial.json");
            let text = std::fs::read_to_string(&f).map_err(|e| Error::io(&f, e))?;
            let part: Partial = serde_json::from_str(&text)
                .map_err(|e| Error::format(&f, format!("not a shard file: {e}")))?;
            parts.push(part);
        }
        let mut m = merge(&parts)?;
        reevaluated = reevaluate(&mut m, &p)?;
        check_complete(&mut m, a.allow_partial)?;
        m
    };
    write_outputs(a, range, &part, &reevaluated)
}

/// Write the series files; `part.params` are the parameters the results
/// are for (a merge may have re-evaluated the shards' ones, `reevaluated`).
fn write_outputs(
    a: &Args,
    range: (usize, usize),
    part: &Partial,
    reevaluated: &[String],
) -> Result<()> {
    let p = &part.params;
    let mut tables = Vec::new();
    let mut jack = Vec::new();
    for d in 0..p.detectors.len() {
        tables.push(series(part, d, a.pixel_size_angstrom)?);
        jack.push(jackknife(part, d, a.pixel_size_angstrom)?);
    }
    let mut warnings = Vec::new();
    let configs = part.configurations().len();
    if configs < p.phonons {
        warnings.push(format!(
            "averaged over the {configs} of {} configurations the shards hold (--allow-partial): a preliminary result",
            p.phonons
        ));
    }
    let moving = p.displacement_angstrom.iter().any(|&d| d > 0.0);
    // Static crystals channel more intensity past the band limit by nature
    // (spec §6.5), so the monitor warns for frozen-phonon runs only.
    if let Some(f) = p.prism_interpolation.filter(|&f| f > 1) {
        // PRISM's monitor is the intensity inside the windows, which also
        // drops when the window cuts the spread probe (any crystal).
        if part.min_intensity < 0.99 {
            warnings.push(format!(
                "only {:.4} of the probe intensity is inside the PRISM windows (L/f = {:.1} Å) after {} u.c.: the window cuts the spread probe or the grid is under-sampled; use a lower --interpolation or a larger --supercell-uc",
                part.min_intensity,
                p.lattice_angstrom * p.supercell_uc as f64 / f as f64,
                p.max_thickness_uc
            ));
        }
    } else if moving && part.min_intensity < 0.99 {
        warnings.push(format!(
            "only {:.4} of the probe intensity is left after {} u.c. (> 1 % scattered past the band limit): the grid is under-sampled",
            part.min_intensity, p.max_thickness_uc
        ));
    }
    // Scattering a probe component at α into the detector edge β_out needs
    // transmission frequencies up to β_out + α (measured: at a band limit of
    // 192 mrad for 35–190 mrad and α = 18 mrad the Pb/Br column intensity at
    // 4 u.c. is 2.8 % low).
    let grid = Grid {
        n: p.grid_n,
        l_angstrom: p.lattice_angstrom * p.supercell_uc as f64,
    };
    let lambda = crate::optics::wavelength_angstrom(p.microscope.high_tension_kv);
    let band_mrad = grid.k_max() * lambda * 1e3;
    let needed =
        p.detectors.iter().map(|d| d.1).fold(0.0, f64::max) + p.microscope.convergence_mrad;
    if band_mrad < needed {
        warnings.push(format!(
            "band limit {band_mrad:.0} mrad < outer detector angle + convergence = {needed:.0} mrad: high-angle scattering is cut, intensities are under-converged (needs --sampling-angstrom ≤ {:.4})",
            lambda / (3.0 * needed * 1e-3)
        ));
    }
    if p.symmetry_wedge && moving && p.phonons < 10 {
        warnings.push(format!(
            "the 4mm wedge copies each configuration's (asymmetric) displacements to the 8 equivalent positions: with {} configurations thin-crystal ratios are biased; use more --phonons or --no-symmetry",
            p.phonons
        ));
    }
    let rows_of = |rows: &[Row]| -> Vec<Vec<String>> {
        rows.iter()
            .filter(|r| r.thickness_uc >= range.0)
            .map(|r| {
                vec![
                    r.thickness_uc.to_string(),
                    fmt_f64(r.thickness_nm),
                    fmt_f64(r.cs_intensity),
                    fmt_f64(r.pbbr_intensity),
                    fmt_f64(r.ratio_volume),
                    fmt_f64(r.ratio_height),
                ]
            })
            .collect()
    };
    const HEADER: [&str; 6] = [
        "thickness_uc",
        "thickness_nm",
        "cs_intensity",
        "pbbr_intensity",
        "ratio_volume",
        "ratio_height",
    ];
    super::ensure_dir(&a.output)?;
    let images = a.output.join("images");
    super::ensure_dir(&images)?;
    for (d, (rows, imgs)) in tables.iter().enumerate() {
        let name = if d == 0 {
            "series.csv".to_string()
        } else {
            format!("series_detector{d}.csv")
        };
        report::write_csv(&a.output.join(name), &HEADER, &rows_of(rows))?;
        if let Some(loo) = &jack[d] {
            let name = if d == 0 {
                "series_se.csv".to_string()
            } else {
                format!("series_se_detector{d}.csv")
            };
            let se_rows: Vec<Vec<String>> = rows
                .iter()
                .enumerate()
                .filter(|(_, r)| r.thickness_uc >= range.0)
                .map(|(t, r)| {
                    let of = |f: fn(&Row) -> f64| row_se(loo, t, f);
                    vec![
                        r.thickness_uc.to_string(),
                        fmt_f64(of(|r| r.ratio_volume)),
                        fmt_f64(of(|r| r.ratio_height)),
                    ]
                })
                .collect();
            report::write_csv(
                &a.output.join(name),
                &["thickness_uc", "ratio_volume_se", "ratio_height_se"],
                &se_rows,
            )?;
        }
        for (t, img) in imgs.iter().enumerate().filter(|(t, _)| t + 1 >= range.0) {
            let f = if d == 0 {
                format!("t{:02}uc.npy", t + 1)
            } else {
                format!("t{:02}uc_detector{d}.npy", t + 1)
            };
            crate::io::write_npy_2d(&images.join(f), img.mapv(|v| v as f32).view())?;
        }
    }
    let rows = &tables[0].0;
    let at = |t: usize| rows.get(t.wrapping_sub(1)).map(|r| r.ratio_height);
    // Jackknife standard errors of detector 0 (None: one configuration).
    let se_of = |f: &dyn Fn(&[Row]) -> Option<f64>| -> Option<f64> {
        let loo = jack[0].as_ref()?;
        let v: Option<Vec<f64>> = loo.iter().map(|l| f(l)).collect();
        v.map(|v| jackknife_se(&v))
    };
    let h = |t: usize| move |r: &[Row]| r.get(t - 1).map(|r| r.ratio_height);
    let v = |t: usize| move |r: &[Row]| r.get(t - 1).map(|r| r.ratio_volume);
    let jackknife_summary = jack[0].as_ref().map(|loo| {
        let diff = |f: fn(&Row) -> f64| move |r: &[Row]| Some(f(r.get(29)?) - f(r.get(14)?));
        serde_json::json!({
            "configurations": loo.len(),
            "ratio_height_15uc_se": se_of(&h(15)),
            "ratio_height_30uc_se": se_of(&h(30)),
            "ratio_height_30uc_minus_15uc": diff(|r| r.ratio_height)(rows),
            "ratio_height_30uc_minus_15uc_se": se_of(&diff(|r| r.ratio_height)),
            "ratio_volume_15uc_se": se_of(&v(15)),
            "ratio_volume_30uc_se": se_of(&v(30)),
            "ratio_volume_30uc_minus_15uc": diff(|r| r.ratio_volume)(rows),
            "ratio_volume_30uc_minus_15uc_se": se_of(&diff(|r| r.ratio_volume)),
        })
    });
    let errs = |f: fn(&Row) -> f64| -> Option<Vec<f64>> {
        let loo = jack[0].as_ref()?;
        Some(
            rows.iter()
                .enumerate()
                .filter(|(_, r)| r.thickness_uc >= range.0)
                .map(|(t, _)| row_se(loo, t, f))
                .collect(),
        )
    };
    let pts = |f: fn(&Row) -> f64| {
        rows.iter()
            .filter(|r| r.thickness_uc >= range.0)
            .map(|r| (r.thickness_uc as f64, f(r)))
            .collect()
    };
    let bars = if jack[0].is_some() {
        " ± jackknife s.e."
    } else {
        ""
    };
    plot::xy_png(
        &a.output.join("series.png"),
        "Cs : Pb/Br ratio vs thickness (study: 0.370 at 15, 0.338 at 30 u.c.)",
        "thickness (u.c.)",
        "Cs : Pb/Br",
        &[
            plot::Series {
                label: format!("height (A) ratio{bars}"),
                points: pts(|r| r.ratio_height),
                line: true,
                y_err: errs(|r| r.ratio_height),
            },
            plot::Series {
                label: format!("volume ratio{bars}"),
                points: pts(|r| r.ratio_volume),
                line: true,
                y_err: errs(|r| r.ratio_volume),
            },
            plot::Series {
                label: "study".into(),
                points: vec![(15.0, 0.370), (30.0, 0.338)],
                line: false,
                y_err: None,
            },
        ],
    )?;
    let summary = serde_json::json!({
        "qdscope_version": env!("CARGO_PKG_VERSION"),
        "method": if p.prism_interpolation.is_some() { "prism" } else { "multislice" },
        "prism_interpolation": p.prism_interpolation,
        "quality": a.quality,
        "parameters": p,
        "assumptions": ["C_s = C_5 = 0, Δf as given (--defocus-angstrom)", "C_c as given (--cc-mm)", "energy spread and source size read as FWHM", "Einstein model, independent Gaussian displacements"],
        "sampling": {
            "grid_n": p.grid_n,
            "dx_angstrom": grid.dx(),
            "band_limit_mrad": band_mrad,
            "potential_oversampling": p.potential_oversampling,
            "precision": if p.double_precision { "complex f64" } else { "complex f32" },
            "probe_step_angstrom": p.lattice_angstrom / p.probe_per_cell as f64,
            "min_intensity_after_last_slice": part.min_intensity,
        },
        "ratio_height_15uc": at(15),
        "ratio_height_14_16_mean": match (at(14), at(16)) { (Some(x), Some(y)) => Some((x + y) / 2.0), _ => None },
        "ratio_height_30uc": at(30),
        "study": {"15uc": 0.370, "30uc": 0.338},
        "jackknife": jackknife_summary,
        "work_items": part.items.len(),
        "reevaluated_at_merge": reevaluated,
        "compute_seconds": part.seconds,
        "warnings": warnings,
    });
    report::write_json(&a.output.join("simulate.json"), &summary)?;
    for w in &warnings {
        eprintln!("qdscope: warning: {w}");
    }
    Ok(())
}

/// Jackknife s.e. of one column `f` of row `t` from leave-one-out row sets.
fn row_se(loo: &[Vec<Row>], t: usize, f: fn(&Row) -> f64) -> f64 {
    jackknife_se(&loo.iter().map(|l| f(&l[t])).collect::<Vec<_>>())
}
