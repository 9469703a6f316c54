//! Synthetic ADF-STEM stacks of a CsPbBr3 quantum dot seen along \[001\].
//!
//! The generator is the shared ground truth of the tests, the demo and the
//! benchmarks. A cubic CsPbBr3 QD of `n_cells × n_cells` unit cells
//! (a = 5.87 Å) projects to two interpenetrating square column lattices —
//! Cs at (0, 0) and Pb/Br at (½, ½) — plus weak pure-Br columns at (½, 0) and
//! (0, ½) (docs/methods/columns.md). Each column is a round Gaussian of σ
//! `column_sigma_angstrom` (probe blur folded in); Pb/Br columns have peak
//! height `peak_counts`, Cs columns `ratio_cs_pbbr × peak_counts`, Br columns
//! `ratio_br_pbbr × peak_counts`. Under the particle sits a diffuse pedestal
//! (smooth-edged square), and everywhere a support background: a constant
//! plus a few random low-frequency cosines (amorphous carbon, thickness).
//! Frame `f` is the scene displaced by the drift `s_f = (dy, dx)` px,
//! `frame_f(x) = scene(x − s_f)`, rendered analytically (no resampling), then
//! Poisson counting noise and Gaussian read noise are added. Seeded: the same
//! parameters give the same stack on every machine.

use ndarray::{Array2, Array3};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, Normal, Poisson};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::image::{Calibration, Stack};

/// CsPbBr3 cubic lattice constant used by the study (Å), the one of [`crate::structure`].
pub use crate::structure::LATTICE_ANGSTROM;

/// Parameters of a synthetic stack. Defaults: the demo's case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SynthParams {
    /// Frame rows (y), px.
    pub rows: usize,
    /// Frame columns (x), px.
    pub cols: usize,
    /// Number of frames.
    pub frames: usize,
    /// Pixel size, Å/px.
    pub pixel_size_angstrom: f64,
    /// Lattice constant a, Å (study: 5.87).
    pub lattice_angstrom: f64,
    /// QD edge length in unit cells (study: 7–14 nm ⇒ 12–24 u.c.).
    pub n_cells: usize,
    /// In-plane rotation of the lattice, degrees.
    pub rotation_deg: f64,
    /// Column Gaussian σ, Å (probe blur included).
    pub column_sigma_angstrom: f64,
    /// Peak height of a Pb/Br column, counts (before noise).
    pub peak_counts: f64,
    /// Cs : Pb/Br column peak-height ratio (study: 0.33 core, 0.37 core/shell).
    pub ratio_cs_pbbr: f64,
    /// Br : Pb/Br column peak-height ratio.
    pub ratio_br_pbbr: f64,
    /// Diffuse pedestal under the particle, in units of `peak_counts`.
    pub pedestal: f64,
    /// Constant support level, in units of `peak_counts`.
    pub support_level: f64,
    /// Amplitude of the low-frequency support variation, in units of `peak_counts`.
    pub support_variation: f64,
    /// Largest drift component, px (uniform in ±max, sub-pixel; frame 0 at 0).
    pub max_drift_px: f64,
    /// Gaussian read noise σ, counts (0 = none).
    pub read_noise_counts: f64,
    /// Add Poisson counting noise.
    pub poisson: bool,
    /// RNG seed.
    pub seed: u64,
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            rows: 512,
            cols: 512,
            frames: 10,
            pixel_size_angstrom: 0.25,
            lattice_angstrom: LATTICE_ANGSTROM,
            n_cells: 16,
            rotation_deg: 4.0,
            column_sigma_angstrom: 0.45,
            peak_counts: 60.0,
            ratio_cs_pbbr: 0.35,
            ratio_br_pbbr: 0.12,
            pedestal: 0.25,
            support_level: 0.3,
            support_variation: 0.15,
            max_drift_px: 3.0,
            read_noise_counts: 2.0,
            poisson: true,
            seed: 2022,
        }
    }
}

/// Which projected column a ground-truth entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Cs column (corner site).
    Cs,
    /// Mixed Pb/Br column (body centre + face centre).
    PbBr,
    /// Pure Br column.
    Br,
}

