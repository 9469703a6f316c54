//! Randomized accuracy testbed: cubic-perovskite QD stacks seen along
//! \[001\], with ground truth, drawn from wide parameter ranges.
//!
//! Every case is drawn from a seed ([`draw_case`]) out of [`CaseRanges`]
//! (pixel size, lattice constant, rotation, particle size, field-edge cuts,
//! Cs : Pb/Br volume ratio, pure-Br columns, column widths, probe
//! ellipticity, column-to-column scatter, support, dose, read noise, frames,
//! drift) and rendered into a [`Stack`](crate::image::Stack) plus a [`CaseTruth`] by
//! [`render_case`]. [`score`] matches the columns found by
//! [`crate::stem::columns::analyse`] to the truth.
//!
//! The generator is deliberately built differently from
//! [`crate::stem::synth`] (the demo generator) so that the analysis chain is
//! not tested on images made by its own assumptions:
//!
//! * columns are **elliptical** Gaussians given by their **volume**
//!   (counts·px²), one probe ellipticity and orientation for the whole image
//!   (each column keeps its geometric-mean σ), dim columns (Cs, Br) up to
//!   10 % wider than the bright Pb/Br columns;
//! * every Gaussian (columns and texture blobs) is **integrated over the
//!   pixel area** by 4×4 mid-point supersampling (an exact erf product is
//!   not separable for a rotated ellipse), evaluated with an exact
//!   multiplicative recurrence along each sub-row;
//! * each column's volume carries its own scatter, 1 + N(0, s);
//! * the support is a smooth random field (a few low-frequency Fourier
//!   modes), a fine texture of many small Gaussian blobs (σ 0.3–0.6 Å, peak
//!   heights up to the dim columns' peak height) all over the field, a broad
//!   low-frequency bump or dip, a linear ramp, and a soft-edged plateau over
//!   the particle's square footprint;
//! * each frame is rendered analytically at its drifted positions,
//!   `frame_f(x) = scene(x − s_f)` (support included), then clipped at 0,
//!   Poisson-sampled, and Gaussian read noise is added.
//!
//! # Coordinates
//! Pixel centres sit at integers, (0, 0) is the centre of the top-left
//! pixel, x is the column index, y the row index. Truth positions are in
//! frame-0 coordinates (frame 0 has no drift).
//!
//! # Geometry
//! A cube of n unit cells, its axes rotated by `rotation_deg` from +x
//! towards +y: Cs (dim) columns at the cell corners (i, j), i, j = 0..=n;
//! Pb/Br (bright) columns at the body centres (i + ½, j + ½), i, j = 0..n−1;
//! pure-Br columns at (i + ½, j) and (i, j + ½) inside the particle.

use serde::{Deserialize, Serialize};

mod draw;
mod render;
mod score;
mod splat;

pub use draw::draw_case;
pub use render::{render_case, render_clean};
pub use score::{
    prepared_offset_px, run_rendered, run_rendered_with, score, CaseScore, CaseTruth, ColumnKind,
    Outcome, TruthColumn,
};
pub use splat::SUPERSAMPLE;

/// Square field sizes a case may use, px (the smallest that holds the
/// particle plus its margin is chosen).
pub const FIELD_SIZES_PX: [usize; 6] = [256, 384, 512, 640, 768, 1024];

