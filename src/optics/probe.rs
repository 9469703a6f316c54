//! The STEM probe: aberration phase, probe intensity on a grid (FFT), the
//! radial (Hankel) form for symmetric probes, FWHM, and the pixel-integrated
//! PSF that starts the blind deconvolution (docs/methods/deconvolution.md "Initial PSF").

use ndarray::Array2;
use num_complex::Complex;

use super::Microscope;
use crate::error::{Error, Result};
use crate::fft;

/// Standard-normal Gauss–Hermite nodes and weights (n = 5), Σw = 1, for
/// focal-spread averaging (docs/methods/optics.md).
pub const GAUSS_HERMITE_5: [(f64, f64); 5] = [
    (-2.856_970_013_872_805, 0.011_257_411_327_720_69),
    (-1.355_626_179_974_266, 0.222_075_922_005_612_6),
    (0.0, 0.533_333_333_333_333_3),
    (1.355_626_179_974_266, 0.222_075_922_005_612_6),
    (2.856_970_013_872_805, 0.011_257_411_327_720_69),
];

/// Bessel J₀ (Abramowitz & Stegun 9.4.1/9.4.3, |error| < 5e-8).
#[must_use]
pub fn bessel_j0(x: f64) -> f64 {
    let ax = x.abs();
    if ax <= 3.0 {
        let y = (ax / 3.0).powi(2);
        1.0 + y
            * (-2.249_999_7
                + y * (1.265_620_8
                    + y * (-0.316_386_6
                        + y * (0.044_447_9 + y * (-0.003_944_4 + y * 0.000_210_0)))))
    } else {
        let z = 3.0 / ax;
        let f0 = 0.797_884_56
            + z * (-0.000_000_77
                + z * (-0.005_527_40
                    + z * (-0.000_095_12
                        + z * (0.001_372_37 + z * (-0.000_728_05 + z * 0.000_144_76)))));
        let t0 = ax - std::f64::consts::FRAC_PI_4
            + z * (-0.041_663_97
                + z * (-0.000_039_54
                    + z * (0.002_625_73
                        + z * (-0.000_541_25 + z * (-0.000_293_33 + z * 0.000_135_58)))));
        f0 * t0.cos() / ax.sqrt()
    }
}

/// Bessel J₁ (Abramowitz & Stegun 9.4.4/9.4.6, |error| < 4e-8).
#[must_use]
pub fn bessel_j1(x: f64) -> f64 {
    let ax = x.abs();
    let v = if ax <= 3.0 {
        let y = (ax / 3.0).powi(2);
        ax * (0.5
            + y * (-0.562_499_85
                + y * (0.210_935_73
                    + y * (-0.039_542_89
                        + y * (0.004_433_19 + y * (-0.000_317_61 + y * 0.000_011_09))))))
    } else {
        let z = 3.0 / ax;
        let f1 = 0.797_884_56
            + z * (0.000_001_56
                + z * (0.016_596_67
                    + z * (0.000_171_05
                        + z * (-0.002_495_11 + z * (0.001_136_53 - z * 0.000_200_33)))));
        let t1 = ax - 3.0 * std::f64::consts::FRAC_PI_4
            + z * (0.124_996_12
                + z * (0.000_056_50
                    + z * (-0.006_378_79
                        + z * (0.000_743_48 + z * (0.000_798_24 - z * 0.000_291_66)))));
        f1 * t1.cos() / ax.sqrt()
    };
    if x < 0.0 {
        -v
    } else {
        v
    }
}

/// Aberration phase `χ(k)` in rad at spatial frequency `k` (1/Å), Kirkland
/// sign (see [`crate::optics`]).
#[must_use]
pub fn chi(m: &Microscope, k_inv_angstrom: f64) -> f64 {
    chi_df(m, k_inv_angstrom, m.defocus_angstrom)
}

fn chi_df(m: &Microscope, k: f64, defocus: f64) -> f64 {
    let l = m.wavelength_angstrom();
    let (cs, c5) = (m.cs_mm * 1e7, m.c5_mm * 1e7);
    let k2 = k * k;
    std::f64::consts::PI * l * k2 * (0.5 * cs * l * l * k2 - defocus)
        + std::f64::consts::PI / 3.0 * c5 * l.powi(5) * k2 * k2 * k2
}

