//! Rendering of a [`Case`]: pixel-integrated elliptical Gaussians (columns
//! and texture blobs), the smooth support field, and the drifted, noisy
//! frames (see the module documentation of [`super`]).

use ndarray::{Array2, Array3, Axis};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, Poisson, StandardNormal};
use rayon::prelude::*;
use statrs::function::erf::erf;

use super::draw::uni;
use super::{Case, CaseTruth, ColumnKind, TruthColumn};
use crate::error::{Error, Result};
use crate::image::{Calibration, Stack};

/// Supersampling factor per pixel axis (4×4 mid-point samples per pixel).
pub const SUPERSAMPLE: usize = 4;

/// Gaussians are rendered out to this many σ (the mass outside < 1e-5).
const CUTOFF_SIGMA: f64 = 5.5;

/// An elliptical Gaussian ready to render: exp(−½(A dx² + 2B dx dy + C dy²)).
#[derive(Debug, Clone, Copy)]
struct Splat {
    x: f64,
    y: f64,
    peak: f64,
    qa: f64,
    qb: f64,
    qc: f64,
    half_x: f64,
    half_y: f64,
}

impl Splat {
    fn new(x: f64, y: f64, volume: f64, s_major: f64, s_minor: f64, angle_rad: f64) -> Self {
        let (s, c) = angle_rad.sin_cos();
        let (i1, i2) = (1.0 / (s_major * s_major), 1.0 / (s_minor * s_minor));
        let sxx = c * c * s_major * s_major + s * s * s_minor * s_minor;
        let syy = s * s * s_major * s_major + c * c * s_minor * s_minor;
        Splat {
            x,
            y,
            peak: volume / (std::f64::consts::TAU * s_major * s_minor),
            qa: c * c * i1 + s * s * i2,
            qb: c * s * (i1 - i2),
            qc: s * s * i1 + c * c * i2,
            half_x: CUTOFF_SIGMA * sxx.sqrt(),
            half_y: CUTOFF_SIGMA * syy.sqrt(),
        }
    }

    /// Add the pixel-integrated Gaussian (mean of SUPERSAMPLE² mid-point
    /// samples per pixel) displaced by (dx, dy) to `img`.
    fn add_to(&self, img: &mut Array2<f64>, dx: f64, dy: f64) {
        let (ny, nx) = img.dim();
        let (cx, cy) = (self.x + dx, self.y + dy);
        let x_lo = ((cx - self.half_x).floor().max(0.0)) as usize;
        let y_lo = ((cy - self.half_y).floor().max(0.0)) as usize;
        let x_hi = (cx + self.half_x).ceil();
        let y_hi = (cy + self.half_y).ceil();
        if x_hi < 0.0 || y_hi < 0.0 {
            return;
        }
        let x_hi = (x_hi as usize).min(nx.saturating_sub(1));
        let y_hi = (y_hi as usize).min(ny.saturating_sub(1));
        if x_lo > x_hi || y_lo > y_hi || x_lo >= nx || y_lo >= ny {
            return;
        }
        let ss = SUPERSAMPLE;
        let h = 1.0 / ss as f64;
        let w = self.peak / (ss * ss) as f64;
        let n_sub = (x_hi - x_lo + 1) * ss;
        let q_step = (-self.qa * h * h).exp();
        let mut row = vec![0.0f64; x_hi - x_lo + 1];
        for py in y_lo..=y_hi {
            row.iter_mut().for_each(|v| *v = 0.0);
            for ky in 0..ss {
                let v = py as f64 - 0.5 + (ky as f64 + 0.5) * h - cy;
                let u0 = x_lo as f64 - 0.5 + 0.5 * h - cx;
                // g(u) = exp(−½(A u² + 2B u v + C v²)); g(u + h) = g(u)·r(u),
                // r(u) = exp(−½(A(2uh + h²) + 2B h v)), r(u + h) = r(u)·exp(−A h²).
                let mut g =
                    (-0.5 * (self.qa * u0 * u0 + 2.0 * self.qb * u0 * v + self.qc * v * v)).exp();
                let mut rr =
                    (-0.5 * (self.qa * (2.0 * u0 * h + h * h) + 2.0 * self.qb * h * v)).exp();
                for m in 0..n_sub {
                    row[m / ss] += g;
                    g *= rr;
                    rr *= q_step;
                }
            }
            let mut out = img.row_mut(py);
            for (i, v) in row.iter().enumerate() {
                out[x_lo + i] += w * v;
            }
        }
    }
}

