//! Rendering of a [`Case`]: its columns (with truth) and texture blobs as
//! pixel-integrated elliptical Gaussians ([`Splat`]), the smooth support
//! field, and the drifted, noisy frames (see the module documentation of
//! [`super`]).

use ndarray::{Array2, Array3, Axis};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, Poisson, StandardNormal};
use rayon::prelude::*;
use statrs::function::erf::erf;

use super::draw::uni;
use super::splat::{Splat, CUTOFF_SIGMA};
use super::{Case, CaseTruth, ColumnKind, TruthColumn};
use crate::error::{Error, Result};
use crate::image::{Calibration, Stack};

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

/// Reject a case that cannot be rendered.
fn validate(case: &Case) -> Result<()> {
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
    Ok(())
}

/// The particle's cube in frame-0 pixels.
struct Geometry {
    /// Lattice constant, px.
    a_px: f64,
    /// Half the particle edge, cells.
    half_n: f64,
    /// Particle centre (x, y), px.
    centre: (f64, f64),
    /// Sine and cosine of the rotation.
    sin: f64,
    cos: f64,
}

impl Geometry {
    fn of(case: &Case) -> Self {
        let (sin, cos) = case.rotation_deg.to_radians().sin_cos();
        Geometry {
            a_px: case.lattice_angstrom / case.pixel_size_angstrom,
            half_n: case.n_cells as f64 / 2.0,
            centre: (case.centre_x_px, case.centre_y_px),
            sin,
            cos,
        }
    }

    /// Position (x, y) px of the lattice point (i, j), in cells from the
    /// particle's corner.
    fn at(&self, i: f64, j: f64) -> (f64, f64) {
        let (u, v) = ((i - self.half_n) * self.a_px, (j - self.half_n) * self.a_px);
        (
            self.centre.0 + u * self.cos - v * self.sin,
            self.centre.1 + u * self.sin + v * self.cos,
        )
    }
}

/// Every column of a case (Cs, then Pb/Br, then pure Br) with its own
/// volume scatter (drawn from `scatter_seed` in that order) and its
/// interior flag.
fn place_columns(case: &Case, geo: &Geometry) -> Vec<TruthColumn> {
    let n = case.n_cells;
    let p = case.pixel_size_angstrom;
    let e = case.ellipticity.max(1.0);
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
                geo.at(i as f64, j as f64),
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
                geo.at(i as f64 + 0.5, j as f64 + 0.5),
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
                geo.at(i as f64 + 0.5, j as f64),
                case.br_fraction * v_bright,
                sd,
                &mut rng,
            );
            neighbours_ok.push(false);
            push(
                ColumnKind::Br,
                geo.at(j as f64, i as f64 + 0.5),
                case.br_fraction * v_bright,
                sd,
                &mut rng,
            );
            neighbours_ok.push(false);
        }
    }
    mark_interior(&mut columns, &neighbours_ok, case, geo.a_px);
    columns
}

/// Interior: a Cs or Pb/Br column with its 4 other-class neighbours
/// (`neighbours_ok`) whose model stays inside the field in every frame.
fn mark_interior(columns: &mut [TruthColumn], neighbours_ok: &[bool], case: &Case, a_px: f64) {
    let nf = case.field_px as f64;
    for (c, ok) in columns.iter_mut().zip(neighbours_ok) {
        if !*ok || c.kind == ColumnKind::Br {
            continue;
        }
        let m = (4.0 * c.sigma_x_px.max(c.sigma_y_px)).max(a_px);
        c.interior = case.shifts_px.iter().all(|&(dx, dy)| {
            let (x, y) = (c.x_px + dx, c.y_px + dy);
            x >= m && y >= m && x <= nf - 1.0 - m && y <= nf - 1.0 - m
        });
    }
}