/// Ranges every case is drawn from (uniform unless said otherwise).
/// Relative support amplitudes are in units of the bright (Pb/Br) column
/// peak height.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaseRanges {
    /// Pixel size, Å/px (0.08–0.25).
    pub pixel_size_angstrom: (f64, f64),
    /// Cubic lattice constant a, Å (3.9–6.3).
    pub lattice_angstrom: (f64, f64),
    /// In-plane rotation of the cube axes, degrees (0–90).
    pub rotation_deg: (f64, f64),
    /// Particle edge in unit cells, inclusive integer range (6–16).
    pub n_cells: (usize, usize),
    /// Probability that the particle is cut by the field edge (0.2).
    pub cut_probability: f64,
    /// Fraction of the particle's width outside the field when cut (0.1–0.4).
    pub cut_fraction: (f64, f64),
    /// Dim/bright (Cs : Pb/Br) column volume ratio (0.25–0.60).
    pub truth_ratio: (f64, f64),
    /// Fixed truth ratio instead of a draw (group studies); the draw is
    /// still made so the other values do not change.
    pub ratio_override: Option<f64>,
    /// Pure-Br column volume as a fraction of the bright volume (0–0.25).
    pub br_fraction: (f64, f64),
    /// Bright column σ (geometric mean of the ellipse axes), Å (0.45–0.8).
    pub sigma_angstrom: (f64, f64),
    /// Relative widening of the dim columns, σ_dim = σ·(1 + w) (0–0.1).
    pub dim_widening: (f64, f64),
    /// Probe ellipticity σ_major/σ_minor (1.0–1.1).
    pub ellipticity: (f64, f64),
    /// Column-to-column relative volume scatter s (0.02–0.05).
    pub scatter_sd: (f64, f64),
    /// Lowest support level, relative (0.05–0.3).
    pub support_level: (f64, f64),
    /// Number of Fourier modes of the smooth random field (2–5).
    pub smooth_modes: (usize, usize),
    /// Summed amplitude of the smooth field's modes, relative (0–0.15).
    pub smooth_amplitude: (f64, f64),
    /// Wavelength of each smooth mode, Å (15–60).
    pub smooth_wavelength_angstrom: (f64, f64),
    /// Texture blobs per Å² of field (0.005–0.03).
    pub texture_density_per_angstrom2: (f64, f64),
    /// σ of each texture blob, Å (0.3–0.6).
    pub texture_sigma_angstrom: (f64, f64),
    /// Largest texture blob peak height as a fraction of the dim (Cs)
    /// column peak height (heights uniform in 0..max; default 1).
    pub texture_height_max: f64,
    /// Amplitude (either sign) of the broad low-frequency bump, relative (0–0.2).
    pub low_frequency_amplitude: (f64, f64),
    /// σ of the bump as a fraction of the field size (0.3–0.8).
    pub low_frequency_width: (f64, f64),
    /// Change of the linear ramp across the field, relative (0–0.3).
    pub ramp: (f64, f64),
    /// Plateau height over the particle, relative (0.1–0.5).
    pub plateau: (f64, f64),
    /// Width (Gaussian σ of the erf edge) of the plateau's soft edge, Å (0.5–2).
    pub plateau_edge_angstrom: (f64, f64),
    /// Bright column peak height above the local support, counts per frame (15–80).
    pub dose_counts: (f64, f64),
    /// Gaussian read noise σ, counts (1–3).
    pub read_noise_counts: (f64, f64),
    /// Number of frames, inclusive (1–20).
    pub frames: (usize, usize),
    /// Largest drift component per frame, px (3; uniform in ±, frame 0 at 0).
    pub max_drift_px: f64,
    /// Largest field size allowed, px (1024).
    pub max_field_px: usize,
}

impl Default for CaseRanges {
    fn default() -> Self {
        CaseRanges {
            pixel_size_angstrom: (0.08, 0.25),
            lattice_angstrom: (3.9, 6.3),
            rotation_deg: (0.0, 90.0),
            n_cells: (6, 16),
            cut_probability: 0.2,
            cut_fraction: (0.1, 0.4),
            truth_ratio: (0.25, 0.60),
            ratio_override: None,
            br_fraction: (0.0, 0.25),
            sigma_angstrom: (0.45, 0.8),
            dim_widening: (0.0, 0.1),
            ellipticity: (1.0, 1.1),
            scatter_sd: (0.02, 0.05),
            support_level: (0.05, 0.3),
            smooth_modes: (2, 5),
            smooth_amplitude: (0.0, 0.15),
            smooth_wavelength_angstrom: (15.0, 60.0),
            texture_density_per_angstrom2: (0.005, 0.03),
            texture_sigma_angstrom: (0.3, 0.6),
            texture_height_max: 1.0,
            low_frequency_amplitude: (0.0, 0.2),
            low_frequency_width: (0.3, 0.8),
            ramp: (0.0, 0.3),
            plateau: (0.1, 0.5),
            plateau_edge_angstrom: (0.5, 2.0),
            dose_counts: (15.0, 80.0),
            read_noise_counts: (1.0, 3.0),
            frames: (1, 20),
            max_drift_px: 3.0,
            max_field_px: 1024,
        }
    }
}

/// Which field edge cuts the particle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// x = 0 edge.
    Left,
    /// x = N − 1 edge.
    Right,
    /// y = 0 edge.
    Top,
    /// y = N − 1 edge.
    Bottom,
}

/// A particle cut by the field edge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cut {
    /// The edge.
    pub side: Side,
    /// Fraction of the particle's (bounding-box) width outside the field.
    pub fraction: f64,
}

/// One Fourier mode of the smooth support field.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FourierMode {
    /// Wavelength, Å.
    pub wavelength_angstrom: f64,
    /// Direction of the wave vector from +x towards +y, degrees.
    pub direction_deg: f64,
    /// Phase, rad.
    pub phase_rad: f64,
    /// Amplitude, relative to the bright peak height.
    pub amplitude_rel: f64,
}