/// Everything needed to render a frame of a case.
struct Scene {
    splats: Vec<Splat>,
    field: usize,
    base_counts: f64,
    modes: Vec<(f64, f64, f64, f64)>,
    lf: (f64, f64, f64, f64),
    ramp: (f64, f64, f64),
    plateau: (f64, f64, f64, f64, f64, f64, f64),
}

impl Scene {
    /// Smooth support (everything but the texture) at scene position (x, y).
    fn smooth_at(&self, x: f64, y: f64) -> f64 {
        let mut v = self.base_counts;
        for &(kx, ky, ph, amp) in &self.modes {
            v += amp * (kx * x + ky * y + ph).cos();
        }
        let (lx, ly, ls, la) = self.lf;
        v += la * (-((x - lx).powi(2) + (y - ly).powi(2)) / (2.0 * ls * ls)).exp();
        let (gx, gy, mid) = self.ramp;
        v += gx * (x - mid) + gy * (y - mid);
        let (px, py, c, s, half, edge, height) = self.plateau;
        let (dx, dy) = (x - px, y - py);
        let u = dx * c + dy * s;
        let w = -dx * s + dy * c;
        let soft = |t: f64| -> f64 {
            let d = half - t.abs();
            if d > 6.0 * edge {
                1.0
            } else if d < -6.0 * edge {
                0.0
            } else {
                0.5 * (erf((half - t) / (std::f64::consts::SQRT_2 * edge))
                    + erf((half + t) / (std::f64::consts::SQRT_2 * edge)))
            }
        };
        let su = soft(u);
        if su > 0.0 {
            v += height * su * soft(w);
        }
        v
    }

    /// Noise-free frame at drift (dx, dy): `frame(x) = scene(x − s)`.
    fn render(&self, dx: f64, dy: f64) -> Array2<f64> {
        let n = self.field;
        let mut img = Array2::<f64>::zeros((n, n));
        for (y, mut row) in img.axis_iter_mut(Axis(0)).enumerate() {
            for (x, v) in row.iter_mut().enumerate() {
                *v = self.smooth_at(x as f64 - dx, y as f64 - dy);
            }
        }
        for s in &self.splats {
            s.add_to(&mut img, dx, dy);
        }
        img
    }
}

