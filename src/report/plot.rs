//! PNG plots (plotters, bitmap backend, rendered in memory and written
//! atomically through [`crate::io::write_rgb`]).
//!
//! Text uses DejaVu Sans Mono, embedded in the binary (`assets/fonts`,
//! Bitstream Vera licence) so plots render identically on machines without
//! system fonts.

use std::path::Path;
use std::sync::Once;

use ndarray::ArrayView2;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};
use crate::io;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");

fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Registration only fails for an invalid font file, which the
        // embedded one is not; text would then be skipped, not crash.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::format(path, format!("cannot draw plot: {e}"))
}

/// Draw into a white RGB canvas of `w × h` and write it as a PNG.
///
/// # Errors
/// Drawing errors and I/O errors, naming `path`.
pub fn render_png<F>(path: &Path, w: u32, h: u32, draw: F) -> Result<()>
where
    F: FnOnce(
        &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>,
{
    ensure_font();
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        draw(&root).map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    io::write_rgb(path, &buf, w as usize, h as usize)
}

/// Marker kinds of an image overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Cs column (green circle).
    Cs,
    /// Pb/Br column (magenta circle).
    PbBr,
    /// Pure Br column (cyan dot).
    Br,
    /// Unassigned column (yellow circle).
    Other,
    /// Failed fit (red cross).
    Failed,
}

/// Grey image with coloured markers at (x, y) px and a scale bar in nm.
///
/// # Errors
/// I/O errors.
pub fn overlay_png(
    path: &Path,
    image: ArrayView2<f32>,
    markers: &[(f64, f64, Marker)],
    pixel_size_angstrom: Option<f64>,
    marker_radius_px: f64,
) -> Result<()> {
    let (h, w) = image.dim();
    let grey = io::to_gray_u8(image, 0.5, 99.5);
    let (wu, hu) = (w as u32, h as u32);
    render_png(path, wu, hu, |root| {
        for (i, g) in grey.iter().enumerate() {
            let c = RGBColor(*g, *g, *g);
            root.draw_pixel(((i % w) as i32, (i / w) as i32), &c)
                .map_err(|e| e.to_string())?;
        }
        let r = marker_radius_px.max(2.0).round() as i32;
        for &(x, y, m) in markers {
            let p = (x.round() as i32, y.round() as i32);
            let res = match m {
                Marker::Cs => root.draw(&Circle::new(p, r, GREEN.stroke_width(2))),
                Marker::PbBr => root.draw(&Circle::new(p, r, MAGENTA.stroke_width(2))),
                Marker::Br => root.draw(&Circle::new(p, (r / 2).max(1), CYAN.filled())),
                Marker::Other => root.draw(&Circle::new(p, r, YELLOW.stroke_width(1))),
                Marker::Failed => root
                    .draw(&PathElement::new(
                        vec![(p.0 - r, p.1 - r), (p.0 + r, p.1 + r)],
                        RED.stroke_width(2),
                    ))
                    .and_then(|_| {
                        root.draw(&PathElement::new(
                            vec![(p.0 - r, p.1 + r), (p.0 + r, p.1 - r)],
                            RED.stroke_width(2),
                        ))
                    }),
            };
            res.map_err(|e| e.to_string())?;
        }
        if let Some(ps) = pixel_size_angstrom {
            // A round length of about a fifth of the width.
            let target_nm = w as f64 * ps / 10.0 / 5.0;
            let nice = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0];
            let nm = nice
                .iter()
                .copied()
                .rev()
                .find(|&v| v <= target_nm)
                .unwrap_or(nice[0]);
            let len = (nm * 10.0 / ps).round() as i32;
            let (x0, y0) = ((w as i32) / 20, (h as i32) - (h as i32) / 20);
            let th = ((h as i32) / 100).max(3);
            root.draw(&Rectangle::new(
                [(x0, y0 - th), (x0 + len, y0)],
                WHITE.filled(),
            ))
            .map_err(|e| e.to_string())?;
            let fs = ((h as f64) / 25.0).clamp(10.0, 40.0);
            root.draw(&Text::new(
                format!("{nm} nm"),
                (x0, y0 - th - fs as i32 - 2),
                ("sans-serif", fs).into_font().color(&WHITE),
            ))
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// One series of an XY plot.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points (x, y).
    pub points: Vec<(f64, f64)>,
    /// Draw a line through the points (else markers only).
    pub line: bool,
    /// Optional symmetric y error bars (same length as `points`).
    pub y_err: Option<Vec<f64>>,
}

fn palette(i: usize) -> RGBColor {
    const C: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(23, 190, 207),
    ];
    C[i % C.len()]
}

fn range(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 * (1.0 + lo.abs()) {
        return (
            lo - 0.5 * (1.0 + lo.abs()) * 0.1,
            hi + 0.5 * (1.0 + hi.abs()) * 0.1,
        );
    }
    let pad = 0.06 * (hi - lo);
    (lo - pad, hi + pad)
}

/// The corner of the plot area (x range `xr`, y range `yr`) with the fewest
/// data points and error-bar ends in its 40 % × 30 % box, for the legend.
fn emptiest_corner(series: &[Series], xr: (f64, f64), yr: (f64, f64)) -> SeriesLabelPosition {
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| {
            let e = s.y_err.clone().unwrap_or_else(|| vec![0.0; s.points.len()]);
            s.points
                .iter()
                .zip(e)
                .flat_map(|(&(x, y), e)| [(x, y - e), (x, y), (x, y + e)])
                .collect::<Vec<_>>()
        })
        .map(|(x, y)| ((x - xr.0) / (xr.1 - xr.0), (y - yr.0) / (yr.1 - yr.0)))
        .collect();
    let count = |right: bool, top: bool| {
        pts.iter()
            .filter(|&&(u, v)| {
                (if right { u > 0.6 } else { u < 0.4 }) && (if top { v > 0.7 } else { v < 0.3 })
            })
            .count()
    };
    [
        (count(true, true), SeriesLabelPosition::UpperRight),
        (count(false, true), SeriesLabelPosition::UpperLeft),
        (count(true, false), SeriesLabelPosition::LowerRight),
        (count(false, false), SeriesLabelPosition::LowerLeft),
    ]
    .into_iter()
    .min_by_key(|c| c.0)
    .map_or(SeriesLabelPosition::UpperRight, |c| c.1)
}

