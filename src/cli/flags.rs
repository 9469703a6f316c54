//! The one map from the library's parameter names to the command line's
//! flags, and the rendering of library errors and warnings through it.
//!
//! The library names a parameter by its params-struct field
//! (`pixel_size_angstrom`, `high_tension_kv`) or, where the value is not a
//! field, by the flag's words in snake_case (`deconv_iterations`,
//! `background_radius_px`, `merge`). Its messages refer to other parameters
//! in backticks, `` `field` `` or `` `field = value` `` (`` `method = multislice` ``,
//! `` `deconvolve_enabled = false` ``). [`render`] and [`words`] turn both
//! into the flags a shell user types; a reference the table does not know
//! is left as it is.

use qdscope::error::Error;

/// Field (or `field = value` setting) → flag, one row per parameter the
/// library names in errors and warnings.
pub const FLAGS: &[(&str, &str)] = &[
    // prepare, columns, analyze, inspect, convert
    ("pixel_size_angstrom", "--pixel-size-angstrom"),
    ("signal", "--signal"),
    ("background_radius_angstrom", "--background-radius-angstrom"),
    ("background_radius_px", "--background-radius-px"),
    ("background_sigma_factor", "--background-sigma-factor"),
    ("upsample", "--upsample"),
    ("max_shift_px", "--max-shift-px"),
    ("denoise_iterations", "--denoise-iterations"),
    ("deconv_iterations", "--deconv-iterations"),
    ("deconvolve_enabled = false", "--no-deconvolve"),
    ("psf", "--psf"),
    ("psf_half_width_px", "--psf-half-width-px"),
    // the microscope (prepare and simulate)
    ("high_tension_kv", "--kv"),
    ("convergence_mrad", "--convergence-mrad"),
    ("defocus_angstrom", "--defocus-angstrom"),
    ("cs_mm", "--cs-mm"),
    ("c5_mm", "--c5-mm"),
    ("cc_mm", "--cc-mm"),
    ("energy_spread_ev", "--energy-spread-ev"),
    ("source_size_angstrom", "--source-size-angstrom"),
    // simulate
    ("detectors", "--detector-mrad"),
    ("sampling_angstrom", "--sampling-angstrom"),
    ("supercell_uc", "--supercell-uc"),
    ("phonons", "--phonons"),
    ("symmetry_wedge = false", "--no-symmetry"),
    ("max_thickness_uc", "--thickness-uc"),
    ("probe_per_cell", "--probe-per-cell"),
    ("displacement_angstrom", "--displacement-angstrom"),
    ("potential_oversampling", "--potential-oversampling"),
    ("blur_angstrom", "--blur-angstrom"),
    ("double_precision", "--double"),
    ("prism_interpolation", "--interpolation"),
    ("method", "--method"),
    ("merge", "--merge"),
    ("allow_partial", "--allow-partial"),
    // build-qd
    ("n", "--size"),
    ("shell_uc", "--shell"),
    ("lattice_angstrom", "--lattice-angstrom"),
    ("balance", "--balance"),
    ("remove_cs_list", "--remove-cs-list"),
    ("cell_nm", "--cell-nm"),
    ("frozen_shell_uc", "--frozen-shell-uc"),
    ("frozen_core_uc", "--frozen-core-uc"),
    // compare
    ("groups", "--group"),
    // phonon
    ("velocities", "--velocities"),
    ("route", "--from"),
    ("temperature_k", "--temperature-k"),
    ("segment_frames", "--segment-frames"),
    ("dt_fs", "--dt-fs"),
    ("dt_fine_fs", "--dt-fine-fs"),
    ("bin_width_mev", "--bin-width-mev"),
    ("bands_mev", "--bands-mev"),
    ("homo_index", "--homo-index"),
    ("skip_fs", "--skip-fs"),
    ("mo_offset", "--mo-offset"),
    ("gamma_temperatures_k", "--temps"),
    ("labels", "--labels"),
    ("t_norm", "--t-norm"),
    ("ener", "--ener"),
];

/// The flag text of a field or of a `field = value` setting: a row of
/// [`FLAGS`] as it is, else `field`'s flag followed by the value
/// (`method = prism` → `--method prism`); `None` when the table has neither.
#[must_use]
pub fn flag(field: &str) -> Option<String> {
    let row = |k: &str| FLAGS.iter().find(|(f, _)| *f == k).map(|(_, flag)| *flag);
    if let Some(f) = row(field) {
        return Some(f.to_string());
    }
    let (f, value) = field.split_once(" = ")?;
    row(f).map(|flag| format!("{flag} {value}"))
}

/// A parameter name as the command line words it. A name may carry
/// context prefixes (`stack.tif: background_radius_px`, see
/// [`Error::context`]): the last part is the field.
fn name_in_flags(name: &str) -> String {
    let (ctx, field) = match name.rsplit_once(": ") {
        Some((c, f)) => (Some(c), f),
        None => (None, name),
    };
    match (flag(field), ctx) {
        (Some(f), Some(c)) => format!("{c}: {f}"),
        (Some(f), None) => f,
        (None, _) => name.to_string(),
    }
}