/// Build the columns (with truth) and the scene of a case.
fn build(case: &Case) -> Result<(Scene, CaseTruth)> {
    let p = case.pixel_size_angstrom;
    let checks = [
        ("pixel_size_angstrom", p),
        ("lattice_angstrom", case.lattice_angstrom),
        ("sigma_angstrom", case.sigma_angstrom),
        ("ellipticity", case.ellipticity),
        ("dose_counts", case.dose_counts),
    ];
    for (name, v) in checks {
        if !(v.is_finite() && v > 0.0) {
            return Err(Error::param(name, format!("must be > 0, got {v}")));
        }
    }
    if case.field_px < 8 || case.n_cells == 0 || case.n_frames == 0 {
        return Err(Error::param(
            "case",
            format!(
                "field {} px, {} cells, {} frames: need ≥ 8 px, ≥ 1 cell, ≥ 1 frame",
                case.field_px, case.n_cells, case.n_frames
            ),
        ));
    }
    if case.shifts_px.len() != case.n_frames {
        return Err(Error::shape(
            "case shifts_px",
            format!("{} shifts", case.n_frames),
            format!("{}", case.shifts_px.len()),
        ));
    }
    let a_px = case.lattice_angstrom / p;
    let n = case.n_cells;
    let nf = case.field_px as f64;
    let t = case.rotation_deg.to_radians();
    let (st, ct) = t.sin_cos();
    let (cx, cy) = (case.centre_x_px, case.centre_y_px);
    let half_n = n as f64 / 2.0;
    let at = |i: f64, j: f64| -> (f64, f64) {
        let (u, v) = ((i - half_n) * a_px, (j - half_n) * a_px);
        (cx + u * ct - v * st, cy + u * st + v * ct)
    };
    let e = case.ellipticity.max(1.0);
    let ell = case.ellipse_angle_deg.to_radians();
    let sb = case.sigma_angstrom / p;
    let sd = sb * (1.0 + case.dim_widening);
    let v_bright = case.dose_counts * std::f64::consts::TAU * sb * sb;
    let mut rng = StdRng::seed_from_u64(case.scatter_seed);
    let mut columns = Vec::new();
    let mut push =
        |kind: ColumnKind, (x, y): (f64, f64), nominal: f64, sigma: f64, rng: &mut StdRng| {
            let z: f64 = StandardNormal.sample(rng);
            let volume = nominal * (1.0 + case.scatter_sd * z).max(0.05);
            let (s1, s2) = (sigma * e.sqrt(), sigma / e.sqrt());
            columns.push(TruthColumn {
                kind,
                x_px: x,
                y_px: y,
                volume,
                height: volume / (std::f64::consts::TAU * s1 * s2),
                sigma_x_px: s1,
                sigma_y_px: s2,
                interior: false,
            });
        };
    // Interior test for the lattice part: 4 other-class neighbours present.
    let mut neighbours_ok = Vec::new();
    for i in 0..=n {
        for j in 0..=n {
            push(
                ColumnKind::Cs,
                at(i as f64, j as f64),
                case.truth_ratio * v_bright,
                sd,
                &mut rng,
            );
            neighbours_ok.push(i >= 1 && j >= 1 && i < n && j < n);
        }
    }
    for i in 0..n {
        for j in 0..n {
            push(
                ColumnKind::PbBr,
                at(i as f64 + 0.5, j as f64 + 0.5),
                v_bright,
                sb,
                &mut rng,
            );
            neighbours_ok.push(true);
        }
    }
    for i in 0..n {
        for j in 0..=n {
            push(
                ColumnKind::Br,
                at(i as f64 + 0.5, j as f64),
                case.br_fraction * v_bright,
                sd,
                &mut rng,
            );
            neighbours_ok.push(false);
            push(
                ColumnKind::Br,
                at(j as f64, i as f64 + 0.5),
                case.br_fraction * v_bright,
                sd,
                &mut rng,
            );
            neighbours_ok.push(false);
        }
    }
    // Inside the field in every frame.
    for (c, ok) in columns.iter_mut().zip(&neighbours_ok) {
        if !*ok || c.kind == ColumnKind::Br {
            continue;
        }
        let m = (4.0 * c.sigma_x_px.max(c.sigma_y_px)).max(a_px);
        c.interior = case.shifts_px.iter().all(|&(dx, dy)| {
            let (x, y) = (c.x_px + dx, c.y_px + dy);
            x >= m && y >= m && x <= nf - 1.0 - m && y <= nf - 1.0 - m
        });
    }
    let mean_of = |kind: ColumnKind, f: &dyn Fn(&TruthColumn) -> f64| -> (f64, usize) {
        let v: Vec<f64> = columns
            .iter()
            .filter(|c| c.interior && c.kind == kind)
            .map(f)
            .collect();
        if v.is_empty() {
            (f64::NAN, 0)
        } else {
            (v.iter().sum::<f64>() / v.len() as f64, v.len())
        }
    };
    let (cs_v, n_cs) = mean_of(ColumnKind::Cs, &|c| c.volume);
    let (pb_v, n_pb) = mean_of(ColumnKind::PbBr, &|c| c.volume);
    let (cs_h, _) = mean_of(ColumnKind::Cs, &|c| c.height);
    let (pb_h, _) = mean_of(ColumnKind::PbBr, &|c| c.height);
    let mut splats: Vec<Splat> = columns
        .iter()
        .filter(|c| c.volume > 0.0)
        .map(|c| Splat::new(c.x_px, c.y_px, c.volume, c.sigma_x_px, c.sigma_y_px, ell))
        .collect();
    // Texture blobs over the field plus the largest drift.
    let dim_peak = case.truth_ratio * case.dose_counts / (1.0 + case.dim_widening).powi(2);
    let pad = case
        .shifts_px
        .iter()
        .fold(0.0f64, |m, &(dx, dy)| m.max(dx.abs()).max(dy.abs()))
        + CUTOFF_SIGMA * case.texture_sigma_angstrom.1 / p;
    let span = nf + 2.0 * pad;
    let n_blobs =
        (case.texture_density_per_angstrom2.max(0.0) * (span * p).powi(2)).round() as usize;
    let mut trng = StdRng::seed_from_u64(case.texture_seed);
    for _ in 0..n_blobs {
        let x = -0.5 - pad + span * trng.gen::<f64>();
        let y = -0.5 - pad + span * trng.gen::<f64>();
        let s = uni(&mut trng, case.texture_sigma_angstrom) / p;
        let h = case.texture_height_max * dim_peak * trng.gen::<f64>();
        if h > 0.0 && s > 0.0 {
            splats.push(Splat::new(
                x,
                y,
                h * std::f64::consts::TAU * s * s,
                s,
                s,
                0.0,
            ));
        }
    }
    // Smooth support, in counts; the constant is raised so that the smooth
    // part never drops below `support_level_rel`.
    let dose = case.dose_counts;
    let modes: Vec<(f64, f64, f64, f64)> = case
        .smooth_modes
        .iter()
        .map(|m| {
            let k = std::f64::consts::TAU * p / m.wavelength_angstrom.max(1e-6);
            let d = m.direction_deg.to_radians();
            (
                k * d.cos(),
                k * d.sin(),
                m.phase_rad,
                m.amplitude_rel * dose,
            )
        })
        .collect();
    let smooth_max: f64 = case
        .smooth_modes
        .iter()
        .map(|m| m.amplitude_rel.abs())
        .sum();
    let base_rel = case.support_level_rel
        + smooth_max
        + case.low_frequency_amplitude_rel.min(0.0).abs()
        + case.ramp_rel.abs() * std::f64::consts::SQRT_2 / 2.0;
    let rd = case.ramp_direction_deg.to_radians();
    let g = case.ramp_rel * dose / nf;
    let scene = Scene {
        splats,
        field: case.field_px,
        base_counts: base_rel * dose,
        modes,
        lf: (
            case.low_frequency_centre_px.0,
            case.low_frequency_centre_px.1,
            case.low_frequency_sigma_px.max(1.0),
            case.low_frequency_amplitude_rel * dose,
        ),
        ramp: (g * rd.cos(), g * rd.sin(), (nf - 1.0) / 2.0),
        plateau: (
            cx,
            cy,
            ct,
            st,
            half_n * a_px,
            (case.plateau_edge_angstrom / p).max(1e-3),
            case.plateau_rel * dose,
        ),
    };
    let truth = CaseTruth {
        columns,
        shifts_px: case.shifts_px.clone(),
        ratio_volume: cs_v / pb_v,
        ratio_height: cs_h / pb_h,
        n_interior_cs: n_cs,
        n_interior_pbbr: n_pb,
        pixel_size_angstrom: p,
        lattice_angstrom: case.lattice_angstrom,
        field_px: case.field_px,
        n_texture_blobs: n_blobs,
    };
    Ok((scene, truth))
}