/// Focal spread σ_Δf in Å from the energy spread (FWHM) and C_c, with the
/// relativistic factor (docs/methods/optics.md).
#[must_use]
pub fn focal_spread_angstrom(m: &Microscope) -> f64 {
    let sigma_e = m.energy_spread_ev / crate::units::FWHM_PER_SIGMA;
    m.cc_mm * 1e7 * sigma_e / (m.high_tension_kv * 1e3)
        * super::relativistic_factor(m.high_tension_kv)
}

fn check_grid(m: &Microscope, (ny, nx): (usize, usize), p: f64) -> Result<()> {
    if !(p.is_finite() && p > 0.0) || ny == 0 || nx == 0 {
        return Err(Error::param(
            "probe grid",
            format!("needs p > 0 and a non-empty grid, got p = {p}"),
        ));
    }
    let kmax = m.aperture_inv_angstrom();
    if 1.0 / (2.0 * p) < kmax {
        return Err(Error::param(
            "probe grid",
            format!(
                "pixel size {p} Å cannot represent the aperture (needs ≤ {:.4} Å)",
                1.0 / (2.0 * kmax)
            ),
        ));
    }
    Ok(())
}

/// Coherent probe wave function `ψ(r)` at defocus `defocus_angstrom` on an
/// `ny × nx` grid of pixel size `p` Å, centred on pixel `(⌊ny/2⌋, ⌊nx/2⌋)`,
/// normalised to `Σ|ψ|² = 1` (the aperture edge is sampled sharply).
///
/// # Errors
/// Invalid microscope; a grid whose Nyquist frequency does not reach the
/// aperture (`1/(2p) < α/λ`).
pub fn probe_wave(
    m: &Microscope,
    (ny, nx): (usize, usize),
    p: f64,
    defocus_angstrom: f64,
) -> Result<Array2<Complex<f64>>> {
    let m = m.validated()?;
    check_grid(&m, (ny, nx), p)?;
    let kmax = m.aperture_inv_angstrom();
    let ky = fft::fftfreq(ny, p);
    let kx = fft::fftfreq(nx, p);
    let (cy, cx) = ((ny / 2) as f64, (nx / 2) as f64);
    let spec = Array2::from_shape_fn((ny, nx), |(i, j)| {
        let k = (ky[i] * ky[i] + kx[j] * kx[j]).sqrt();
        if k > kmax {
            return Complex::new(0.0, 0.0);
        }
        // Shift to the grid centre: e^{−2πi k·r_p}.
        let phase = -chi_df(&m, k, defocus_angstrom)
            - std::f64::consts::TAU * (ky[i] * cy * p + kx[j] * cx * p);
        Complex::from_polar(1.0, phase)
    });
    let psi = fft::ifft2(spec.view());
    let s: f64 = psi.iter().map(|v| v.norm_sqr()).sum();
    if s.is_nan() || s <= 0.0 {
        return Err(Error::Numerical {
            what: "probe".into(),
            reason: "the aperture contains no grid frequency (grid too small)".into(),
        });
    }
    let norm = 1.0 / s.sqrt();
    Ok(psi.mapv(|v| v * norm))
}

/// Probe intensity on an `ny × nx` grid of pixel size `p` Å, centred on
/// pixel `(⌊ny/2⌋, ⌊nx/2⌋)`, normalised to unit sum; the coherent probe
/// ([`probe_wave`]) averaged over the focal spread (5-node Gauss–Hermite)
/// and convolved with the Gaussian source (FWHM `source_size_angstrom`).
///
/// # Errors
/// As [`probe_wave`].
pub fn probe_intensity_grid(
    m: &Microscope,
    (ny, nx): (usize, usize),
    p: f64,
) -> Result<Array2<f64>> {
    let m = m.validated()?;
    check_grid(&m, (ny, nx), p)?;
    let sdf = focal_spread_angstrom(&m);
    let nodes: Vec<(f64, f64)> = if sdf > 0.0 {
        GAUSS_HERMITE_5.to_vec()
    } else {
        vec![(0.0, 1.0)]
    };
    let mut intensity = Array2::<f64>::zeros((ny, nx));
    for (z, w) in nodes {
        let psi = probe_wave(&m, (ny, nx), p, m.defocus_angstrom + sdf * z)?;
        intensity.zip_mut_with(&psi, |a, v| *a += w * v.norm_sqr());
    }
    if m.source_size_angstrom > 0.0 {
        let (ky, kx) = (fft::fftfreq(ny, p), fft::fftfreq(nx, p));
        let sig = m.source_size_angstrom / crate::units::FWHM_PER_SIGMA;
        let mut f = fft::fft2(intensity.mapv(|v| Complex::new(v, 0.0)).view());
        for ((i, j), v) in f.indexed_iter_mut() {
            let q2 = ky[i] * ky[i] + kx[j] * kx[j];
            *v *= (-2.0 * std::f64::consts::PI.powi(2) * sig * sig * q2).exp();
        }
        intensity = fft::ifft2(f.view()).mapv(|v| v.re.max(0.0));
    }
    let s = intensity.sum();
    Ok(intensity.mapv(|v| v / s))
}

