//! 8-bit grey PNG previews with percentile contrast (the `png` crate).

use std::path::Path;

use ndarray::ArrayView2;

use super::atomic_write;
use crate::error::{Error, Result};

/// Percentile of finite values (linear interpolation), `q` in [0, 100].
fn percentile(sorted: &[f32], q: f64) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = (q.clamp(0.0, 100.0) / 100.0) * (sorted.len() - 1) as f64;
    let i = pos.floor() as usize;
    let j = (i + 1).min(sorted.len() - 1);
    let t = (pos - i as f64) as f32;
    sorted[i] * (1.0 - t) + sorted[j] * t
}

fn to_u8(a: ArrayView2<f32>, lo_q: f64, hi_q: f64) -> Vec<u8> {
    let mut finite: Vec<f32> = a.iter().copied().filter(|v| v.is_finite()).collect();
    finite.sort_by(f32::total_cmp);
    let lo = percentile(&finite, lo_q);
    let hi = percentile(&finite, hi_q);
    let span = hi - lo;
    a.iter()
        .map(|v| {
            if !v.is_finite() {
                0
            } else if span <= 0.0 {
                128
            } else {
                (((v - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8
            }
        })
        .collect()
}

/// Write several equally sized images side by side (each with its own
/// percentile contrast, 4 px white gaps) as one 8-bit grey PNG.
///
/// # Errors
/// No panels, panels of different shapes, bad percentiles, I/O errors.
pub fn write_png_panels(
    path: &Path,
    panels: &[ArrayView2<f32>],
    low_percentile: f64,
    high_percentile: f64,
) -> Result<()> {
    let first = panels
        .first()
        .ok_or_else(|| Error::param("preview panels", "need at least one panel"))?;
    let (h, w) = first.dim();
    if panels.iter().any(|p| p.dim() != (h, w)) {
        return Err(Error::param(
            "preview panels",
            "all panels must have one shape",
        ));
    }
    const GAP: usize = 4;
    let total_w = panels.len() * w + (panels.len() - 1) * GAP;
    let mut bytes = vec![255u8; h * total_w];
    for (i, p) in panels.iter().enumerate() {
        let px = to_u8(*p, low_percentile, high_percentile);
        for y in 0..h {
            let x0 = i * (w + GAP);
            bytes[y * total_w + x0..y * total_w + x0 + w].copy_from_slice(&px[y * w..(y + 1) * w]);
        }
    }
    write_gray(path, &bytes, total_w, h)
}

/// Percentile-stretched 8-bit grey values of `a` (row-major), for overlays.
#[must_use]
pub fn to_gray_u8(a: ArrayView2<f32>, low_percentile: f64, high_percentile: f64) -> Vec<u8> {
    to_u8(a, low_percentile, high_percentile)
}

/// Write an 8-bit RGB buffer (`w·h·3` bytes, row-major) as a PNG (atomic).
///
/// # Errors
/// A buffer of the wrong length; I/O errors.
pub fn write_rgb(path: &Path, px: &[u8], w: usize, h: usize) -> Result<()> {
    if px.len() != w * h * 3 {
        return Err(Error::shape(
            format!("{}: RGB buffer", path.display()),
            format!("{} bytes", w * h * 3),
            format!("{}", px.len()),
        ));
    }
    write_png_raw(path, px, w, h, ::png::ColorType::Rgb)
}

fn write_gray(path: &Path, px: &[u8], w: usize, h: usize) -> Result<()> {
    write_png_raw(path, px, w, h, ::png::ColorType::Grayscale)
}

fn write_png_raw(
    path: &Path,
    px: &[u8],
    w: usize,
    h: usize,
    color: ::png::ColorType,
) -> Result<()> {
    let (wu, hu) = (
        u32::try_from(w).map_err(|_| Error::param("preview", "image too wide"))?,
        u32::try_from(h).map_err(|_| Error::param("preview", "image too tall"))?,
    );
    atomic_write(path, |out| {
        let mut enc = ::png::Encoder::new(out, wu, hu);
        enc.set_color(color);
        enc.set_depth(::png::BitDepth::Eight);
        let mut wr = enc
            .write_header()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        wr.write_image_data(px)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        wr.finish()
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
}

/// Write `a` as an 8-bit grey PNG, mapping the `low_percentile` value to 0
/// and the `high_percentile` value to 255 (clipped). A constant image, or
/// one without finite values, maps to mid-grey; NaN pixels map to 0.
///
/// # Errors
/// `Error::InvalidParameter` for percentiles outside 0 ≤ low < high ≤ 100;
/// `Error::Io` if the file cannot be written.
pub fn write_png_preview(
    path: &Path,
    a: ArrayView2<f32>,
    low_percentile: f64,
    high_percentile: f64,
) -> Result<()> {
    let ok = (0.0..100.0).contains(&low_percentile)
        && low_percentile < high_percentile
        && high_percentile <= 100.0;
    if !ok {
        return Err(Error::param(
            "preview percentiles",
            format!("need 0 ≤ low < high ≤ 100, got {low_percentile}, {high_percentile}"),
        ));
    }
    let (h, w) = a.dim();
    write_gray(path, &to_u8(a, low_percentile, high_percentile), w, h)
}
