//! The files of `qdscope simulate`: `series.csv` and `series_se.csv` per
//! detector, the cell images, `series.png` and `simulate.json` with the
//! sampling checks, warnings and jackknife summary.

use super::Args;
use crate::error::Result;
use crate::multislice::image::{jackknife, jackknife_se, series, Row};
use crate::multislice::propagate::Grid;
use crate::multislice::series::{Partial, SimParams};
use crate::report::{self, fmt_f64, plot};

/// Jackknife standard errors of detector 0 at 15 and 30 u.c. and of their
/// difference (None: one configuration).
fn jackknife_summary(
    rows: &[Row],
    loo: Option<&[Vec<Row>]>,
    errors: Option<&[(f64, f64)]>,
) -> Option<serde_json::Value> {
    loo.zip(errors).map(|(loo, e)| {
        let se = |t: usize, f: fn(&(f64, f64)) -> f64| e.get(t - 1).map(f);
        let diff = |f: fn(&Row) -> f64| -> (Option<f64>, Option<f64>) {
            if rows.len() < 30 {
                return (None, None);
            }
            let d: Vec<f64> = loo.iter().map(|l| f(&l[29]) - f(&l[14])).collect();
            (Some(f(&rows[29]) - f(&rows[14])), Some(jackknife_se(&d)))
        };
        let (dh, dh_se) = diff(|r| r.ratio_height);
        let (dv, dv_se) = diff(|r| r.ratio_volume);
        serde_json::json!({
            "configurations": loo.len(),
            "ratio_height_15uc_se": se(15, |e| e.1),
            "ratio_height_30uc_se": se(30, |e| e.1),
            "ratio_height_30uc_minus_15uc": dh,
            "ratio_height_30uc_minus_15uc_se": dh_se,
            "ratio_volume_15uc_se": se(15, |e| e.0),
            "ratio_volume_30uc_se": se(30, |e| e.0),
            "ratio_volume_30uc_minus_15uc": dv,
            "ratio_volume_30uc_minus_15uc_se": dv_se,
        })
    })
}

/// `series.png`: both ratios vs thickness with their jackknife s.e. and the
/// study's two values.
fn series_png(
    out: &std::path::Path,
    rows: &[Row],
    errors: Option<&[(f64, f64)]>,
    has_jackknife: bool,
    range: (usize, usize),
) -> Result<()> {
    let errs = |f: fn(&(f64, f64)) -> f64| -> Option<Vec<f64>> {
        let e = errors?;
        Some(
            rows.iter()
                .zip(e)
                .filter(|(r, _)| r.thickness_uc >= range.0)
                .map(|(_, e)| f(e))
                .collect(),
        )
    };
    let pts = |f: fn(&Row) -> f64| {
        rows.iter()
            .filter(|r| r.thickness_uc >= range.0)
            .map(|r| (r.thickness_uc as f64, f(r)))
            .collect()
    };
    let bars = if has_jackknife {
        " ± jackknife s.e."
    } else {
        ""
    };
    plot::xy_png(
        &out.join("series.png"),
        "Cs : Pb/Br ratio vs thickness (study: 0.370 at 15, 0.338 at 30 u.c.)",
        "thickness (u.c.)",
        "Cs : Pb/Br",
        &[
            plot::Series {
                label: format!("height (A) ratio{bars}"),
                points: pts(|r| r.ratio_height),
                line: true,
                y_err: errs(|e| e.1),
            },
            plot::Series {
                label: format!("volume ratio{bars}"),
                points: pts(|r| r.ratio_volume),
                line: true,
                y_err: errs(|e| e.0),
            },
            plot::Series {
                label: "study".into(),
                points: vec![(15.0, 0.370), (30.0, 0.338)],
                line: false,
                y_err: None,
            },
        ],
    )
}

/// Per detector and row: the jackknife s.e. of the (volume, height) ratios
/// (None: one configuration).
#[allow(clippy::type_complexity)]
fn ratio_errors(jack: &[Option<Vec<Vec<Row>>>]) -> Vec<Option<Vec<(f64, f64)>>> {
    jack.iter()
        .map(|j| {
            j.as_ref().map(|loo| {
                (0..loo[0].len())
                    .map(|t| {
                        (
                            row_se(loo, t, |r| r.ratio_volume),
                            row_se(loo, t, |r| r.ratio_height),
                        )
                    })
                    .collect()
            })
        })
        .collect()
}

/// The wave grid of the run and its band limit (mrad).
fn band_limit(p: &SimParams) -> (Grid, f64) {
    let grid = Grid {
        n: p.grid_n,
        l_angstrom: p.lattice_angstrom * p.supercell_uc as f64,
    };
    let lambda = crate::optics::wavelength_angstrom(p.microscope.high_tension_kv);
    let band = grid.k_max() * lambda * 1e3;
    (grid, band)
}

/// Warnings about the run itself: a partial merge, intensity lost past the
/// band limit or the PRISM windows, a band limit below the detector, the
/// wedge with few configurations.
fn run_warnings(part: &Partial) -> Vec<String> {
    let p = &part.params;
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
    // (docs/methods/multislice.md), so the monitor warns for frozen-phonon runs only.
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
    let lambda = crate::optics::wavelength_angstrom(p.microscope.high_tension_kv);
    let (_, band_mrad) = band_limit(p);
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
    warnings
}