/// Radial intensity of an aberration-free probe with a Gaussian source
/// (docs/methods/deconvolution.md, "fastest for symmetric probes"):
/// `P(r) = ∫₀^{2α/λ} T(q) e^{−2π²σ²q²} J₀(2πqr) 2πq dq`,
/// `T(q) = (2/π)[acos s − s√(1 − s²)]`, `s = qλ/(2α)`, normalised to P(0) = 1.
///
/// # Errors
/// Invalid microscope, or one with defocus/aberrations (use
/// [`probe_intensity_grid`]).
pub fn radial_intensity(m: &Microscope, r_angstrom: &[f64]) -> Result<Vec<f64>> {
    let m = m.validated()?;
    if !m.is_aberration_free() || m.energy_spread_ev > 0.0 {
        return Err(Error::param(
            "radial probe",
            "the Hankel form needs an aberration-free probe without focal spread",
        ));
    }
    let qmax = 2.0 * m.aperture_inv_angstrom();
    let sig = m.source_size_angstrom / crate::units::FWHM_PER_SIGMA;
    const N: usize = 2000; // Simpson panels (even)
    let h = qmax / N as f64;
    let weights: Vec<(f64, f64)> = (0..=N)
        .map(|i| {
            let q = i as f64 * h;
            let s = (q / qmax).min(1.0);
            let t = 2.0 / std::f64::consts::PI * (s.acos() - s * (1.0 - s * s).sqrt());
            let simpson = if i == 0 || i == N {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            let g = (-2.0 * std::f64::consts::PI.powi(2) * sig * sig * q * q).exp();
            (q, simpson * h / 3.0 * t * g * std::f64::consts::TAU * q)
        })
        .collect();
    let p0: f64 = weights.iter().map(|(_, w)| w).sum();
    Ok(r_angstrom
        .iter()
        .map(|r| {
            weights
                .iter()
                .map(|(q, w)| w * bessel_j0(std::f64::consts::TAU * q * r))
                .sum::<f64>()
                / p0
        })
        .collect())
}

/// FWHM of the aberration-free probe (with its source size), Å.
///
/// # Errors
/// As [`radial_intensity`].
pub fn probe_fwhm_angstrom(m: &Microscope) -> Result<f64> {
    let l = m.wavelength_angstrom();
    let alpha = m.convergence_mrad * 1e-3;
    let (mut lo, mut hi) = (0.0, 2.0 * l / alpha + 4.0 * m.source_size_angstrom);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if radial_intensity(m, &[mid])?[0] > 0.5 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo + hi)
}

/// First zero of the Airy pattern, `r₀ = 0.609835 λ/α`, Å.
#[must_use]
pub fn airy_first_zero_angstrom(m: &Microscope) -> f64 {
    0.609_835 * m.wavelength_angstrom() / (m.convergence_mrad * 1e-3)
}

/// The probe PSF at a pixel size, as the blind deconvolution starts from it
/// (docs/methods/deconvolution.md): odd support of half-width `h = max(2, round(3r₀/p))` px,
/// centre `⌊size/2⌋`, intensity integrated over each pixel's area (5×5
/// sub-samples), sum 1. Aberration-free probes use the radial form; others
/// a 4× oversampled FFT probe binned to pixels.
///
/// # Errors
/// Invalid microscope; a pixel size coarser than the probe FWHM (the PSF
/// would be a single pixel: deconvolution cannot sharpen it), naming
/// `pixel_size_angstrom` and by how much.
pub fn psf_for_sampling(m: &Microscope, pixel_size_angstrom: f64) -> Result<Array2<f64>> {
    psf_for_sampling_with(m, pixel_size_angstrom, None)
}

