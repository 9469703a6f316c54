//! The gap-series analyses: coupling (eqs. 2–6), dephasing (eqs. 7–8)
//! and gap histograms (docs/methods/phonon.md, docs/guide/phonon.md).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::input::{measured_temperature, read_gap, GapParams};
use super::{check_temperature, Remark};
use crate::error::{Error, Result};
use crate::fft::{Detrend, Window};
use crate::io::cp2k::GapSeries;
use crate::phonon::coupling::{self, Band, HuangRhys, SpectrumOptions};
use crate::phonon::dephasing::{self, Dephasing, FitThreshold};
use crate::phonon::histogram::{self, GapHistogram};
use crate::units::{kt_mev, FWHM_PER_SIGMA};

/// Parameters of [`coupling()`]. `Default` is the command line's, with the
/// run temperature at 300 K (the command line has no default: it asks for
/// the run's thermostat temperature, and so should a caller).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CouplingParams {
    /// How the gap series is read.
    pub input: GapParams,
    /// Thermostat temperature of the run, K (> 0).
    pub temperature_k: f64,
    /// Bands [lo, hi) of the band couplings, meV (the study's 0:4, 4:10,
    /// 10:24 → S at 2, 7, 17 meV); non-empty, not overlapping, below the
    /// Nyquist energy.
    pub bands_mev: Vec<Band>,
    /// Temperatures of the Γ(T) table, K (each > 0).
    pub gamma_temperatures_k: Vec<f64>,
    /// Window (rect: Λ = σ²/2k_BT exactly).
    pub window: Window,
    /// Detrend (none: the mean only).
    pub detrend: Detrend,
    /// Report band couplings per free atom (frozen-core runs).
    pub per_free_atoms: Option<usize>,
}

impl Default for CouplingParams {
    fn default() -> Self {
        let opts = SpectrumOptions::default();
        CouplingParams {
            input: GapParams::default(),
            temperature_k: 300.0,
            bands_mev: coupling::default_bands(),
            gamma_temperatures_k: vec![10.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0],
            window: opts.window,
            detrend: opts.detrend,
            per_free_atoms: None,
        }
    }
}

impl CouplingParams {
    /// Check the parameters before any work.
    ///
    /// # Errors
    /// The first invalid value, naming its field.
    pub fn validate(&self) -> Result<()> {
        self.input.validate()?;
        check_temperature(self.temperature_k)?;
        coupling::validate_bands(&self.bands_mev)?;
        if let Some(t) = self
            .gamma_temperatures_k
            .iter()
            .find(|t| !(t.is_finite() && **t > 0.0))
        {
            return Err(Error::param(
                "gamma_temperatures_k",
                format!("temperatures must be > 0 K, got {t}"),
            ));
        }
        Ok(())
    }

    fn options(&self) -> SpectrumOptions {
        SpectrumOptions {
            window: self.window,
            detrend: self.detrend,
        }
    }
}

/// The coupling of one band.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BandCoupling {
    /// The band.
    pub band: Band,
    /// S_⟨ω⟩ (eq. 6).
    pub s: f64,
    /// S as the tables report it: per free atom with
    /// [`CouplingParams::per_free_atoms`], else `s`.
    pub s_reported: f64,
}

/// σ(T) and Γ(T) at one temperature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GammaAt {
    /// Temperature, K.
    pub temperature_k: f64,
    /// σ(T) = √(2Λk_BT), meV.
    pub sigma_mev: f64,
    /// Γ(T) = 2√(2 ln 2)·σ(T), meV.
    pub gamma_mev: f64,
}