/// Line/point plot of several series with axis labels (units in them).
///
/// # Errors
/// I/O errors.
pub fn xy_png(
    path: &Path,
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[Series],
) -> Result<()> {
    let xr = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let yr = range(series.iter().flat_map(|s| {
        let e = s.y_err.clone().unwrap_or_else(|| vec![0.0; s.points.len()]);
        s.points
            .iter()
            .zip(e)
            .flat_map(|(p, e)| [p.1 - e, p.1 + e])
            .collect::<Vec<_>>()
    }));
    render_png(path, 900, 600, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(xlabel)
            .y_desc(ylabel)
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in series.iter().enumerate() {
            let c = palette(i);
            if s.line {
                chart
                    .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
                    .map_err(|e| e.to_string())?
                    .label(s.label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                    });
            } else {
                chart
                    .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, c.filled())))
                    .map_err(|e| e.to_string())?
                    .label(s.label.clone())
                    .legend(move |(x, y)| Circle::new((x + 10, y), 4, c.filled()));
            }
            if let Some(err) = &s.y_err {
                chart
                    .draw_series(s.points.iter().zip(err).filter(|(_, e)| e.is_finite()).map(
                        |(&(x, y), &e)| {
                            ErrorBar::new_vertical(x, y - e, y, y + e, c.stroke_width(2), 10)
                        },
                    ))
                    .map_err(|e| e.to_string())?;
            }
        }
        chart
            .configure_series_labels()
            .position(emptiest_corner(series, xr, yr))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Histogram (bars) of several series sharing bin centres.