/// [`psf_for_sampling`] with an explicit half-width of the support in px
/// (`None`: the default `max(2, round(3r₀/p))`); the size is `2h + 1`.
///
/// # Errors
/// As [`psf_for_sampling`], and a half-width of 0 (`psf_half_width_px`).
pub fn psf_for_sampling_with(
    m: &Microscope,
    pixel_size_angstrom: f64,
    half_width_px: Option<usize>,
) -> Result<Array2<f64>> {
    let m = m.validated()?;
    if half_width_px == Some(0) {
        return Err(Error::param("psf_half_width_px", "must be at least 1"));
    }
    let p = pixel_size_angstrom;
    if !(p.is_finite() && p > 0.0) {
        return Err(Error::param(
            "pixel_size_angstrom",
            format!("must be > 0, got {p}"),
        ));
    }
    let airy = Microscope {
        source_size_angstrom: 0.0,
        energy_spread_ev: 0.0,
        ..m
    };
    let fwhm = if airy.is_aberration_free() {
        probe_fwhm_angstrom(&m)?
    } else {
        0.0
    };
    if airy.is_aberration_free() && p > fwhm {
        return Err(Error::param(
            "pixel_size_angstrom",
            format!(
                "pixel size {p} Å is coarser than the probe FWHM {fwhm:.3} Å ({:.1}× too coarse to sample the probe); use `deconvolve_enabled = false` or finer sampling",
                p / fwhm
            ),
        ));
    }
    let h = half_width_px
        .unwrap_or_else(|| ((3.0 * airy_first_zero_angstrom(&m) / p).round() as usize).max(2));
    let n = 2 * h + 1;
    if n > 4097 {
        return Err(Error::param(
            "pixel_size_angstrom",
            format!("pixel size {p} Å makes a PSF of {n}×{n} px; too fine for this probe"),
        ));
    }
    const SUB: usize = 5;
    let offs: Vec<f64> = (0..SUB)
        .map(|i| (i as f64 + 0.5) / SUB as f64 - 0.5)
        .collect();
    let mut psf = Array2::<f64>::zeros((n, n));
    if m.is_aberration_free() && m.energy_spread_ev == 0.0 {
        // Tabulate P(r) finely and interpolate.
        let rmax = (h as f64 + 1.0) * p * std::f64::consts::SQRT_2;
        let dr = (p / 50.0).min(0.005);
        let nr = (rmax / dr).ceil() as usize + 2;
        let rs: Vec<f64> = (0..nr).map(|i| i as f64 * dr).collect();
        let table = radial_intensity(&m, &rs)?;
        let interp = |r: f64| {
            let x = r / dr;
            let i = (x.floor() as usize).min(nr - 2);
            let t = x - i as f64;
            table[i] * (1.0 - t) + table[i + 1] * t
        };
        for ((y, x), v) in psf.indexed_iter_mut() {
            let (cy, cx) = (y as f64 - h as f64, x as f64 - h as f64);
            let mut acc = 0.0;
            for oy in &offs {
                for ox in &offs {
                    acc += interp((((cy + oy) * p).powi(2) + ((cx + ox) * p).powi(2)).sqrt());
                }
            }
            *v = acc.max(0.0);
        }
    } else {
        // 4× oversampled grid, binned.
        let fine = 4usize;
        let nf = n * fine;
        let grid = probe_intensity_grid(&m, (nf, nf), p / fine as f64)?;
        let c = nf / 2; // centre of the fine grid
        let c0 = c as i64 - (h * fine + fine / 2) as i64;
        for ((y, x), v) in psf.indexed_iter_mut() {
            let mut acc = 0.0;
            for dy in 0..fine {
                for dx in 0..fine {
                    let yy = c0 + (y * fine + dy) as i64;
                    let xx = c0 + (x * fine + dx) as i64;
                    if yy >= 0 && xx >= 0 && (yy as usize) < nf && (xx as usize) < nf {
                        acc += grid[[yy as usize, xx as usize]];
                    }
                }
            }
            *v = acc;
        }
    }
    let s = psf.sum();
    if !(s.is_finite() && s > 0.0) {
        return Err(Error::Numerical {
            what: "probe PSF".into(),
            reason: "zero total intensity".into(),
        });
    }
    Ok(psf.mapv(|v| v / s))
}
