//! The files of `qdscope simulate`: `series.csv` and `series_se.csv` per
//! detector, the cell images, `series.png` and `simulate.json` with the
//! sampling, warnings and jackknife summary the library computes
//! ([`qdscope::multislice::diagnostics`], [`qdscope::multislice::jackknife`]).

use super::Args;
use crate::cli::flags::words;
use qdscope::error::Result;
use qdscope::multislice::diagnostics::{sampling, warnings};
use qdscope::multislice::image::{jackknife, series, Row};
use qdscope::multislice::jackknife::{ratio_errors, summary, RatioSe};
use qdscope::multislice::series::Partial;
use qdscope::report::{self, fmt_f64, plot};

/// `series.png`: both ratios vs thickness with their jackknife s.e. and the
/// study's two values.
fn series_png(
    out: &std::path::Path,
    rows: &[Row],
    errors: Option<&[RatioSe]>,
    has_jackknife: bool,
    range: (usize, usize),
) -> Result<()> {
    let errs = |f: fn(&RatioSe) -> f64| -> Option<Vec<f64>> {
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
                y_err: errs(|e| e.height),
            },
            plot::Series {
                label: format!("volume ratio{bars}"),
                points: pts(|r| r.ratio_volume),
                line: true,
                y_err: errs(|e| e.volume),
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
    let errors: Vec<Option<Vec<RatioSe>>> = jack
        .iter()
        .map(|j| j.as_deref().map(ratio_errors))
        .collect();
    let warnings: Vec<String> = warnings(part).iter().map(|w| words(w)).collect();
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
    let set = qdscope::report::OutputSet::new(&a.output)?;
    let out = set.dir().to_path_buf();
    let images = out.join("images");
    crate::cli::ensure_dir(&images)?;
    for (d, (rows, imgs)) in tables.iter().enumerate() {
        let name = if d == 0 {
            "series.csv".to_string()
        } else {
            format!("series_detector{d}.csv")
        };
        report::write_csv(&out.join(name), &HEADER, &rows_of(rows))?;
        if let Some(e) = &errors[d] {
            let name = if d == 0 {
                "series_se.csv".to_string()
            } else {
                format!("series_se_detector{d}.csv")
            };
            let se_rows: Vec<Vec<String>> = rows
                .iter()
                .zip(e)
                .filter(|(r, _)| r.thickness_uc >= range.0)
                .map(|(r, e)| {
                    vec![
                        r.thickness_uc.to_string(),
                        fmt_f64(e.volume),
                        fmt_f64(e.height),
                    ]
                })
                .collect();
            report::write_csv(
                &out.join(name),
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
            qdscope::io::write_npy_2d(&images.join(f), img.mapv(|v| v as f32).view())?;
        }
    }
    let rows = &tables[0].0;
    let at = |t: usize| rows.get(t.wrapping_sub(1)).map(|r| r.ratio_height);
    let jackknife_summary = jack[0]
        .as_deref()
        .zip(errors[0].as_deref())
        .map(|(loo, e)| summary(rows, loo, e));
    series_png(&out, rows, errors[0].as_deref(), jack[0].is_some(), range)?;
    let summary = serde_json::json!({
        "qdscope_version": env!("CARGO_PKG_VERSION"),
        "method": if p.prism_interpolation.is_some() { "prism" } else { "multislice" },
        "prism_interpolation": p.prism_interpolation,
        "quality": a.quality,
        "parameters": p,
        "assumptions": ["C_s = C_5 = 0, Δf as given (--defocus-angstrom)", "C_c as given (--cc-mm)", "energy spread and source size read as FWHM", "Einstein model, independent Gaussian displacements"],
        "sampling": sampling(part),
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
    report::write_json(&out.join("simulate.json"), &summary)?;
    set.commit()?;
    for w in &warnings {
        eprintln!("qdscope: warning: {w}");
    }
    Ok(())
}