///
/// # Errors
/// I/O errors.
pub fn histogram_png(
    path: &Path,
    title: &str,
    xlabel: &str,
    centres: &[f64],
    series: &[(String, Vec<f64>)],
) -> Result<()> {
    let w = if centres.len() > 1 {
        centres[1] - centres[0]
    } else {
        1.0
    };
    let xr = (
        centres.first().copied().unwrap_or(0.0) - w,
        centres.last().copied().unwrap_or(1.0) + w,
    );
    let ymax = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    render_png(path, 900, 600, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(xr.0..xr.1, 0.0..ymax)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(xlabel)
            .y_desc("count")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        let k = series.len().max(1) as f64;
        for (i, (label, counts)) in series.iter().enumerate() {
            let c = palette(i);
            let bw = w / k;
            chart
                .draw_series(centres.iter().zip(counts).map(|(&x, &n)| {
                    let x0 = x - w / 2.0 + i as f64 * bw;
                    Rectangle::new([(x0, 0.0), (x0 + bw * 0.95, n)], c.mix(0.8).filled())
                }))
                .map_err(|e| e.to_string())?
                .label(label.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], c.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Points per group with mean ± s.d. bars (a strip plot).
///
/// # Errors
/// I/O errors.
pub fn groups_png(
    path: &Path,
    title: &str,
    ylabel: &str,
    groups: &[(String, Vec<f64>, f64, f64)],
) -> Result<()> {
    let yr = range(groups.iter().flat_map(|g| {
        g.1.iter()
            .copied()
            .chain([g.2 - g.3.max(0.0), g.2 + g.3.max(0.0)])
    }));
    let n = groups.len();
    render_png(path, 700, 600, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), yr.0..yr.1)
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
        chart
            .configure_mesh()
            .x_labels(n.max(1))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                    names[i as usize].clone()
                } else {
                    String::new()
                }
            })
            .y_desc(ylabel)
            .disable_x_mesh()
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (_, vals, m, s)) in groups.iter().enumerate() {
            let c = palette(i);
            let k = vals.len().max(1) as f64;
            chart
                .draw_series(vals.iter().enumerate().map(|(j, &v)| {
                    let dx = if k > 1.0 {
                        (j as f64 / (k - 1.0) - 0.5) * 0.3
                    } else {
                        0.0
                    };
                    Circle::new((i as f64 + dx - 0.15, v), 5, c.filled())
                }))
                .map_err(|e| e.to_string())?;
            let sd = if s.is_finite() { *s } else { 0.0 };
            chart
                .draw_series(std::iter::once(ErrorBar::new_vertical(
                    i as f64 + 0.2,
                    m - sd,
                    *m,
                    m + sd,
                    BLACK.stroke_width(2),
                    16,
                )))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// A 5-stop viridis-like gradient, t in [0, 1].
fn gradient(t: f64) -> RGBColor {
    const S: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f64;
    let l = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    RGBColor(
        l(S[i].0, S[i + 1].0),
        l(S[i].1, S[i + 1].1),
        l(S[i].2, S[i + 1].2),
    )
}

/// Values at image positions (x, y px; y down) as coloured dots, with the
/// colour scale's ends printed in the caption.
///
/// # Errors
/// I/O errors.
pub fn value_map_png(
    path: &Path,
    title: &str,
    shape_yx: (usize, usize),
    pts: &[(f64, f64, f64)],
) -> Result<()> {
    let (lo, hi) = pts
        .iter()
        .map(|p| p.2)
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| {
            (a.0.min(v), a.1.max(v))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let (ny, nx) = (shape_yx.0 as f64, shape_yx.1 as f64);
    let caption = format!("{title}: {lo:.3} (purple) … {hi:.3} (yellow)");
    render_png(path, 800, 820, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 16))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..nx, ny..0.0)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("x (px)")
            .y_desc("y (px)")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                pts.iter()
                    .map(|&(x, y, v)| Circle::new((x, y), 4, gradient((v - lo) / span).filled())),
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legend_goes_to_the_emptiest_corner() {
        // A rising line fills the lower-left and upper-right corners; its
        // error bars reach into the upper left, so the lower right is free.
        let s = Series {
            label: "x".into(),
            points: (0..=10).map(|i| (f64::from(i), f64::from(i))).collect(),
            line: true,
            y_err: Some(vec![6.0, 6.0, 6.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        };
        let c = emptiest_corner(&[s], (0.0, 10.0), (0.0, 10.0));
        assert!(matches!(c, SeriesLabelPosition::LowerRight));
    }

    #[test]
    fn plots_render_to_png() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("xy.png");
        xy_png(
            &p,
            "t",
            "x (Å)",
            "y",
            &[Series {
                label: "a".into(),
                points: vec![(0.0, 1.0), (1.0, 2.0)],
                line: true,
                y_err: Some(vec![0.1, 0.2]),
            }],
        )
        .unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let img = ndarray::Array2::<f32>::from_shape_fn((64, 80), |(y, x)| (x + y) as f32);
        let q = dir.path().join("ov.png");
        overlay_png(
            &q,
            img.view(),
            &[(10.0, 10.0, Marker::Cs), (30.0, 20.0, Marker::Failed)],
            Some(0.25),
            3.0,
        )
        .unwrap();
        assert!(std::fs::metadata(&q).unwrap().len() > 100);
        groups_png(
            &dir.path().join("g.png"),
            "g",
            "ratio",
            &[
                ("core".into(), vec![0.32, 0.34], 0.33, 0.014),
                ("cs".into(), vec![0.37], 0.37, f64::NAN),
            ],
        )
        .unwrap();
        histogram_png(
            &dir.path().join("h.png"),
            "h",
            "d (Å)",
            &[1.0, 2.0],
            &[("a".into(), vec![1.0, 3.0])],
        )
        .unwrap();
    }
}