/// Render a case: `n_frames` drifted frames (Poisson counting noise on the
/// counts clipped at ≥ 0, plus Gaussian read noise), calibrated with the
/// case's pixel size, and the ground truth. Frames are rendered in parallel
/// (rayon) with one noise stream per frame, so the output does not depend
/// on the thread count.
///
/// # Errors
/// A non-positive pixel size, lattice, σ, ellipticity or dose, an empty
/// field, or shifts that do not match the number of frames.
pub fn render_case(case: &Case) -> Result<(Stack, CaseTruth)> {
    let (scene, truth) = build(case)?;
    let cal = Calibration::from_pixel_size(case.pixel_size_angstrom)?;
    let read = case.read_noise_counts.max(0.0);
    let frames: Vec<Result<Array2<f32>>> = case
        .shifts_px
        .par_iter()
        .enumerate()
        .map(|(f, &(dx, dy))| {
            let clean = scene.render(dx, dy);
            let mut rng = StdRng::seed_from_u64(
                case.noise_seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(f as u64 + 1)),
            );
            let mut out = Array2::<f32>::zeros(clean.dim());
            for (o, &lam) in out.iter_mut().zip(clean.iter()) {
                let lam = lam.max(0.0);
                let counts = if lam > 0.0 {
                    Poisson::new(lam)
                        .map_err(|e| Error::Numerical {
                            what: format!("testbed frame {f}"),
                            reason: format!("Poisson({lam}): {e}"),
                        })?
                        .sample(&mut rng)
                } else {
                    0.0
                };
                let z: f64 = StandardNormal.sample(&mut rng);
                *o = (counts + read * z) as f32;
            }
            Ok(out)
        })
        .collect();
    let n = case.field_px;
    let mut data = Array3::<f32>::zeros((case.n_frames, n, n));
    for (f, fr) in frames.into_iter().enumerate() {
        data.index_axis_mut(Axis(0), f).assign(&fr?);
    }
    Ok((Stack::new(data, cal)?, truth))
}

