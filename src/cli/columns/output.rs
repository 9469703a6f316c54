//! The outputs of `qdscope columns`: the CSV tables, `summary.json` and
//! the plots.

use std::path::Path;

use serde::Serialize;

use super::PixelSource;
use qdscope::error::Result;
use qdscope::image::Image;
use qdscope::report::{self, fmt_f64, fmt_opt, plot};
use qdscope::stem::analyze::{summarise, Summary};
use qdscope::stem::columns::{self, ColumnsParams, ColumnsResult, Spacing};
use qdscope::stem::lattice;
use qdscope::stem::sublattice::Sublattice;

/// Header of `columns.csv` (a contract: scripts read it).
pub const COLUMNS_HEADER: [&str; 15] = [
    "id",
    "sublattice",
    "x_px",
    "y_px",
    "x_angstrom",
    "y_angstrom",
    "height",
    "volume",
    "sigma_x_angstrom",
    "sigma_y_angstrom",
    "rotation_rad",
    "baseline",
    "residual",
    "converged",
    "flag",
];

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

#[derive(Serialize)]
struct Full<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    qdscope_version: &'a str,
    parameters: &'a ColumnsParams,
    lengths_px: &'a columns::Lengths,
    lattice_basis_px: serde_json::Value,
    spacing: Vec<serde_json::Value>,
    peak_search: serde_json::Value,
    mask_threshold: Option<f64>,
    mask_pixels: usize,
    measured_lattice: &'a qdscope::stem::detect::LatticeReport,
}

fn spacing_json(s: &Spacing) -> serde_json::Value {
    let f = |v: Option<f64>| {
        v.and_then(finite)
            .map_or(serde_json::Value::Null, serde_json::Value::from)
    };
    let e = |k: usize| f(s.mean_strain.map(|e| e[k]));
    serde_json::json!({
        "sublattice": s.sublattice,
        "a1_mean_angstrom": f(s.a1_angstrom[0]), "a1_sd_angstrom": f(s.a1_angstrom[1]),
        "a2_mean_angstrom": f(s.a2_angstrom[0]), "a2_sd_angstrom": f(s.a2_angstrom[1]),
        "spacing_mean_angstrom": f(s.spacing_angstrom[0]), "spacing_sd_angstrom": f(s.spacing_angstrom[1]),
        "strain_xx": e(0), "strain_yy": e(1),
        "strain_xy": e(2), "rotation_rad": e(3),
        "n_pairs": s.n_pairs,
    })
}

/// `columns.csv`: one row per column (the CSV contract).
fn write_columns_csv(out: &Path, r: &ColumnsResult) -> Result<()> {
    let ps = r.pixel_size_angstrom;
    let rows: Vec<Vec<String>> = r
        .columns
        .iter()
        .map(|c| {
            let g = &c.fit.params;
            vec![
                c.id.to_string(),
                c.sublattice.name().to_string(),
                fmt_f64(g.x0),
                fmt_f64(g.y0),
                fmt_f64(g.x0 * ps),
                fmt_f64(g.y0 * ps),
                fmt_f64(g.height),
                fmt_f64(g.volume() * ps * ps),
                fmt_f64(g.sigma_x * ps),
                fmt_f64(g.sigma_y * ps),
                fmt_f64(g.rotation),
                fmt_f64(g.baseline),
                fmt_opt(c.fit.residual_rms),
                c.fit.converged().to_string(),
                c.flags(),
            ]
        })
        .collect();
    report::write_csv(&out.join("columns.csv"), &COLUMNS_HEADER, &rows)
}

