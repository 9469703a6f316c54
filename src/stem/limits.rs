//! Bounds on sizes derived from flags and file calibrations, checked before
//! any kernel, disk or FFT is built from them: a pixel size of 1e-300 Å or a
//! lattice constant of 1e300 Å must be a one-line error naming the value and
//! the limit, not a "capacity overflow" panic or a multi-GB allocation.

use crate::error::{fmt_size, fmt_value, Error, Result};

/// Most iterations an iterative filter (denoising, Richardson–Lucy) accepts:
/// both converge in tens of iterations; a count beyond this is a typo that
/// would run for days.
pub const MAX_ITERATIONS: usize = 10_000;

/// `iterations` of parameter `name` checked to be 1 … [`MAX_ITERATIONS`].
///
/// # Errors
/// `Error::InvalidParameter` naming `name`, the value and the limit.
pub fn iterations(name: &str, iterations: usize) -> Result<()> {
    if iterations == 0 {
        return Err(Error::param(name, "must be at least 1"));
    }
    crate::error::check_size(
        name,
        iterations as f64,
        MAX_ITERATIONS as f64,
        "iterations",
        "the filter converges in tens of iterations",
    )
}

/// Fewest pixels per lattice constant the column chain accepts: below it the
/// Cs and Pb/Br columns (a/√2 apart) are not resolved.
pub const MIN_LATTICE_PX: f64 = 4.0;

/// The lattice constant in px (`lattice_angstrom / pixel_size_angstrom`),
/// checked against [`MIN_LATTICE_PX`] and half the image's shorter side
/// (at least two cells must fit to measure a lattice).
///
/// # Errors
/// `Error::InvalidParameter` naming `lattice_angstrom / pixel_size_angstrom`,
/// both values, the size in px and the limit.
pub fn lattice_px(
    lattice_angstrom: f64,
    pixel_size_angstrom: f64,
    dim: (usize, usize),
) -> Result<f64> {
    let a_px = lattice_angstrom / pixel_size_angstrom;
    let max = dim.0.min(dim.1) as f64 / 2.0;
    let name = "lattice_angstrom / pixel_size_angstrom";
    let what = format!(
        "a lattice of {} Å at {} Å/px is {} px",
        fmt_value(lattice_angstrom),
        fmt_value(pixel_size_angstrom),
        fmt_size(a_px)
    );
    if !(a_px.is_finite() && a_px <= max) {
        return Err(Error::param(
            name,
            format!(
                "{what}, above the limit of {} px (half the image's shorter side, {}×{} px): check the pixel size and the lattice constant",
                fmt_size(max),
                dim.0,
                dim.1
            ),
        ));
    }
    if a_px < MIN_LATTICE_PX {
        return Err(Error::param(
            name,
            format!(
                "{what}, below the limit of {MIN_LATTICE_PX} px (columns not resolved): check the pixel size and the lattice constant"
            ),
        ));
    }
    Ok(a_px)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iteration_counts_are_bounded_on_both_sides() {
        assert!(iterations("denoise_iterations", 1).is_ok());
        assert!(iterations("denoise_iterations", MAX_ITERATIONS).is_ok());
        let e = iterations("deconv_iterations", 0).unwrap_err().to_string();
        assert!(
            e.starts_with("deconv_iterations: must be at least 1"),
            "{e}"
        );
        let e = iterations("deconv_iterations", 1_000_000_000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("above the limit of 10000 iterations"), "{e}");
    }

    #[test]
    fn lattice_bounds_name_value_and_limit() {
        assert!((lattice_px(5.87, 0.1, (200, 300)).unwrap() - 58.7).abs() < 1e-9);
        let e = lattice_px(5.87, 1e-300, (192, 192))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("5.870e300 px") && e.contains("limit of 96 px"),
            "{e}"
        );
        let e = lattice_px(1e300, 0.1, (192, 192)).unwrap_err().to_string();
        assert!(e.contains("1e300 Å") && e.contains("96 px"), "{e}");
        assert!(e.chars().count() < 220, "{e}");
        let e = lattice_px(5.87, 1e300, (192, 192)).unwrap_err().to_string();
        assert!(e.contains("below the limit of 4 px"), "{e}");
    }
}