/// The noise-free frame 0 of a case (columns, texture and support), counts.
///
/// # Errors
/// As [`render_case`].
pub fn render_clean(case: &Case) -> Result<Array2<f64>> {
    let (scene, _) = build(case)?;
    Ok(scene.render(0.0, 0.0))
}

#[cfg(test)]
mod tests {
    use super::super::draw_case;
    use super::super::tests::small;
    use super::*;

    #[test]
    fn deterministic_by_seed() {
        let r = small();
        assert_eq!(draw_case(7, &r), draw_case(7, &r));
        assert_ne!(draw_case(7, &r), draw_case(8, &r));
        let mut c = draw_case(7, &r);
        c.n_frames = 2;
        c.shifts_px.truncate(2);
        let (s1, t1) = render_case(&c).unwrap();
        let (s2, t2) = render_case(&c).unwrap();
        assert_eq!(s1, s2);
        // NaN ratios (no interior columns) compare unequal: compare text.
        assert_eq!(format!("{t1:?}"), format!("{t2:?}"));
    }

    #[test]
    fn pixel_sum_equals_volume() {
        for (s_major, s_minor, ang) in [(1.2, 1.2, 0.0), (2.3, 2.1, 0.7), (4.0, 3.7, 2.0)] {
            let sp = Splat::new(40.3, 37.8, 1234.5, s_major, s_minor, ang);
            let mut img = Array2::<f64>::zeros((80, 80));
            sp.add_to(&mut img, 0.21, -0.4);
            let sum: f64 = img.sum();
            assert!((sum / 1234.5 - 1.0).abs() < 1e-3, "{sum}");
            // Centroid at the displaced centre.
            let (mut mx, mut my) = (0.0, 0.0);
            for ((y, x), v) in img.indexed_iter() {
                mx += x as f64 * v;
                my += y as f64 * v;
            }
            assert!((mx / sum - 40.51).abs() < 1e-3 && (my / sum - 37.4).abs() < 1e-3);
        }
    }