/// Every value drawn for one case (per-column scatter and texture blobs
/// come from the recorded sub-seeds; their values are in [`CaseTruth`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Seed the case was drawn from.
    pub seed: u64,
    /// Pixel size, Å/px.
    pub pixel_size_angstrom: f64,
    /// Cubic lattice constant a, Å.
    pub lattice_angstrom: f64,
    /// Rotation of the cube axes from +x towards +y, degrees.
    pub rotation_deg: f64,
    /// Particle edge drawn, unit cells.
    pub n_cells_drawn: usize,
    /// Particle edge used (reduced when the largest field is too small), unit cells.
    pub n_cells: usize,
    /// Square field size, px.
    pub field_px: usize,
    /// Margin required around the particle when choosing the field, px
    /// (2a, less only if even one cell did not fit).
    pub margin_px: f64,
    /// Cut by the field edge, if so.
    pub cut: Option<Cut>,
    /// Particle centre x in frame 0, px.
    pub centre_x_px: f64,
    /// Particle centre y in frame 0, px.
    pub centre_y_px: f64,
    /// Nominal Cs : Pb/Br column volume ratio (before the column scatter).
    pub truth_ratio: f64,
    /// Nominal pure-Br volume / bright volume.
    pub br_fraction: f64,
    /// Bright column σ (geometric mean), Å.
    pub sigma_angstrom: f64,
    /// Dim column widening w (σ_dim = σ·(1 + w)), also used for the pure-Br columns.
    pub dim_widening: f64,
    /// Probe ellipticity σ_major/σ_minor.
    pub ellipticity: f64,
    /// Direction of the major axis from +x towards +y, degrees.
    pub ellipse_angle_deg: f64,
    /// Relative column-to-column volume scatter s.
    pub scatter_sd: f64,
    /// Lowest support level, relative to the bright peak height.
    pub support_level_rel: f64,
    /// Smooth random field.
    pub smooth_modes: Vec<FourierMode>,
    /// Texture blobs per Å².
    pub texture_density_per_angstrom2: f64,
    /// Texture blob σ range, Å.
    pub texture_sigma_angstrom: (f64, f64),
    /// Largest texture peak height as a fraction of the dim column peak height.
    pub texture_height_max: f64,
    /// Bump amplitude (signed), relative.
    pub low_frequency_amplitude_rel: f64,
    /// Bump centre (x, y), frame-0 px.
    pub low_frequency_centre_px: (f64, f64),
    /// Bump σ, px.
    pub low_frequency_sigma_px: f64,
    /// Ramp change across the field, relative.
    pub ramp_rel: f64,
    /// Ramp direction (uphill) from +x towards +y, degrees.
    pub ramp_direction_deg: f64,
    /// Plateau height over the particle, relative.
    pub plateau_rel: f64,
    /// Plateau soft-edge σ, Å.
    pub plateau_edge_angstrom: f64,
    /// Bright peak height above the support, counts per frame.
    pub dose_counts: f64,
    /// Read noise σ, counts.
    pub read_noise_counts: f64,
    /// Number of frames.
    pub n_frames: usize,
    /// Drift (dx, dy) of every frame, px; frame 0 at (0, 0).
    pub shifts_px: Vec<(f64, f64)>,
    /// Seed of the column scatter.
    pub scatter_seed: u64,
    /// Seed of the texture blobs.
    pub texture_seed: u64,
    /// Seed of the counting and read noise.
    pub noise_seed: u64,
}