/// `fits.csv`: fit status, evaluations and standard errors per column.
fn write_fits_csv(out: &Path, r: &ColumnsResult) -> Result<()> {
    let ps = r.pixel_size_angstrom;
    let fits: Vec<Vec<String>> = r
        .columns
        .iter()
        .map(|c| {
            let e = &c.fit.stderr;
            let st = serde_json::to_value(c.fit.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            vec![
                c.id.to_string(),
                st,
                c.fit.evaluations.to_string(),
                c.fit.n_pixels.to_string(),
                c.in_ratio.to_string(),
                c.index.map_or(String::new(), |i| i.0.to_string()),
                c.index.map_or(String::new(), |i| i.1.to_string()),
                fmt_opt(e[0]),
                fmt_opt(e[1]),
                fmt_opt(e[2]),
                fmt_opt(e[3]),
                fmt_opt(e[4].map(|v| v * ps)),
                fmt_opt(e[5].map(|v| v * ps)),
                fmt_opt(e[6]),
            ]
        })
        .collect();
    report::write_csv(
        &out.join("fits.csv"),
        &[
            "id",
            "status",
            "evaluations",
            "n_pixels",
            "in_ratio",
            "h",
            "k",
            "stderr_baseline",
            "stderr_height",
            "stderr_x_px",
            "stderr_y_px",
            "stderr_sigma_x_angstrom",
            "stderr_sigma_y_angstrom",
            "stderr_rotation_rad",
        ],
        &fits,
    )
}

/// `lattice.csv`: the local basis vectors (Å) and strain of each column.
fn write_lattice_csv(out: &Path, r: &ColumnsResult) -> Result<()> {
    let ps = r.pixel_size_angstrom;
    let lat: Vec<Vec<String>> = r
        .local
        .iter()
        .map(|(id, l)| {
            let c = &r.columns[*id];
            let v = |o: Option<[f64; 2]>, k: usize| o.map_or(String::new(), |v| fmt_f64(v[k] * ps));
            let len =
                |o: Option<[f64; 2]>| o.map_or(String::new(), |v| fmt_f64(v[0].hypot(v[1]) * ps));
            let s = |k: usize| l.strain.map_or(String::new(), |s| fmt_f64(s[k]));
            vec![
                id.to_string(),
                c.sublattice.name().to_string(),
                fmt_f64(c.fit.params.x0),
                fmt_f64(c.fit.params.y0),
                v(l.a1, 0),
                v(l.a1, 1),
                v(l.a2, 0),
                v(l.a2, 1),
                len(l.a1),
                len(l.a2),
                s(0),
                s(1),
                s(2),
                s(3),
            ]
        })
        .collect();
    report::write_csv(
        &out.join("lattice.csv"),
        &[
            "id",
            "sublattice",
            "x_px",
            "y_px",
            "a1_x_angstrom",
            "a1_y_angstrom",
            "a2_x_angstrom",
            "a2_y_angstrom",
            "spacing_a1_angstrom",
            "spacing_a2_angstrom",
            "strain_xx",
            "strain_yy",
            "strain_xy",
            "rotation_rad",
        ],
        &lat,
    )
}

/// Write every output of the column analysis into `dir`.
///
/// # Errors
/// I/O errors.
pub fn write_outputs(
    dir: &Path,
    input: &Path,
    image: &Image,
    params: &ColumnsParams,
    r: &ColumnsResult,
    source: PixelSource,
) -> Result<Summary> {
    let set = qdscope::report::OutputSet::new(dir)?;
    let out = set.dir().to_path_buf();
    write_columns_csv(&out, r)?;
    write_fits_csv(&out, r)?;
    write_lattice_csv(&out, r)?;
    let summary = summarise(input, r, source);
    write_summary_json(&out, &summary, params, r)?;
    write_overlay_png(&out, image, r)?;
    let ps = r.pixel_size_angstrom;
    let d1: Vec<f64> = r
        .local
        .iter()
        .filter_map(|(_, l)| l.a1)
        .map(|v| v[0].hypot(v[1]) * ps)
        .collect();
    let d2: Vec<f64> = r
        .local
        .iter()
        .filter_map(|(_, l)| l.a2)
        .map(|v| v[0].hypot(v[1]) * ps)
        .collect();
    if !(d1.is_empty() && d2.is_empty()) {
        write_spacing_png(&out, &summary, &d1, &d2)?;
        write_spacing_map_png(&out, image, r)?;
    }
    set.commit()?;
    Ok(summary)
}

/// `summary.json`: the summary, the parameters and the measured lattice.
fn write_summary_json(
    out: &Path,
    summary: &Summary,
    params: &ColumnsParams,
    r: &ColumnsResult,
) -> Result<()> {
    let a = &r.assignment;
    let full = Full {
        summary,
        qdscope_version: env!("CARGO_PKG_VERSION"),
        parameters: params,
        lengths_px: &r.lengths,
        lattice_basis_px: serde_json::json!({"origin": a.origin, "e1": a.e1, "e2": a.e2,
            "indexing_residual_rms_px": a.residual_rms_px.and_then(finite)}),
        spacing: r.spacing.iter().map(spacing_json).collect(),
        peak_search: serde_json::json!({"threshold": r.peak_search.threshold,
            "candidates": r.peak_search.n_candidates, "outside_mask": r.peak_search.n_outside_mask,
            "centroid_rejected": r.peak_search.n_centroid_rejected}),
        mask_threshold: r.mask_threshold,
        measured_lattice: &r.lattice,
        mask_pixels: r.mask_pixels,
    };
    report::write_json(&out.join("summary.json"), &full)
}

/// `overlay.png`: the image with every column marked by its sublattice
/// (failed fits marked as such).
fn write_overlay_png(out: &Path, image: &Image, r: &ColumnsResult) -> Result<()> {
    let markers: Vec<(f64, f64, plot::Marker)> = r
        .columns
        .iter()
        .map(|c| {
            let m = if !c.fit.converged() {
                plot::Marker::Failed
            } else {
                match c.sublattice {
                    Sublattice::Cs => plot::Marker::Cs,
                    Sublattice::PbBr => plot::Marker::PbBr,
                    Sublattice::Br => plot::Marker::Br,
                    Sublattice::Unassigned => plot::Marker::Other,
                }
            };
            (c.fit.params.x0, c.fit.params.y0, m)
        })
        .collect();
    plot::overlay_png(
        &out.join("overlay.png"),
        image.data.view(),
        &markers,
        Some(r.pixel_size_angstrom),
        0.6 * r.lengths.centroid_radius_px.max(2.0),
    )
}

/// `spacing.png`: histograms of the peak-pair distances `d1`, `d2` (Å)
/// along the two axes (not both empty).
fn write_spacing_png(out: &Path, summary: &Summary, d1: &[f64], d2: &[f64]) -> Result<()> {
    let all: Vec<f64> = d1.iter().chain(d2).copied().collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if hi - lo < 0.02 {
        (lo - 0.05, hi + 0.05)
    } else {
        (lo, hi)
    };
    let (centres, c1) = lattice::histogram(d1, lo, hi, 30);
    let (_, c2) = lattice::histogram(d2, lo, hi, 30);
    let f = |c: Vec<usize>| c.into_iter().map(|v| v as f64).collect::<Vec<f64>>();
    plot::histogram_png(
        &out.join("spacing.png"),
        &format!(
            "peak-pair spacing: {:.3} ± {:.3} Å",
            summary.lattice_spacing_angstrom.unwrap_or(f64::NAN),
            summary.lattice_spacing_sd_angstrom.unwrap_or(f64::NAN)
        ),
        "pair distance (Å)",
        &centres,
        &[("a1 axis".into(), f(c1)), ("a2 axis".into(), f(c2))],
    )
}

/// `spacing_map.png`: the local spacing (mean of a1 and a2 pairs, Å) at
/// each column.
fn write_spacing_map_png(out: &Path, image: &Image, r: &ColumnsResult) -> Result<()> {
    let ps = r.pixel_size_angstrom;
    let pts: Vec<(f64, f64, f64)> = r
        .local
        .iter()
        .filter_map(|(id, l)| {
            let v: Vec<f64> = [l.a1, l.a2]
                .iter()
                .flatten()
                .map(|v| v[0].hypot(v[1]) * ps)
                .collect();
            (!v.is_empty()).then(|| {
                let c = &r.columns[*id];
                (
                    c.fit.params.x0,
                    c.fit.params.y0,
                    v.iter().sum::<f64>() / v.len() as f64,
                )
            })
        })
        .collect();
    plot::value_map_png(
        &out.join("spacing_map.png"),
        "local spacing (Å), mean of a1 and a2 pairs",
        image.data.dim(),
        &pts,
    )
}