/// One column of the undisplaced scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthColumn {
    /// Column type.
    pub kind: ColumnKind,
    /// Position x in px (frame-0 / scene coordinates).
    pub x_px: f64,
    /// Position y in px.
    pub y_px: f64,
    /// Peak height in counts (before noise).
    pub height_counts: f64,
}

/// Ground truth of a synthetic stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthTruth {
    /// The parameters that produced it.
    pub params: SynthParams,
    /// Drift of each frame, `(dy, dx)` px: `frame_f(x) = scene(x − s_f)`.
    pub shifts_px: Vec<(f64, f64)>,
    /// Every column of the scene.
    pub columns: Vec<TruthColumn>,
}

/// The noise-free scene with no drift (support + pedestal + columns).
pub fn render_scene(p: &SynthParams) -> Result<(Array2<f64>, Vec<TruthColumn>)> {
    validate(p)?;
    let mut rng = StdRng::seed_from_u64(p.seed);
    let support = SupportField::new(p, &mut rng);
    let columns = columns(p);
    let img = render(p, &support, &columns, 0.0, 0.0);
    Ok((img, columns))
}

/// Generate a stack and its ground truth.
///
/// # Errors
/// `Error::InvalidParameter` for a zero size, no frames, or non-positive
/// pixel size, lattice constant, σ or counts.
pub fn generate(p: &SynthParams) -> Result<(Stack, SynthTruth)> {
    validate(p)?;
    let mut rng = StdRng::seed_from_u64(p.seed);
    let support = SupportField::new(p, &mut rng);
    let cols = columns(p);
    let mut shifts = Vec::with_capacity(p.frames);
    let mut data = Array3::<f32>::zeros((p.frames, p.rows, p.cols));
    let read = Normal::new(0.0, p.read_noise_counts.max(0.0))
        .map_err(|e| Error::param("read_noise_counts", e.to_string()))?;
    for f in 0..p.frames {
        let s = if f == 0 {
            (0.0, 0.0)
        } else {
            (
                rng.gen_range(-p.max_drift_px..=p.max_drift_px),
                rng.gen_range(-p.max_drift_px..=p.max_drift_px),
            )
        };
        shifts.push(s);
        let clean = render(p, &support, &cols, s.0, s.1);
        let mut frame = data.index_axis_mut(ndarray::Axis(0), f);
        for (d, &v) in frame.iter_mut().zip(clean.iter()) {
            let mut c = v.max(0.0);
            if p.poisson && c > 0.0 {
                // Poisson::new only fails for non-positive or non-finite λ.
                c = Poisson::new(c).map(|d| d.sample(&mut rng)).unwrap_or(c);
            }
            if p.read_noise_counts > 0.0 {
                c += read.sample(&mut rng);
            }
            *d = c as f32;
        }
    }
    let cal = Calibration::from_pixel_size(p.pixel_size_angstrom)?;
    let stack = Stack::new(data, cal)?;
    Ok((
        stack,
        SynthTruth {
            params: p.clone(),
            shifts_px: shifts,
            columns: cols,
        },
    ))
}

/// Largest synthetic frame side, px.
pub const MAX_SIDE_PX: usize = 16_384;
/// Most pixels of a synthetic stack (frames × rows × cols).
pub const MAX_STACK_PX: usize = 1 << 30;

impl SynthParams {
    /// The checks [`generate`] makes before any work (sizes, counts,
    /// positive lengths), for callers that create files first.
    ///
    /// # Errors
    /// The first invalid parameter, named.
    pub fn validate(&self) -> Result<()> {
        validate(self)
    }
}

fn validate(p: &SynthParams) -> Result<()> {
    let pos = |name: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(Error::param(name, format!("must be positive, got {v}")))
        }
    };
    if p.rows < 8 || p.cols < 8 {
        return Err(Error::param(
            "synthetic frame size",
            format!("must be at least 8x8 px, got {}x{}", p.rows, p.cols),
        ));
    }
    if p.frames == 0 {
        return Err(Error::param("frames", "must be at least 1"));
    }
    crate::error::check_size(
        "synthetic frame size",
        p.rows.max(p.cols) as f64,
        MAX_SIDE_PX as f64,
        "px",
        "the largest detector frames",
    )?;
    crate::error::check_size(
        "frames",
        p.frames as f64,
        (MAX_STACK_PX / (p.rows * p.cols)).max(1) as f64,
        "frames",
        "a stack of at most 2^30 px (4 GiB as f32)",
    )?;
    pos("pixel_size_angstrom", p.pixel_size_angstrom)?;
    pos("lattice_angstrom", p.lattice_angstrom)?;
    pos("column_sigma_angstrom", p.column_sigma_angstrom)?;
    pos("peak_counts", p.peak_counts)?;
    if !(p.max_drift_px.is_finite() && p.max_drift_px >= 0.0) {
        return Err(Error::param("max_drift_px", "must be ≥ 0"));
    }
    Ok(())
}