impl Case {
    /// The same case with its columns alone: no support level, smooth
    /// field, texture, bump, ramp or plateau (dose, noise and drift stay).
    #[must_use]
    pub fn columns_only(&self) -> Case {
        Case {
            support_level_rel: 0.0,
            smooth_modes: Vec::new(),
            texture_density_per_angstrom2: 0.0,
            texture_height_max: 0.0,
            low_frequency_amplitude_rel: 0.0,
            ramp_rel: 0.0,
            plateau_rel: 0.0,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::draw::particle_width_px;
    use super::*;

    pub(super) fn small() -> CaseRanges {
        CaseRanges {
            max_field_px: 256,
            ..CaseRanges::default()
        }
    }

    #[test]
    fn draws_inside_ranges() {
        let r = CaseRanges::default();
        let inside = |v: f64, (lo, hi): (f64, f64)| v >= lo && v <= hi;
        let mut n_cut = 0;
        let n = 500;
        for seed in 0..n {
            let c = draw_case(seed, &r);
            assert!(inside(c.pixel_size_angstrom, r.pixel_size_angstrom));
            assert!(inside(c.lattice_angstrom, r.lattice_angstrom));
            assert!(inside(c.rotation_deg, r.rotation_deg));
            assert!((r.n_cells.0..=r.n_cells.1).contains(&c.n_cells_drawn));
            assert!(c.n_cells >= 1 && c.n_cells <= c.n_cells_drawn);
            assert!(FIELD_SIZES_PX.contains(&c.field_px) && c.field_px <= r.max_field_px);
            let a_px = c.lattice_angstrom / c.pixel_size_angstrom;
            let w = particle_width_px(c.n_cells, a_px, c.rotation_deg);
            assert!(w + 2.0 * c.margin_px <= c.field_px as f64 + 1e-9);
            if c.n_cells < c.n_cells_drawn {
                // One more cell would not have fitted the largest field.
                let w1 = particle_width_px(c.n_cells + 1, a_px, c.rotation_deg);
                assert!(w1 + 4.0 * a_px > r.max_field_px as f64);
            } else {
                // The next smaller field would not hold it.
                if let Some(prev) = FIELD_SIZES_PX.iter().rev().find(|s| **s < c.field_px) {
                    assert!(w + 4.0 * a_px > *prev as f64);
                }
            }
            match c.cut {
                Some(cut) => {
                    n_cut += 1;
                    assert!(inside(cut.fraction, r.cut_fraction));
                    let (lo, hi) = match cut.side {
                        Side::Left | Side::Right => {
                            (c.centre_x_px - w / 2.0, c.centre_x_px + w / 2.0)
                        }
                        Side::Top | Side::Bottom => {
                            (c.centre_y_px - w / 2.0, c.centre_y_px + w / 2.0)
                        }
                    };
                    let nf = c.field_px as f64;
                    let outside = (-0.5 - lo).max(0.0) + (hi - (nf - 0.5)).max(0.0);
                    assert!((outside / w - cut.fraction).abs() < 1e-9);
                }
                None => {
                    let nf = c.field_px as f64;
                    for ctr in [c.centre_x_px, c.centre_y_px] {
                        assert!(ctr - w / 2.0 >= c.margin_px - 0.5 - 1e-6);
                        assert!(ctr + w / 2.0 <= nf - c.margin_px + 1e-6);
                    }
                }
            }
            assert!(inside(c.truth_ratio, r.truth_ratio));
            assert!(inside(c.br_fraction, r.br_fraction));
            assert!(inside(c.sigma_angstrom, r.sigma_angstrom));
            assert!(inside(c.dim_widening, r.dim_widening));
            assert!(inside(c.ellipticity, r.ellipticity));
            assert!(inside(c.ellipse_angle_deg, (0.0, 180.0)));
            assert!(inside(c.scatter_sd, r.scatter_sd));
            assert!(inside(c.support_level_rel, r.support_level));
            assert!((r.smooth_modes.0..=r.smooth_modes.1).contains(&c.smooth_modes.len()));
            let tot: f64 = c.smooth_modes.iter().map(|m| m.amplitude_rel).sum();
            assert!(inside(
                tot,
                (r.smooth_amplitude.0 - 1e-12, r.smooth_amplitude.1 + 1e-12)
            ));
            for m in &c.smooth_modes {
                assert!(inside(m.wavelength_angstrom, r.smooth_wavelength_angstrom));
            }
            assert!(inside(
                c.texture_density_per_angstrom2,
                r.texture_density_per_angstrom2
            ));
            assert!(inside(
                c.low_frequency_amplitude_rel.abs(),
                r.low_frequency_amplitude
            ));
            assert!(inside(c.ramp_rel, r.ramp));
            assert!(inside(c.plateau_rel, r.plateau));
            assert!(inside(c.plateau_edge_angstrom, r.plateau_edge_angstrom));
            assert!(inside(c.dose_counts, r.dose_counts));
            assert!(inside(c.read_noise_counts, r.read_noise_counts));
            assert!((r.frames.0..=r.frames.1).contains(&c.n_frames));
            assert_eq!(c.shifts_px.len(), c.n_frames);
            assert_eq!(c.shifts_px[0], (0.0, 0.0));
            for &(dx, dy) in &c.shifts_px {
                assert!(dx.abs() <= r.max_drift_px && dy.abs() <= r.max_drift_px);
            }
        }
        let f = n_cut as f64 / n as f64;
        assert!((0.15..=0.25).contains(&f), "cut fraction {f}");
        // The override fixes the ratio and nothing else.
        let o = CaseRanges {
            ratio_override: Some(0.33),
            ..r.clone()
        };
        let (c1, c2) = (draw_case(3, &r), draw_case(3, &o));
        assert_eq!(c2.truth_ratio, 0.33);
        assert_eq!(c1.dose_counts, c2.dose_counts);
        assert_eq!(c1.shifts_px, c2.shifts_px);
    }
}
