//! What a finished run says about its own sampling (docs/methods/multislice.md):
//! the wave grid, its band limit k_max·λ, the probe step and the lowest
//! intensity left after the last slice ([`sampling`]), and the warnings a
//! result carries ([`warnings`]): a partial merge, intensity lost past the
//! band limit or outside the PRISM windows, a band limit below the outer
//! detector angle plus the convergence angle, and the 4mm wedge with few
//! configurations. Warnings refer to parameters by field, in backticks
//! (`` `sampling_angstrom` ``), as library errors do.

use serde::Serialize;

use crate::multislice::params::SimParams;
use crate::multislice::propagate::Grid;
use crate::multislice::work::Partial;
use crate::optics::wavelength_angstrom;

/// The wave grid of a run and its band limit (mrad).
#[must_use]
pub fn band_limit(p: &SimParams) -> (Grid, f64) {
    let grid = Grid {
        n: p.grid_n,
        l_angstrom: p.lattice_angstrom * p.supercell_uc as f64,
    };
    let lambda = wavelength_angstrom(p.microscope.high_tension_kv);
    let band = grid.k_max() * lambda * 1e3;
    (grid, band)
}

/// The sampling of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sampling {
    /// Grid pixels per side of the supercell.
    pub grid_n: usize,
    /// Wave sampling Δx, Å.
    pub dx_angstrom: f64,
    /// Band limit k_max·λ, mrad.
    pub band_limit_mrad: f64,
    /// Oversampling of the transmission functions.
    pub potential_oversampling: usize,
    /// `complex f32` or `complex f64`.
    pub precision: &'static str,
    /// Probe step a/p, Å.
    pub probe_step_angstrom: f64,
    /// Lowest Σ|ψ|² after the last slice (PRISM: inside the windows).
    pub min_intensity_after_last_slice: f64,
}

/// The sampling of the run that gave `part`.
#[must_use]
pub fn sampling(part: &Partial) -> Sampling {
    let p = &part.params;
    let (grid, band_mrad) = band_limit(p);
    Sampling {
        grid_n: p.grid_n,
        dx_angstrom: grid.dx(),
        band_limit_mrad: band_mrad,
        potential_oversampling: p.potential_oversampling,
        precision: if p.double_precision {
            "complex f64"
        } else {
            "complex f32"
        },
        probe_step_angstrom: p.lattice_angstrom / p.probe_per_cell as f64,
        min_intensity_after_last_slice: part.min_intensity,
    }
}

/// Warnings about the run itself: a partial merge, intensity lost past the
/// band limit or the PRISM windows, a band limit below the detector, the
/// wedge with few configurations.
#[must_use]
pub fn warnings(part: &Partial) -> Vec<String> {
    let p = &part.params;
    let mut warnings = Vec::new();
    let configs = part.configurations().len();
    if configs < p.phonons {
        warnings.push(format!(
            "averaged over the {configs} of {} configurations the shards hold (`allow_partial`): a preliminary result",
            p.phonons
        ));
    }
    let moving = p.displacement_angstrom.iter().any(|&d| d > 0.0);
    // Static crystals channel more intensity past the band limit by nature
    // (docs/methods/multislice.md), so the monitor warns for frozen-phonon runs only.
    if let Some(f) = p.prism_interpolation.filter(|&f| f > 1) {
        // PRISM's monitor is the intensity inside the windows, which also
        // drops when the window cuts the spread probe (any crystal).
        if part.min_intensity < 0.99 {
            warnings.push(format!(
                "only {:.4} of the probe intensity is inside the PRISM windows (L/f = {:.1} Å) after {} u.c.: the window cuts the spread probe or the grid is under-sampled; use a lower `prism_interpolation` or a larger `supercell_uc`",
                part.min_intensity,
                p.lattice_angstrom * p.supercell_uc as f64 / f as f64,
                p.max_thickness_uc
            ));
        }
    } else if moving && part.min_intensity < 0.99 {
        warnings.push(format!(
            "only {:.4} of the probe intensity is left after {} u.c. (> 1 % scattered past the band limit): the grid is under-sampled",
            part.min_intensity, p.max_thickness_uc
        ));
    }
    // Scattering a probe component at α into the detector edge β_out needs
    // transmission frequencies up to β_out + α (measured: at a band limit of
    // 192 mrad for 35–190 mrad and α = 18 mrad the Pb/Br column intensity at
    // 4 u.c. is 2.8 % low).
    let lambda = wavelength_angstrom(p.microscope.high_tension_kv);
    let (_, band_mrad) = band_limit(p);
    let needed =
        p.detectors.iter().map(|d| d.1).fold(0.0, f64::max) + p.microscope.convergence_mrad;
    if band_mrad < needed {
        warnings.push(format!(
            "band limit {band_mrad:.0} mrad < outer detector angle + convergence = {needed:.0} mrad: high-angle scattering is cut, intensities are under-converged (needs `sampling_angstrom` ≤ {:.4})",
            lambda / (3.0 * needed * 1e-3)
        ));
    }
    if p.symmetry_wedge && moving && p.phonons < 10 {
        warnings.push(format!(
            "the 4mm wedge copies each configuration's (asymmetric) displacements to the 8 equivalent positions: with {} configurations thin-crystal ratios are biased; use more `phonons` or `symmetry_wedge = false`",
            p.phonons
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finished run of `p` with every configuration present.
    fn finished(p: SimParams, min_intensity: f64) -> Partial {
        let n = p.phonons;
        Partial::without_sums(p, n, min_intensity)
    }

    #[test]
    fn the_default_run_has_no_warning() {
        let part = finished(SimParams::default(), 0.999);
        assert!(warnings(&part).is_empty(), "{:?}", warnings(&part));
        let s = sampling(&part);
        // 576 px over 3 × 5.87 Å: Δx = 0.0306 Å, k_max·λ = 214 mrad ≥ 190 + 18.
        assert!((s.dx_angstrom - 17.61 / 576.0).abs() < 1e-12);
        assert!(s.band_limit_mrad > 208.0 && s.band_limit_mrad < 220.0);
        assert_eq!(s.precision, "complex f32");
    }

    #[test]
    fn an_undersampled_grid_warns_about_the_band_limit() {
        let p = SimParams {
            grid_n: 288,
            ..SimParams::default()
        };
        let w = warnings(&finished(p, 0.98));
        assert!(
            w.iter().any(|w| w.starts_with(
                "band limit 107 mrad < outer detector angle + convergence = 208 mrad"
            )),
            "{w:?}"
        );
        assert!(w
            .iter()
            .any(|w| w.contains("scattered past the band limit")));
    }

    #[test]
    fn partial_merges_narrow_prism_windows_and_few_configurations_warn() {
        let p = SimParams {
            phonons: 4,
            prism_interpolation: Some(4),
            ..SimParams::default()
        };
        let mut part = finished(p, 0.9);
        part.items.truncate(2);
        let w = warnings(&part);
        assert!(
            w[0].starts_with("averaged over the 2 of 4 configurations"),
            "{w:?}"
        );
        assert!(
            w[1].contains("inside the PRISM windows (L/f = 4.4 Å)"),
            "{w:?}"
        );
        assert!(w[2].contains("with 4 configurations thin-crystal ratios are biased"));
        assert_eq!(w.len(), 3);
    }
}
