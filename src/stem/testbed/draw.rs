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

/// The field chosen for a particle.
struct Field {
    /// Square field size, px.
    size_px: usize,
    /// Margin kept around the particle, px.
    margin_px: f64,
    /// Cells of the particle that fit (≤ the cells drawn).
    n_cells: usize,
}

/// Field: smallest allowed size holding the particle plus 2a each side;
/// fewer cells (then less margin) when even the largest field is too small.
fn choose_field(n_drawn: usize, a_px: f64, rotation: f64, max_field_px: usize) -> Field {
    let mut sizes: Vec<usize> = FIELD_SIZES_PX
        .iter()
        .copied()
        .filter(|s| *s <= max_field_px)
        .collect();
    if sizes.is_empty() {
        sizes.push(max_field_px.max(16));
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
    let (size_px, margin_px) = match pick {
        Some(s) => (s, margin0),
        None => {
            let w = particle_width_px(1, a_px, rotation);
            (largest, ((largest as f64 - w) / 2.0).max(0.0))
        }
    };
    Field {
        size_px,
        margin_px,
        n_cells: n,
    }
}

/// Where the particle sits in frame 0.
struct Placement {
    /// Centre (x, y), px.
    centre: (f64, f64),
    /// The field-edge cut, if any.
    cut: Option<Cut>,
}

/// Draw the cut and the centre's jitter of a particle of bounding-box
/// `width` px in `field`.
fn place_particle(rng: &mut StdRng, r: &CaseRanges, field: &Field, width: f64) -> Placement {
    let nf = field.size_px as f64;
    let mid = (nf - 1.0) / 2.0;
    let slack = ((nf - width) / 2.0 - field.margin_px).max(0.0);
    let is_cut = rng.gen::<f64>() < r.cut_probability;
    let cut_fraction = uni(rng, r.cut_fraction);
    let side = match rng.gen_range(0..4u8) {
        0 => Side::Left,
        1 => Side::Right,
        2 => Side::Top,
        _ => Side::Bottom,
    };
    let jx = uni(rng, (-slack, slack));
    let jy = uni(rng, (-slack, slack));
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
    Placement {
        centre: (cx, cy),
        cut,
    }
}

/// The columns' values of a case (see the fields of [`Case`]).
struct ColumnDraw {
    truth_ratio: f64,
    br_fraction: f64,
    sigma_angstrom: f64,
    dim_widening: f64,
    ellipticity: f64,
    ellipse_angle_deg: f64,
    scatter_sd: f64,
}

fn draw_columns(rng: &mut StdRng, r: &CaseRanges) -> ColumnDraw {
    let drawn_ratio = uni(rng, r.truth_ratio);
    let truth_ratio = r.ratio_override.unwrap_or(drawn_ratio);
    let br_fraction = uni(rng, r.br_fraction);
    let sigma = uni(rng, r.sigma_angstrom);
    let dim_widening = uni(rng, r.dim_widening);
    let ellipticity = uni(rng, r.ellipticity);
    let ellipse_angle = uni(rng, (0.0, 180.0));
    let scatter_sd = uni(rng, r.scatter_sd);
    ColumnDraw {
        truth_ratio,
        br_fraction,
        sigma_angstrom: sigma,
        dim_widening,
        ellipticity,
        ellipse_angle_deg: ellipse_angle,
        scatter_sd,
    }
}

/// The support's values of a case (see the fields of [`Case`]).
struct SupportDraw {
    level_rel: f64,
    smooth_modes: Vec<FourierMode>,
    texture_density_per_angstrom2: f64,
    low_frequency_amplitude_rel: f64,
    low_frequency_centre_px: (f64, f64),
    low_frequency_sigma_px: f64,
    ramp_rel: f64,
    ramp_direction_deg: f64,
    plateau_rel: f64,
    plateau_edge_angstrom: f64,
}

/// Draw the support of a field of `nf` px.
fn draw_support(rng: &mut StdRng, r: &CaseRanges, nf: f64) -> SupportDraw {
    let support_level = uni(rng, r.support_level);
    let n_modes = uni_usize(rng, r.smooth_modes);
    let smooth_total = uni(rng, r.smooth_amplitude);
    let weights: Vec<f64> = (0..n_modes).map(|_| rng.gen::<f64>() + 0.1).collect();
    let wsum: f64 = weights.iter().sum();
    let smooth_modes: Vec<FourierMode> = weights
        .iter()
        .map(|w| FourierMode {
            wavelength_angstrom: uni(rng, r.smooth_wavelength_angstrom),
            direction_deg: uni(rng, (0.0, 360.0)),
            phase_rad: uni(rng, (0.0, std::f64::consts::TAU)),
            amplitude_rel: smooth_total * w / wsum,
        })
        .collect();
    let texture_density = uni(rng, r.texture_density_per_angstrom2);
    let lf_amp = uni(rng, r.low_frequency_amplitude) * if rng.gen::<bool>() { 1.0 } else { -1.0 };
    let lf_centre = (uni(rng, (0.0, nf - 1.0)), uni(rng, (0.0, nf - 1.0)));
    let lf_sigma = uni(rng, r.low_frequency_width) * nf;
    let ramp_rel = uni(rng, r.ramp);
    let ramp_dir = uni(rng, (0.0, 360.0));
    let plateau = uni(rng, r.plateau);
    let plateau_edge = uni(rng, r.plateau_edge_angstrom);
    SupportDraw {
        level_rel: support_level,
        smooth_modes,
        texture_density_per_angstrom2: texture_density,
        low_frequency_amplitude_rel: lf_amp,
        low_frequency_centre_px: lf_centre,
        low_frequency_sigma_px: lf_sigma,
        ramp_rel,
        ramp_direction_deg: ramp_dir,
        plateau_rel: plateau,
        plateau_edge_angstrom: plateau_edge,
    }
}

/// Dose, noise and drift of a case (see the fields of [`Case`]).
struct AcquisitionDraw {
    dose_counts: f64,
    read_noise_counts: f64,
    n_frames: usize,
    shifts_px: Vec<(f64, f64)>,
}

fn draw_acquisition(rng: &mut StdRng, r: &CaseRanges) -> AcquisitionDraw {
    let dose = uni(rng, r.dose_counts);
    let read_noise = uni(rng, r.read_noise_counts);
    let n_frames = uni_usize(rng, r.frames).max(1);
    let d = r.max_drift_px.abs();
    let shifts: Vec<(f64, f64)> = (0..n_frames)
        .map(|f| {
            if f == 0 {
                (0.0, 0.0)
            } else {
                (uni(rng, (-d, d)), uni(rng, (-d, d)))
            }
        })
        .collect();
    AcquisitionDraw {
        dose_counts: dose,
        read_noise_counts: read_noise,
        n_frames,
        shifts_px: shifts,
    }
}

/// Draw one case from `seed` (deterministic: the same seed and ranges give
/// the same case on every machine). The draws are made in a fixed order:
/// geometry, placement, columns, support, acquisition, sub-seeds.
#[must_use]
pub fn draw_case(seed: u64, r: &CaseRanges) -> Case {
    let mut rng = StdRng::seed_from_u64(seed);
    let pixel = uni(&mut rng, r.pixel_size_angstrom);
    let a = uni(&mut rng, r.lattice_angstrom);
    let rotation = uni(&mut rng, r.rotation_deg);
    let n_drawn = uni_usize(&mut rng, r.n_cells).max(1);
    let a_px = a / pixel;
    let field = choose_field(n_drawn, a_px, rotation, r.max_field_px);
    let width = particle_width_px(field.n_cells, a_px, rotation);
    let place = place_particle(&mut rng, r, &field, width);
    let col = draw_columns(&mut rng, r);
    let sup = draw_support(&mut rng, r, field.size_px as f64);
    let acq = draw_acquisition(&mut rng, r);
    Case {
        seed,
        pixel_size_angstrom: pixel,
        lattice_angstrom: a,
        rotation_deg: rotation,
        n_cells_drawn: n_drawn,
        n_cells: field.n_cells,
        field_px: field.size_px,
        margin_px: field.margin_px,
        cut: place.cut,
        centre_x_px: place.centre.0,
        centre_y_px: place.centre.1,
        truth_ratio: col.truth_ratio,
        br_fraction: col.br_fraction,
        sigma_angstrom: col.sigma_angstrom,
        dim_widening: col.dim_widening,
        ellipticity: col.ellipticity,
        ellipse_angle_deg: col.ellipse_angle_deg,
        scatter_sd: col.scatter_sd,
        support_level_rel: sup.level_rel,
        smooth_modes: sup.smooth_modes,
        texture_density_per_angstrom2: sup.texture_density_per_angstrom2,
        texture_sigma_angstrom: r.texture_sigma_angstrom,
        texture_height_max: r.texture_height_max,
        low_frequency_amplitude_rel: sup.low_frequency_amplitude_rel,
        low_frequency_centre_px: sup.low_frequency_centre_px,
        low_frequency_sigma_px: sup.low_frequency_sigma_px,
        ramp_rel: sup.ramp_rel,
        ramp_direction_deg: sup.ramp_direction_deg,
        plateau_rel: sup.plateau_rel,
        plateau_edge_angstrom: sup.plateau_edge_angstrom,
        dose_counts: acq.dose_counts,
        read_noise_counts: acq.read_noise_counts,
        n_frames: acq.n_frames,
        shifts_px: acq.shifts_px,
        scatter_seed: rng.gen(),
        texture_seed: rng.gen(),
        noise_seed: rng.gen(),
    }
}