/// Low-frequency support background: constant + random cosines with periods
/// between a quarter and twice the field of view.
struct SupportField {
    level: f64,
    waves: Vec<(f64, f64, f64, f64)>, // (ky, kx) rad/px, phase, amplitude
}

impl SupportField {
    fn new(p: &SynthParams, rng: &mut StdRng) -> Self {
        let n = p.rows.max(p.cols) as f64;
        let waves = (0..4)
            .map(|_| {
                let period = rng.gen_range(0.5 * n..2.0 * n);
                let th: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
                let k = std::f64::consts::TAU / period;
                (
                    k * th.sin(),
                    k * th.cos(),
                    rng.gen_range(0.0..std::f64::consts::TAU),
                    p.support_variation * p.peak_counts * rng.gen_range(0.5..1.0) / 2.0,
                )
            })
            .collect();
        SupportField {
            level: p.support_level * p.peak_counts,
            waves,
        }
    }
    fn at(&self, y: f64, x: f64) -> f64 {
        self.level
            + self
                .waves
                .iter()
                .map(|(ky, kx, ph, a)| a * (ky * y + kx * x + ph).cos())
                .sum::<f64>()
    }
}

/// Column positions of the undisplaced scene, centred in the frame.
fn columns(p: &SynthParams) -> Vec<TruthColumn> {
    let a = p.lattice_angstrom / p.pixel_size_angstrom; // px
    let (s, c) = p.rotation_deg.to_radians().sin_cos();
    let (cy, cx) = ((p.rows as f64 - 1.0) / 2.0, (p.cols as f64 - 1.0) / 2.0);
    let n = p.n_cells as f64;
    let mut out = Vec::new();
    // Lattice coordinates (u, v) in units of a, Cs corners at integers 0..=n.
    let mut push = |u: f64, v: f64, kind: ColumnKind, rel: f64| {
        let (du, dv) = ((u - n / 2.0) * a, (v - n / 2.0) * a);
        out.push(TruthColumn {
            kind,
            x_px: cx + c * du - s * dv,
            y_px: cy + s * du + c * dv,
            height_counts: rel * p.peak_counts,
        });
    };
    for i in 0..=p.n_cells {
        for j in 0..=p.n_cells {
            let (u, v) = (i as f64, j as f64);
            push(u, v, ColumnKind::Cs, p.ratio_cs_pbbr);
            if i < p.n_cells && j < p.n_cells {
                push(u + 0.5, v + 0.5, ColumnKind::PbBr, 1.0);
            }
            if i < p.n_cells {
                push(u + 0.5, v, ColumnKind::Br, p.ratio_br_pbbr);
            }
            if j < p.n_cells {
                push(u, v + 0.5, ColumnKind::Br, p.ratio_br_pbbr);
            }
        }
    }
    out
}