/// `text` with every `` `field` `` / `` `field = value` `` reference that
/// [`flag`] knows replaced by its flag text (backticks dropped); other
/// backticked text stays.
#[must_use]
pub fn words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('`') {
        let inner = &rest[i + 1..];
        let Some(j) = inner.find('`') else { break };
        match flag(&inner[..j]) {
            Some(f) => {
                out.push_str(&rest[..i]);
                out.push_str(&f);
            }
            None => out.push_str(&rest[..i + j + 2]),
        }
        rest = &inner[j + 1..];
    }
    out.push_str(rest);
    out
}

/// A library error as the command line prints it: the parameter's flag
/// instead of its field name, and flags for the references in the text.
#[must_use]
pub fn render(e: &Error) -> String {
    match e {
        Error::InvalidParameter { name, reason } => {
            words(&Error::param(name_in_flags(name), reason.as_str()).to_string())
        }
        Error::Uncalibrated { what } => words(
            &Error::Uncalibrated {
                what: name_in_flags(what),
            }
            .to_string(),
        ),
        e => words(&e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every parameter name and `` `reference` `` the library puts in an
    /// error or warning (outside `cli/`).
    const LIBRARY_NAMES: &[&str] = &[
        "pixel_size_angstrom",
        "signal",
        "background_radius_angstrom",
        "background_radius_px",
        "background_sigma_factor",
        "upsample",
        "max_shift_px",
        "denoise_iterations",
        "deconv_iterations",
        "deconvolve_enabled = false",
        "psf",
        "psf = FILE",
        "psf_half_width_px",
        "high_tension_kv",
        "convergence_mrad",
        "defocus_angstrom",
        "cs_mm",
        "c5_mm",
        "cc_mm",
        "energy_spread_ev",
        "energy_spread_ev = 0",
        "source_size_angstrom",
        "detectors",
        "sampling_angstrom",
        "supercell_uc",
        "phonons",
        "symmetry_wedge = false",
        "max_thickness_uc",
        "probe_per_cell",
        "displacement_angstrom",
        "potential_oversampling",
        "blur_angstrom",
        "double_precision",
        "prism_interpolation",
        "method = prism",
        "method = multislice",
        "merge",
        "allow_partial",
        "n",
        "shell_uc",
        "lattice_angstrom",
        "balance",
        "remove_cs_list",
        "cell_nm",
        "frozen_shell_uc",
        "frozen_core_uc",
        "groups",
        "velocities",
        "route = positions",
        "temperature_k",
        "segment_frames",
        "dt_fs",
        "dt_fine_fs",
        "bin_width_mev",
        "bands_mev",
        "homo_index",
        "skip_fs",
        "mo_offset",
        "mo_offset = 0",
        "gamma_temperatures_k",
        "labels",
        "t_norm",
        "ener = FILE",
    ];

    #[test]
    fn every_library_name_has_a_flag() {
        for name in LIBRARY_NAMES {
            let f = flag(name).unwrap_or_else(|| panic!("no flag for `{name}`"));
            assert!(f.starts_with("--"), "{name} → {f}");
        }
        // One row per field, and every row is used.
        for (i, (field, _)) in FLAGS.iter().enumerate() {
            assert!(FLAGS[..i].iter().all(|(f, _)| f != field), "{field} twice");
            assert!(
                LIBRARY_NAMES
                    .iter()
                    .any(|n| n == field || n.split_once(" = ").is_some_and(|(f, _)| f == *field)),
                "{field} is not named by the library"
            );
        }
    }

    #[test]
    fn references_become_flags() {
        assert_eq!(flag("high_tension_kv").as_deref(), Some("--kv"));
        assert_eq!(flag("method = prism").as_deref(), Some("--method prism"));
        assert_eq!(
            flag("deconvolve_enabled = false").as_deref(),
            Some("--no-deconvolve")
        );
        assert_eq!(flag("grid_n"), None);
        assert_eq!(
            words("raise `prism_interpolation` or use `method = multislice`; `MO| Sum:` stays"),
            "raise --interpolation or use --method multislice; `MO| Sum:` stays"
        );
        assert_eq!(words("an odd ` backtick"), "an odd ` backtick");
    }

    #[test]
    fn library_errors_are_printed_with_flags() {
        let e = qdscope::image::Calibration::from_pixel_size(0.0).unwrap_err();
        assert!(e.to_string().starts_with("pixel_size_angstrom: "), "{e}");
        assert!(
            render(&e).starts_with("--pixel-size-angstrom: must be"),
            "{e}"
        );
        // A file name in front (Error::context) stays in front.
        let e = Error::param("background_radius_px", "must be at least 1 px").context("a.tif");
        assert_eq!(
            render(&e),
            "a.tif: --background-radius-px: must be at least 1 px"
        );
        let e = qdscope::image::Calibration::Uncalibrated
            .angstrom_to_px(12.0, "background_radius_angstrom")
            .unwrap_err();
        assert_eq!(
            render(&e),
            "--background-radius-angstrom: the image is uncalibrated (no pixel size); give --pixel-size-angstrom or a length in px"
        );
        // Names that are not in the table print as they are.
        let e = Error::param("grid_n", "too large");
        assert_eq!(render(&e), "grid_n: too large");
    }
}
