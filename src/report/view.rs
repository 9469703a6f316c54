//! A picture of an atomic cluster: orthographic view from an oblique
//! direction, atoms as shaded discs drawn back to front (painter's
//! algorithm), coloured by element, with a legend.

use std::path::Path;

use plotters::prelude::*;

use crate::error::Result;
use crate::report::plot::render_png;
use crate::structure::{Atoms, Element};

fn colour(e: Element) -> RGBColor {
    match e {
        Element::Cs => RGBColor(60, 170, 75),
        Element::Pb => RGBColor(70, 70, 90),
        Element::Ca => RGBColor(60, 110, 220),
        Element::Br => RGBColor(200, 90, 40),
    }
}

fn radius_angstrom(e: Element) -> f64 {
    match e {
        Element::Cs => 1.7,
        Element::Pb => 1.2,
        Element::Ca => 1.1,
        Element::Br => 1.5,
    }
}

/// Write a 700 × 720 PNG of `atoms` seen along (1, 0.6, 0.45) (rotated
/// about z by 30° and tilted by 25°), with `title` and an element legend.
///
/// # Errors
/// I/O errors naming `path`.
pub fn cluster_png(path: &Path, atoms: &Atoms, title: &str) -> Result<()> {
    let (w, h) = (700u32, 720u32);
    let (sz, cz) = 30f64.to_radians().sin_cos();
    let (st, ct) = 25f64.to_radians().sin_cos();
    let n = atoms.len().max(1) as f64;
    let mut c = [0.0; 3];
    for p in &atoms.positions {
        for k in 0..3 {
            c[k] += p[k] / n;
        }
    }
    // Screen x, screen y (up), depth (towards the viewer).
    let mut pts: Vec<(f64, f64, f64, Element)> = atoms
        .positions
        .iter()
        .zip(&atoms.species)
        .map(|(p, &e)| {
            let (x, y, z) = (p[0] - c[0], p[1] - c[1], p[2] - c[2]);
            let (x1, y1) = (cz * x - sz * y, sz * x + cz * y);
            let (y2, z2) = (ct * y1 - st * z, st * y1 + ct * z);
            (x1, z2, y2, e)
        })
        .collect();
    pts.sort_by(|a, b| b.2.total_cmp(&a.2));
    let span = pts
        .iter()
        .map(|p| p.0.abs().max(p.1.abs()) + 2.0)
        .fold(1.0, f64::max);
    let scale = 0.45 * f64::from(w.min(h - 60)) / span;
    let (ox, oy) = (f64::from(w) / 2.0, f64::from(h) / 2.0 + 20.0);
    render_png(path, w, h, |root| {
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.draw(&Text::new(title.to_string(), (15, 12), ("sans-serif", 18)))
            .map_err(e)?;
        for (i, el) in Element::ALL.iter().enumerate() {
            if !atoms.species.contains(el) {
                continue;
            }
            let x = 20 + 80 * i as i32;
            root.draw(&Circle::new((x, 48), 8, colour(*el).filled()))
                .map_err(e)?;
            root.draw(&Text::new(el.symbol(), (x + 12, 40), ("sans-serif", 16)))
                .map_err(e)?;
        }
        for &(x, y, depth, el) in &pts {
            let px = (ox + x * scale) as i32;
            let py = (oy - y * scale) as i32;
            let r = (radius_angstrom(el) * scale * 0.55).max(2.0) as i32;
            // Nearer atoms slightly brighter.
            let f = (0.75 + 0.25 * (-depth / span).clamp(-1.0, 1.0)).clamp(0.5, 1.0);
            let RGBColor(cr, cg, cb) = colour(el);
            let shade = RGBColor(
                (f64::from(cr) * f) as u8,
                (f64::from(cg) * f) as u8,
                (f64::from(cb) * f) as u8,
            );
            root.draw(&Circle::new((px, py), r, shade.filled()))
                .map_err(e)?;
            root.draw(&Circle::new((px, py), r, BLACK.mix(0.6)))
                .map_err(e)?;
        }
        Ok(())
    })
}