/// Everything [`coupling()`] measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coupling {
    /// The series analysed (after the skipped equilibration).
    pub series: GapSeries,
    /// The Huang–Rhys spectrum at the run temperature.
    pub spectrum: HuangRhys,
    /// Band couplings, in the order of the bands asked for.
    pub bands: Vec<BandCoupling>,
    /// Λ in the bands: Σ S_⟨ω⟩·ħ⟨ω⟩ (per band, not per free atom), meV.
    pub lambda_in_bands_mev: f64,
    /// σ²/(2k_BT), meV (= Λ for the rect window).
    pub lambda_identity_mev: f64,
    /// σ(T) at the run temperature, meV.
    pub sigma_run_mev: f64,
    /// Γ(T) at the run temperature, meV.
    pub gamma_run_mev: f64,
    /// Γ(300 K), meV.
    pub gamma_300k_mev: f64,
    /// 2√(2 ln 2)·σ of the series itself (the AIMD line width), meV.
    pub gamma_aimd_run_mev: f64,
    /// σ(T) and Γ(T) at the temperatures asked for.
    pub gamma: Vec<GammaAt>,
    /// The spectrum with a Hann window and a linear detrend (diagnostic).
    pub diagnostic_hann_linear: HuangRhys,
    /// Mean temperature of the `.ener` file after the skip, K.
    pub measured_temperature_k: Option<f64>,
}

/// The coupling analysis of the gap series at `path`: read it as
/// `p.input` says (checking the mean temperature of the `.ener` file
/// against the thermostat's, a remark when off by more than 10 %), then
/// [`coupling_of()`]. Remarks go to `remarks` as they arise.
///
/// # Errors
/// Invalid parameters; the errors of [`read_gap`] and [`coupling_of()`].
pub fn coupling(path: &Path, p: &CouplingParams, remarks: &mut Vec<Remark>) -> Result<Coupling> {
    p.validate()?;
    let g = read_gap(path, &p.input, remarks)?;
    let measured = match (&p.input.ener, &g.ener_rows) {
        (Some(e), Some(rows)) => Some(measured_temperature(
            e,
            rows,
            p.input.skip_fs,
            p.temperature_k,
            remarks,
        )?),
        _ => None,
    };
    let mut c = coupling_of(g.series, p)?;
    c.measured_temperature_k = measured;
    Ok(c)
}