    #[test]
    fn isolated_column_renders_its_volume() {
        // A one-cell particle, no support, no texture: the pixel sum of the
        // noise-free frame is the sum of the column volumes.
        let mut c = draw_case(11, &small());
        c.n_cells = 1;
        c.br_fraction = 0.0;
        c.support_level_rel = 0.0;
        c.smooth_modes.clear();
        c.texture_density_per_angstrom2 = 0.0;
        c.low_frequency_amplitude_rel = 0.0;
        c.ramp_rel = 0.0;
        c.plateau_rel = 0.0;
        c.cut = None;
        c.centre_x_px = 127.3;
        c.centre_y_px = 128.6;
        let (_, truth) = build(&c).unwrap();
        let img = render_clean(&c).unwrap();
        let vol: f64 = truth.columns.iter().map(|t| t.volume).sum();
        assert!(
            (img.sum() / vol - 1.0).abs() < 1e-3,
            "{} vs {vol}",
            img.sum()
        );
    }

    #[test]
    fn truth_ratio_is_mean_of_volumes() {
        let c = draw_case(5, &small());
        let (_, t) = build(&c).unwrap();
        let m = |k: ColumnKind, f: fn(&TruthColumn) -> f64| {
            let v: Vec<f64> = t
                .columns
                .iter()
                .filter(|x| x.interior && x.kind == k)
                .map(f)
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!(t.n_interior_cs > 0 && t.n_interior_pbbr > 0);
        let rv = m(ColumnKind::Cs, |x| x.volume) / m(ColumnKind::PbBr, |x| x.volume);
        let rh = m(ColumnKind::Cs, |x| x.height) / m(ColumnKind::PbBr, |x| x.height);
        assert!((t.ratio_volume - rv).abs() < 1e-12);
        assert!((t.ratio_height - rh).abs() < 1e-12);
        // Close to the nominal ratio (scatter ≤ 5 % per column).
        assert!(
            (t.ratio_volume / c.truth_ratio - 1.0).abs() < 0.05,
            "{}",
            t.ratio_volume
        );
        // Heights differ by the dim widening.
        let w2 = (1.0 + c.dim_widening).powi(2);
        assert!((t.ratio_height * w2 - t.ratio_volume).abs() < 1e-9);
        let n = c.n_cells;
        assert_eq!(t.columns.len(), (n + 1) * (n + 1) + n * n + 2 * n * (n + 1));
    }

    #[test]
    fn rendered_stack_shape_and_drift() {
        let mut c = draw_case(21, &small());
        c.n_frames = 2;
        c.shifts_px = vec![(0.0, 0.0), (2.0, -1.0)];
        let (stack, truth) = render_case(&c).unwrap();
        assert_eq!(stack.n_frames(), 2);
        assert_eq!(stack.frame_shape(), (c.field_px, c.field_px));
        assert_eq!(
            stack.calibration.pixel_size_angstrom(),
            Some(c.pixel_size_angstrom)
        );
        assert!(stack.data.iter().all(|v| v.is_finite()));
        // Frame 1 is frame 0 moved by (+2, −1) px (exact integer shift of the
        // noise-free scene).
        let (scene, _) = build(&c).unwrap();
        let f0 = scene.render(0.0, 0.0);
        let f1 = scene.render(2.0, -1.0);
        let n = c.field_px;
        for y in 10..n - 10 {
            for x in 10..n - 10 {
                assert!(
                    (f1[[y, x]] - f0[[y + 1, x - 2]]).abs()
                        < 1e-6 * (1.0 + f0[[y + 1, x - 2]].abs())
                );
            }
        }
        assert_eq!(truth.shifts_px, c.shifts_px);
    }
}
