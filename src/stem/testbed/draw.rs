//! Drawing a [`Case`] from a seed out of [`CaseRanges`] (see the module
//! documentation of [`super`]).

use rand::{rngs::StdRng, Rng, SeedableRng};

use super::{Case, CaseRanges, Cut, FourierMode, Side, FIELD_SIZES_PX};

pub(super) fn uni(rng: &mut StdRng, (lo, hi): (f64, f64)) -> f64 {
    if hi > lo {
        lo + (hi - lo) * rng.gen::<f64>()
    } else {
        lo
    }
}

fn uni_usize(rng: &mut StdRng, (lo, hi): (usize, usize)) -> usize {
    if hi > lo {
        rng.gen_range(lo..=hi)
    } else {
        lo
    }
}

/// Bounding-box width of the Cs corners of an n-cell particle, px.
pub(super) fn particle_width_px(n: usize, a_px: f64, rotation_deg: f64) -> f64 {
    let t = rotation_deg.to_radians();
    n as f64 * a_px * (t.cos().abs() + t.sin().abs())
}

/// Draw one case from `seed` (deterministic: the same seed and ranges give
/// the same case on every machine).
#[must_use]
pub fn draw_case(seed: u64, r: &CaseRanges) -> Case {
    let mut rng = StdRng::seed_from_u64(seed);
    let pixel = uni(&mut rng, r.pixel_size_angstrom);
    let a = uni(&mut rng, r.lattice_angstrom);
    let rotation = uni(&mut rng, r.rotation_deg);
    let n_drawn = uni_usize(&mut rng, r.n_cells).max(1);
    let a_px = a / pixel;
    // Field: smallest allowed size holding the particle plus 2a each side.
    let mut sizes: Vec<usize> = FIELD_SIZES_PX
        .iter()
        .copied()
        .filter(|s| *s <= r.max_field_px)
        .collect();
    if sizes.is_empty() {
        sizes.push(r.max_field_px.max(16));
    }
    let largest = sizes.iter().copied().max().unwrap_or(256);
    let margin0 = 2.0 * a_px;
    let mut n = n_drawn;
    let mut pick = None;
    while n >= 1 {
        let need = particle_width_px(n, a_px, rotation) + 2.0 * margin0;
        if let Some(s) = sizes.iter().copied().find(|s| *s as f64 >= need) {
            pick = Some(s);
            break;
        }
        if n == 1 {
            break;
        }
        n -= 1;
    }
    let (field, margin) = match pick {
        Some(s) => (s, margin0),
        None => {
            let w = particle_width_px(1, a_px, rotation);
            (largest, ((largest as f64 - w) / 2.0).max(0.0))
        }
    };
    let nf = field as f64;
    let width = particle_width_px(n, a_px, rotation);
    let mid = (nf - 1.0) / 2.0;
    let slack = ((nf - width) / 2.0 - margin).max(0.0);
    let is_cut = rng.gen::<f64>() < r.cut_probability;
    let cut_fraction = uni(&mut rng, r.cut_fraction);
    let side = match rng.gen_range(0..4u8) {
        0 => Side::Left,
        1 => Side::Right,
        2 => Side::Top,
        _ => Side::Bottom,
    };
    let jx = uni(&mut rng, (-slack, slack));
    let jy = uni(&mut rng, (-slack, slack));
    let (mut cx, mut cy) = (mid + jx, mid + jy);
    let cut = if is_cut {
        // Bounding box [c − W/2, c + W/2]; the field spans [−½, N − ½].
        let out = cut_fraction * width;
        match side {
            Side::Left => cx = -0.5 - out + width / 2.0,
            Side::Right => cx = nf - 0.5 + out - width / 2.0,
            Side::Top => cy = -0.5 - out + width / 2.0,
            Side::Bottom => cy = nf - 0.5 + out - width / 2.0,
        }
        Some(Cut {
            side,
            fraction: cut_fraction,
        })
    } else {
        None
    };
    let drawn_ratio = uni(&mut rng, r.truth_ratio);
    let truth_ratio = r.ratio_override.unwrap_or(drawn_ratio);
    let br_fraction = uni(&mut rng, r.br_fraction);
    let sigma = uni(&mut rng, r.sigma_angstrom);
    let dim_widening = uni(&mut rng, r.dim_widening);
    let ellipticity = uni(&mut rng, r.ellipticity);
    let ellipse_angle = uni(&mut rng, (0.0, 180.0));
    let scatter_sd = uni(&mut rng, r.scatter_sd);
    let support_level = uni(&mut rng, r.support_level);
    let n_modes = uni_usize(&mut rng, r.smooth_modes);
    let smooth_total = uni(&mut rng, r.smooth_amplitude);
    let weights: Vec<f64> = (0..n_modes).map(|_| rng.gen::<f64>() + 0.1).collect();
    let wsum: f64 = weights.iter().sum();
    let smooth_modes: Vec<FourierMode> = weights
        .iter()
        .map(|w| FourierMode {
            wavelength_angstrom: uni(&mut rng, r.smooth_wavelength_angstrom),
            direction_deg: uni(&mut rng, (0.0, 360.0)),
            phase_rad: uni(&mut rng, (0.0, std::f64::consts::TAU)),
            amplitude_rel: smooth_total * w / wsum,
        })
        .collect();
    let texture_density = uni(&mut rng, r.texture_density_per_angstrom2);
    let lf_amp =
        uni(&mut rng, r.low_frequency_amplitude) * if rng.gen::<bool>() { 1.0 } else { -1.0 };
    let lf_centre = (
        uni(&mut rng, (0.0, nf - 1.0)),
        uni(&mut rng, (0.0, nf - 1.0)),
    );
    let lf_sigma = uni(&mut rng, r.low_frequency_width) * nf;
    let ramp_rel = uni(&mut rng, r.ramp);
    let ramp_dir = uni(&mut rng, (0.0, 360.0));
    let plateau = uni(&mut rng, r.plateau);
    let plateau_edge = uni(&mut rng, r.plateau_edge_angstrom);
    let dose = uni(&mut rng, r.dose_counts);
    let read_noise = uni(&mut rng, r.read_noise_counts);
    let n_frames = uni_usize(&mut rng, r.frames).max(1);
    let d = r.max_drift_px.abs();
    let shifts: Vec<(f64, f64)> = (0..n_frames)
        .map(|f| {
            if f == 0 {
                (0.0, 0.0)
            } else {
                (uni(&mut rng, (-d, d)), uni(&mut rng, (-d, d)))
            }
        })
        .collect();
    Case {
        seed,
        pixel_size_angstrom: pixel,
        lattice_angstrom: a,
        rotation_deg: rotation,
        n_cells_drawn: n_drawn,
        n_cells: n,
        field_px: field,
        margin_px: margin,
        cut,
        centre_x_px: cx,
        centre_y_px: cy,
        truth_ratio,
        br_fraction,
        sigma_angstrom: sigma,
        dim_widening,
        ellipticity,
        ellipse_angle_deg: ellipse_angle,
        scatter_sd,
        support_level_rel: support_level,
        smooth_modes,
        texture_density_per_angstrom2: texture_density,
        texture_sigma_angstrom: r.texture_sigma_angstrom,
        texture_height_max: r.texture_height_max,
        low_frequency_amplitude_rel: lf_amp,
        low_frequency_centre_px: lf_centre,
        low_frequency_sigma_px: lf_sigma,
        ramp_rel,
        ramp_direction_deg: ramp_dir,
        plateau_rel: plateau,
        plateau_edge_angstrom: plateau_edge,
        dose_counts: dose,
        read_noise_counts: read_noise,
        n_frames,
        shifts_px: shifts,
        scatter_seed: rng.gen(),
        texture_seed: rng.gen(),
        noise_seed: rng.gen(),
    }
}