/// The coupling analysis of a gap series in memory: the Huang–Rhys
/// spectrum (eq. 5), band couplings (eq. 6), Λ, σ(T) and Γ(T), and the
/// Hann + linear-detrend spectrum as a diagnostic. `p.input` is not used.
///
/// # Errors
/// Invalid parameters; the errors of
/// [`huang_rhys`](coupling::huang_rhys); a band beyond the Nyquist energy.
///
/// # Examples
/// A gap oscillating as one 7-meV mode puts its coupling in the 4–10 meV
/// band:
/// ```
/// use qdscope::io::cp2k::GapSeries;
/// use qdscope::phonon::analysis::{coupling_of, CouplingParams};
///
/// // 10 ps every 5 fs; 7 meV ↔ 1.69 THz ↔ a period of 591 fs.
/// let (n, dt_fs) = (2000, 5.0);
/// let w = 2.0 * std::f64::consts::PI * 7.0 / (1e3 * qdscope::units::H_EV_FS);
/// let gap_mev = (0..n)
///     .map(|i| 2400.0 + 3.0 * (w * i as f64 * dt_fs).cos())
///     .collect();
/// let series = GapSeries {
///     gap_mev,
///     dt_fs,
///     source: "two-column",
///     homo_index: None,
///     near_crossings: None,
///     blocks_dropped_truncated: 0,
/// };
/// let c = coupling_of(series, &CouplingParams { temperature_k: 10.0, ..Default::default() })?;
/// let s: Vec<f64> = c.bands.iter().map(|b| b.s).collect();
/// assert!(s[1] > 10.0 * (s[0] + s[2]), "{s:?}");
/// assert!((c.spectrum.lambda_mev - c.lambda_identity_mev).abs() < 1e-9 * c.lambda_identity_mev);
/// # Ok::<(), qdscope::Error>(())
/// ```
pub fn coupling_of(series: GapSeries, p: &CouplingParams) -> Result<Coupling> {
    p.validate()?;
    let t = p.temperature_k;
    let hr = coupling::huang_rhys(&series.gap_mev, series.dt_fs, t, p.options())?;
    let nyq = hr.energy_mev.last().copied().unwrap_or(0.0);
    if let Some(b) = p.bands_mev.iter().find(|b| b.lo_mev >= nyq) {
        return Err(Error::param(
            "bands_mev",
            format!(
                "band [{}, {}) lies beyond the Nyquist energy {nyq:.3} meV",
                b.lo_mev, b.hi_mev
            ),
        ));
    }
    let s_band = hr.band_couplings(&p.bands_mev);
    let scale = p.per_free_atoms.map_or(1.0, |n| 1.0 / n.max(1) as f64);
    let diagnostic_hann_linear = coupling::huang_rhys(
        &series.gap_mev,
        series.dt_fs,
        t,
        SpectrumOptions {
            window: Window::Hann,
            detrend: Detrend::Linear,
        },
    )?;
    Ok(Coupling {
        bands: p
            .bands_mev
            .iter()
            .zip(&s_band)
            .map(|(b, s)| BandCoupling {
                band: *b,
                s: *s,
                s_reported: s * scale,
            })
            .collect(),
        lambda_in_bands_mev: s_band
            .iter()
            .zip(&p.bands_mev)
            .map(|(s, b)| s * b.centre_mev())
            .sum(),
        lambda_identity_mev: hr.variance_mev2 / (2.0 * kt_mev(t)),
        sigma_run_mev: hr.sigma_mev(t),
        gamma_run_mev: hr.gamma_mev(t),
        gamma_300k_mev: hr.gamma_mev(300.0),
        gamma_aimd_run_mev: FWHM_PER_SIGMA * hr.variance_mev2.sqrt(),
        gamma: p
            .gamma_temperatures_k
            .iter()
            .map(|&tt| GammaAt {
                temperature_k: tt,
                sigma_mev: hr.sigma_mev(tt),
                gamma_mev: hr.gamma_mev(tt),
            })
            .collect(),
        diagnostic_hann_linear,
        measured_temperature_k: None,
        spectrum: hr,
        series,
    })
}

/// Parameters of [`dephasing()`]. `Default` is the command line's, with the
/// run temperature at 300 K (see [`CouplingParams`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DephasingParams {
    /// How the gap series is read.
    pub input: GapParams,
    /// Temperature of the run, K (> 0; the spectrum's; the cumulant uses
    /// the classical ACF).
    pub temperature_k: f64,
    /// Fine time step of g(t) and D(t), fs (0.1; it must be shorter than
    /// the time window, half the run).
    pub dt_fine_fs: f64,
    /// End of the Gaussian-fit window.
    pub fit_threshold: FitThreshold,
}

impl Default for DephasingParams {
    fn default() -> Self {
        DephasingParams {
            input: GapParams::default(),
            temperature_k: 300.0,
            dt_fine_fs: 0.1,
            fit_threshold: FitThreshold::Percent1,
        }
    }
}

impl DephasingParams {
    /// Check the parameters before any work (the fine step is checked
    /// against the series' time window when it is known).
    ///
    /// # Errors
    /// The first invalid value, naming its field.
    pub fn validate(&self) -> Result<()> {
        self.input.validate()?;
        check_temperature(self.temperature_k)
    }
}

/// Everything [`dephasing()`] measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DephasingRun {
    /// The series analysed (after the skipped equilibration).
    pub series: GapSeries,
    /// Its Huang–Rhys spectrum (rect window) at the run temperature.
    pub spectrum: HuangRhys,
    /// g(t), D(t) and the line widths from the spectrum.
    pub dephasing: Dephasing,
    /// The biased gap autocorrelation per lag of the series, meV².
    pub acf_mev2: Vec<f64>,
    /// g(t) from the ACF by the trapezoid rule, per lag.
    pub g_acf_trapezoid: Vec<f64>,
}