/// Write the series files; `part.params` are the parameters the results
/// are for (a merge may have re-evaluated the shards' ones, `reevaluated`).
pub(super) fn write_outputs(
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
    let errors = ratio_errors(&jack);
    let warnings = run_warnings(part);
    let (grid, band_mrad) = band_limit(p);
    let set = crate::report::OutputSet::new(&a.output)?;
    let out = set.dir().to_path_buf();
    let images = out.join("images");
    crate::cli::ensure_dir(&images)?;
    for (d, (rows, imgs)) in tables.iter().enumerate() {
        write_series_csv(&out, d, rows, range)?;
        if let Some(e) = &errors[d] {
            write_series_se_csv(&out, d, rows, e, range)?;
        }
        write_images(&images, d, imgs, range)?;
    }
    let rows = &tables[0].0;
    let jackknife_summary = jackknife_summary(rows, jack[0].as_deref(), errors[0].as_deref());
    series_png(&out, rows, errors[0].as_deref(), jack[0].is_some(), range)?;
    let checks = RunChecks {
        grid,
        band_mrad,
        jackknife_summary,
        warnings,
    };
    write_simulate_json(&out, a, part, rows, &checks, reevaluated)?;
    set.commit()?;
    for w in &checks.warnings {
        eprintln!("qdscope: warning: {w}");
    }
    Ok(())
}

/// Name of a per-detector file: `stem.ext` for detector 0,
/// `stem_detector{d}.ext` for the others.
fn detector_file(stem: &str, ext: &str, d: usize) -> String {
    if d == 0 {
        format!("{stem}.{ext}")
    } else {
        format!("{stem}_detector{d}.{ext}")
    }
}

/// `series.csv` (`series_detector{d}.csv`): intensities and both ratios
/// per thickness from `range.0` on.
fn write_series_csv(
    out: &std::path::Path,
    d: usize,
    rows: &[Row],
    range: (usize, usize),
) -> Result<()> {
    const HEADER: [&str; 6] = [
        "thickness_uc",
        "thickness_nm",
        "cs_intensity",
        "pbbr_intensity",
        "ratio_volume",
        "ratio_height",
    ];
    let table: Vec<Vec<String>> = rows
        .iter()
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
        .collect();
    report::write_csv(
        &out.join(detector_file("series", "csv", d)),
        &HEADER,
        &table,
    )
}

/// `series_se.csv` (`series_se_detector{d}.csv`): the jackknife s.e. `e`
/// of both ratios per thickness from `range.0` on.
fn write_series_se_csv(
    out: &std::path::Path,
    d: usize,
    rows: &[Row],
    e: &[(f64, f64)],
    range: (usize, usize),
) -> Result<()> {
    let se_rows: Vec<Vec<String>> = rows
        .iter()
        .zip(e)
        .filter(|(r, _)| r.thickness_uc >= range.0)
        .map(|(r, e)| vec![r.thickness_uc.to_string(), fmt_f64(e.0), fmt_f64(e.1)])
        .collect();
    report::write_csv(
        &out.join(detector_file("series_se", "csv", d)),
        &["thickness_uc", "ratio_volume_se", "ratio_height_se"],
        &se_rows,
    )
}

/// `images/tNNuc.npy` (`tNNuc_detector{d}.npy`): the cell image of each
/// thickness from `range.0` on, float32.
fn write_images(
    images: &std::path::Path,
    d: usize,
    imgs: &[ndarray::Array2<f64>],
    range: (usize, usize),
) -> Result<()> {
    for (t, img) in imgs.iter().enumerate().filter(|(t, _)| t + 1 >= range.0) {
        let f = detector_file(&format!("t{:02}uc", t + 1), "npy", d);
        crate::io::write_npy_2d(&images.join(f), img.mapv(|v| v as f32).view())?;
    }
    Ok(())
}

/// What the run's checks found, for `simulate.json`.
struct RunChecks {
    /// The wave grid.
    grid: Grid,
    /// Its band limit, mrad.
    band_mrad: f64,
    /// Jackknife summary of detector 0 (None: one configuration).
    jackknife_summary: Option<serde_json::Value>,
    /// Warnings about the run.
    warnings: Vec<String>,
}

/// `simulate.json`: method, parameters, sampling, the ratios at 15 and
/// 30 u.c. of detector 0 (`rows`), the jackknife summary and the warnings.
fn write_simulate_json(
    out: &std::path::Path,
    a: &Args,
    part: &Partial,
    rows: &[Row],
    checks: &RunChecks,
    reevaluated: &[String],
) -> Result<()> {
    let p = &part.params;
    let RunChecks {
        grid,
        band_mrad,
        jackknife_summary,
        warnings,
    } = checks;
    let at = |t: usize| rows.get(t.wrapping_sub(1)).map(|r| r.ratio_height);
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
    report::write_json(&out.join("simulate.json"), &summary)
}

/// Jackknife s.e. of one column `f` of row `t` from leave-one-out row sets.
fn row_se(loo: &[Vec<Row>], t: usize, f: fn(&Row) -> f64) -> f64 {
    jackknife_se(&loo.iter().map(|l| f(&l[t])).collect::<Vec<_>>())
}