fn render(
    p: &SynthParams,
    support: &SupportField,
    cols: &[TruthColumn],
    dy: f64,
    dx: f64,
) -> Array2<f64> {
    let (ny, nx) = (p.rows, p.cols);
    let a = p.lattice_angstrom / p.pixel_size_angstrom;
    let sig = p.column_sigma_angstrom / p.pixel_size_angstrom;
    let (s, c) = p.rotation_deg.to_radians().sin_cos();
    let (cy, cx) = ((ny as f64 - 1.0) / 2.0, (nx as f64 - 1.0) / 2.0);
    let half = p.n_cells as f64 * a / 2.0 + 0.5 * a;
    let edge = 0.5 * a; // pedestal edge width, px
    let ped = p.pedestal * p.peak_counts;
    let mut img = Array2::<f64>::from_shape_fn((ny, nx), |(y, x)| {
        let (ys, xs) = (y as f64 - dy, x as f64 - dx);
        // Pedestal: smooth-edged square aligned with the lattice.
        let (ry, rx) = (ys - cy, xs - cx);
        let u = c * rx + s * ry;
        let v = -s * rx + c * ry;
        let logistic = |d: f64| 1.0 / (1.0 + ((d - half) / edge).exp());
        support.at(ys, xs) + ped * logistic(u.abs()) * logistic(v.abs())
    });
    let reach = (4.0 * sig).ceil() as i64;
    let inv = 1.0 / (2.0 * sig * sig);
    for col in cols {
        let (x0, y0) = (col.x_px + dx, col.y_px + dy);
        let (xi, yi) = (x0.round() as i64, y0.round() as i64);
        for yy in (yi - reach).max(0)..=(yi + reach).min(ny as i64 - 1) {
            for xx in (xi - reach).max(0)..=(xi + reach).min(nx as i64 - 1) {
                let r2 = (xx as f64 - x0).powi(2) + (yy as f64 - y0).powi(2);
                img[[yy as usize, xx as usize]] += col.height_counts * (-r2 * inv).exp();
            }
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_shaped() {
        let p = SynthParams {
            rows: 96,
            cols: 80,
            frames: 3,
            n_cells: 6,
            ..SynthParams::default()
        };
        let (a, ta) = generate(&p).unwrap();
        let (b, _) = generate(&p).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.data.dim(), (3, 96, 80));
        assert_eq!(ta.shifts_px[0], (0.0, 0.0));
        assert!(ta
            .shifts_px
            .iter()
            .all(|s| s.0.abs() <= 3.0 && s.1.abs() <= 3.0));
        // 7x7 Cs, 6x6 Pb/Br, 2·6·7 Br.
        let count = |k| ta.columns.iter().filter(|c| c.kind == k).count();
        assert_eq!(
            (
                count(ColumnKind::Cs),
                count(ColumnKind::PbBr),
                count(ColumnKind::Br)
            ),
            (49, 36, 84)
        );
        assert_eq!(a.calibration.pixel_size_angstrom(), Some(0.25));
    }

    /// Sizes a typo makes are refused before any allocation.
    #[test]
    fn absurd_sizes_are_refused_before_allocating() {
        for (p, want) in [
            (
                SynthParams {
                    rows: 100_000_000,
                    ..SynthParams::default()
                },
                "above the limit of 16384 px",
            ),
            (
                SynthParams {
                    frames: 100_000_000,
                    ..SynthParams::default()
                },
                "frames is above the limit of 4096 frames",
            ),
        ] {
            let e = generate(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn noise_free_column_heights_and_drift() {
        // Isolated columns on a flat zero background: the pixel at a column
        // centre shows its height (neighbours ≥ a/2 = 11.7 px ≫ σ = 1.8 px away).
        let p = SynthParams {
            rows: 128,
            cols: 128,
            frames: 2,
            n_cells: 4,
            rotation_deg: 0.0,
            pedestal: 0.0,
            support_level: 0.0,
            support_variation: 0.0,
            poisson: false,
            read_noise_counts: 0.0,
            ..SynthParams::default()
        };
        let (stack, truth) = generate(&p).unwrap();
        let (dy, dx) = truth.shifts_px[1];
        for col in &truth.columns {
            // Sample the analytic model at the nearest pixel to the shifted centre.
            let (x, y) = (col.x_px + dx, col.y_px + dy);
            let (xi, yi) = (x.round(), y.round());
            let sig = p.column_sigma_angstrom / p.pixel_size_angstrom;
            let expect = col.height_counts
                * (-((xi - x).powi(2) + (yi - y).powi(2)) / (2.0 * sig * sig)).exp();
            let got = stack.data[[1, yi as usize, xi as usize]] as f64;
            // Tails of neighbours at ≥ 11.7 px contribute < 1e-8 of a height.
            assert!(
                (got - expect).abs() < 1e-4 * p.peak_counts,
                "{got} vs {expect}"
            );
        }
    }

    #[test]
    fn bad_parameters() {
        let p = SynthParams {
            frames: 0,
            ..SynthParams::default()
        };
        assert!(generate(&p).is_err());
        let p = SynthParams {
            pixel_size_angstrom: -1.0,
            ..SynthParams::default()
        };
        assert!(generate(&p).is_err());
    }
}