/// The dephasing analysis of the gap series at `path` (eqs. 7–8): the
/// spectral cumulant g(t), D(t) = e^{−g}, the Gaussian-fit and exact line
/// widths, and the gap ACF with its trapezoid g(t). Remarks of reading go
/// to `remarks`.
///
/// # Errors
/// Invalid parameters; the errors of [`read_gap`]; fewer than 8 samples;
/// the errors of [`dephasing::dephasing_from_spectrum`].
pub fn dephasing(
    path: &Path,
    p: &DephasingParams,
    remarks: &mut Vec<Remark>,
) -> Result<DephasingRun> {
    p.validate()?;
    let g = read_gap(path, &p.input, remarks)?.series;
    if g.gap_mev.len() < 8 {
        return Err(Error::Empty {
            what: path.display().to_string(),
            reason: format!(
                "{} samples: too short for a dephasing analysis (need ≥ 8)",
                g.gap_mev.len()
            ),
        });
    }
    let hr = coupling::huang_rhys(
        &g.gap_mev,
        g.dt_fs,
        p.temperature_k,
        SpectrumOptions::default(),
    )?;
    let d = dephasing::dephasing_from_spectrum(&hr, p.dt_fine_fs, p.fit_threshold)?;
    let acf = dephasing::acf_biased(&g.gap_mev);
    let g_trap = dephasing::g_acf_trapezoid(&acf, g.dt_fs);
    Ok(DephasingRun {
        series: g,
        spectrum: hr,
        dephasing: d,
        acf_mev2: acf,
        g_acf_trapezoid: g_trap,
    })
}

/// Parameters of [`histograms()`]. `Default` is the command line's.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HistogramParams {
    /// How each gap series is read (`dt_fs`, `skip_fs` and
    /// `allow_truncated` apply to every run).
    pub input: GapParams,
    /// Labels of the runs (empty: the file stems), one per run.
    pub labels: Vec<String>,
    /// Bin width, meV (> 0; `None`: Freedman–Diaconis).
    pub bin_width_mev: Option<f64>,
}

impl HistogramParams {
    /// Check the parameters before any work (the bin width is checked with
    /// each series, naming its file).
    ///
    /// # Errors
    /// The first invalid value, naming its field.
    pub fn validate(&self) -> Result<()> {
        self.input.validate()
    }
}

/// The histogram of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramRun {
    /// Its label.
    pub label: String,
    /// The histogram and its Gaussian summaries.
    pub histogram: GapHistogram,
    /// Cut-off MO blocks dropped at the end of its MOLog.
    pub blocks_dropped_truncated: usize,
}

/// Gap histograms of several runs (full, frozen shell, frozen core) with
/// their moment and fitted widths, in the order of `paths`. Remarks of
/// reading go to `remarks`.
///
/// # Errors
/// Invalid parameters; a number of labels other than the number of runs;
/// the errors of [`read_gap`] and of
/// [`gap_histogram`](histogram::gap_histogram) (naming the file).
pub fn histograms(
    paths: &[PathBuf],
    p: &HistogramParams,
    remarks: &mut Vec<Remark>,
) -> Result<Vec<HistogramRun>> {
    p.validate()?;
    if !p.labels.is_empty() && p.labels.len() != paths.len() {
        return Err(Error::param(
            "labels",
            format!("{} labels for {} runs", p.labels.len(), paths.len()),
        ));
    }
    let mut runs = Vec::with_capacity(paths.len());
    for (i, path) in paths.iter().enumerate() {
        let g = read_gap(path, &p.input, remarks)?.series;
        let label = p.labels.get(i).cloned().unwrap_or_else(|| {
            path.file_stem()
                .map_or("run".into(), |s| s.to_string_lossy().into())
        });
        let h = histogram::gap_histogram(&g.gap_mev, p.bin_width_mev)
            .map_err(|e| e.context(path.display()))?;
        runs.push(HistogramRun {
            label,
            histogram: h,
            blocks_dropped_truncated: g.blocks_dropped_truncated,
        });
    }
    Ok(runs)
}