/// Mean of `f` over the interior columns of `kind` (`None` when there are
/// none) and their number.
fn interior_mean(
    columns: &[TruthColumn],
    kind: ColumnKind,
    f: fn(&TruthColumn) -> f64,
) -> (Option<f64>, usize) {
    let v: Vec<f64> = columns
        .iter()
        .filter(|c| c.interior && c.kind == kind)
        .map(f)
        .collect();
    let mean = (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    (mean, v.len())
}

/// Texture blobs over the field plus the largest drift (drawn from
/// `texture_seed`), and the number drawn.
fn texture_blobs(case: &Case) -> (Vec<Splat>, usize) {
    let p = case.pixel_size_angstrom;
    let nf = case.field_px as f64;
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
    let mut splats = Vec::new();
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
    (splats, n_blobs)
}

impl Scene {
    /// The scene of `splats` on the case's smooth support, in counts; the
    /// constant is raised so that the smooth part never drops below
    /// `support_level_rel`.
    fn new(case: &Case, geo: &Geometry, splats: Vec<Splat>) -> Self {
        let p = case.pixel_size_angstrom;
        let nf = case.field_px as f64;
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
        Scene {
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
                geo.centre.0,
                geo.centre.1,
                geo.cos,
                geo.sin,
                geo.half_n * geo.a_px,
                (case.plateau_edge_angstrom / p).max(1e-3),
                case.plateau_rel * dose,
            ),
        }
    }
}

/// Build the columns (with truth) and the scene of a case.
fn build(case: &Case) -> Result<(Scene, CaseTruth)> {
    validate(case)?;
    let geo = Geometry::of(case);
    let columns = place_columns(case, &geo);
    let (cs_v, n_cs) = interior_mean(&columns, ColumnKind::Cs, |c| c.volume);
    let (pb_v, n_pb) = interior_mean(&columns, ColumnKind::PbBr, |c| c.volume);
    let (cs_h, _) = interior_mean(&columns, ColumnKind::Cs, |c| c.height);
    let (pb_h, _) = interior_mean(&columns, ColumnKind::PbBr, |c| c.height);
    let ell = case.ellipse_angle_deg.to_radians();
    let mut splats: Vec<Splat> = columns
        .iter()
        .filter(|c| c.volume > 0.0)
        .map(|c| Splat::new(c.x_px, c.y_px, c.volume, c.sigma_x_px, c.sigma_y_px, ell))
        .collect();
    let (blobs, n_blobs) = texture_blobs(case);
    splats.extend(blobs);
    let scene = Scene::new(case, &geo, splats);
    let truth = CaseTruth {
        columns,
        shifts_px: case.shifts_px.clone(),
        ratio_volume: cs_v.zip(pb_v).map(|(c, p)| c / p),
        ratio_height: cs_h.zip(pb_h).map(|(c, p)| c / p),
        n_interior_cs: n_cs,
        n_interior_pbbr: n_pb,
        pixel_size_angstrom: case.pixel_size_angstrom,
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
        // Compared as text: a NaN anywhere would compare unequal.
        assert_eq!(format!("{t1:?}"), format!("{t2:?}"));
    }

    #[test]
    fn isolated_column_renders_its_volume() {
        // A one-cell particle, no support, no texture: the pixel sum of the
        // noise-free frame is the sum of the column volumes.
        let mut c = draw_case(11, &small()).columns_only();
        c.n_cells = 1;
        c.br_fraction = 0.0;
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
        let (tv, th) = (t.ratio_volume.unwrap(), t.ratio_height.unwrap());
        assert!((tv - rv).abs() < 1e-12);
        assert!((th - rh).abs() < 1e-12);
        // Close to the nominal ratio (scatter ≤ 5 % per column).
        assert!((tv / c.truth_ratio - 1.0).abs() < 0.05, "{tv}");
        // Heights differ by the dim widening.
        let w2 = (1.0 + c.dim_widening).powi(2);
        assert!((th * w2 - tv).abs() < 1e-9);
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
