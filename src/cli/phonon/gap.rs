//! Gap-series commands: `coupling` (eqs. 2–6), `dephasing` (eqs. 7–8),
//! `histogram` (docs/methods/phonon.md).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{check_measured_t_of, check_temperature, GapInput};
use crate::error::{Error, Result};
use crate::fft::{Detrend, Window};
use crate::io::cp2k::GapSeries;
use crate::phonon::coupling::{self, Band, HuangRhys, SpectrumOptions};
use crate::phonon::dephasing::{self, FitThreshold};
use crate::phonon::histogram;
use crate::report::{self, fmt_f64, plot};
use crate::units::{kt_mev, MEV_TO_CM1, MEV_TO_THZ};

/// Arguments of `phonon coupling`.
#[derive(Debug, Clone, clap::Args)]
pub struct CouplingArgs {
    #[command(flatten)]
    pub input: GapInput,
    /// Output directory.
    #[arg(short, long = "output", value_name = "DIR")]
    pub output: PathBuf,
    /// Thermostat temperature of the run, K (the SI's runs: 10 K).
    #[arg(long, value_name = "K")]
    pub temperature_k: f64,
    /// Bands lo:hi in meV, comma-separated (default the study's 0:4,4:10,10:24 → 2, 7, 17 meV).
    #[arg(long, value_name = "LO:HI,...", default_value = "0:4,4:10,10:24")]
    pub bands_mev: String,
    /// Temperatures for the Γ(T) table, K.
    #[arg(
        long,
        value_name = "K,...",
        value_delimiter = ',',
        default_value = "10,50,100,150,200,250,300"
    )]
    pub temps: Vec<f64>,
    /// Window: rect (default, Λ = σ²/2k_BT exactly) or hann.
    #[arg(long, value_enum, default_value_t = Window::Rect)]
    pub window: Window,
    /// Detrend: none (mean only, default) or linear.
    #[arg(long, value_enum, default_value_t = Detrend::None)]
    pub detrend: Detrend,
    /// Divide band couplings by this number of free atoms (frozen-core runs: S per free atom).
    #[arg(long, value_name = "N")]
    pub per_free_atoms: Option<usize>,
}

/// Arguments of `phonon dephasing`.
#[derive(Debug, Clone, clap::Args)]
pub struct DephasingArgs {
    #[command(flatten)]
    pub input: GapInput,
    /// Output directory.
    #[arg(short, long = "output", value_name = "DIR")]
    pub output: PathBuf,
    /// Temperature of the run, K (metadata; the cumulant uses the classical ACF).
    #[arg(long, value_name = "K")]
    pub temperature_k: f64,
    /// Fine time step of g(t) and D(t), fs.
    #[arg(long, value_name = "FS", default_value_t = 0.1)]
    pub dt_fine_fs: f64,
    /// End of the Gaussian-fit window: D ≤ 0.01 (percent1) or D ≤ e^{−1/2} (half-e).
    #[arg(long, value_enum, default_value_t = Threshold::Percent1)]
    pub fit_threshold: Threshold,
}

/// Fit-window threshold (CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Threshold {
    /// D ≤ 0.01.
    Percent1,
    /// D ≤ e^{−1/2}.
    HalfE,
}

/// Arguments of `phonon histogram`.
#[derive(Debug, Clone, clap::Args)]
pub struct HistogramArgs {
    /// Gap series, one per run (MOLog or two columns).
    #[arg(required = true)]
    pub gaps: Vec<PathBuf>,
    /// Output directory.
    #[arg(short, long = "output", value_name = "DIR")]
    pub output: PathBuf,
    /// Labels of the runs, comma-separated (default: file stems).
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Bin width, meV (default Freedman–Diaconis).
    #[arg(long, value_name = "MEV")]
    pub bin_width_mev: Option<f64>,
    /// Time step in fs (for MOLog inputs).
    #[arg(long, value_name = "FS")]
    pub dt_fs: Option<f64>,
    /// Equilibration to drop from the start of each run, fs.
    #[arg(long, value_name = "FS", default_value_t = 0.0)]
    pub skip_fs: f64,
    /// Use the complete MO blocks of MOLogs whose last block was cut off (killed jobs).
    #[arg(long)]
    pub allow_truncated: bool,
}

#[derive(Serialize)]
struct SeriesMeta {
    input: String,
    source: &'static str,
    n: usize,
    dt_fs: f64,
    t_total_fs: f64,
    bin_mev: f64,
    nyquist_mev: f64,
    window: Window,
    detrend: Detrend,
    temperature_k: f64,
    homo_index: Option<usize>,
    near_crossing_steps: Option<usize>,
    blocks_dropped_truncated: usize,
}

fn meta(input: &Path, g: &GapSeries, hr: &HuangRhys) -> SeriesMeta {
    SeriesMeta {
        input: input.display().to_string(),
        source: g.source,
        n: hr.n,
        dt_fs: hr.dt_fs,
        t_total_fs: hr.n as f64 * hr.dt_fs,
        bin_mev: hr.bin_mev,
        nyquist_mev: hr.energy_mev.last().copied().unwrap_or(0.0),
        window: hr.options.window,
        detrend: hr.options.detrend,
        temperature_k: hr.temperature_k,
        homo_index: g.homo_index,
        near_crossing_steps: g.near_crossings,
        blocks_dropped_truncated: g.blocks_dropped_truncated,
    }
}

/// `huang_rhys.csv`: S_k per bin with the cumulative Λ.
fn write_huang_rhys_csv(out: &Path, hr: &HuangRhys) -> Result<()> {
    let mut cum = 0.0;
    let rows: Vec<Vec<String>> = (0..hr.s.len())
        .map(|k| {
            cum += hr.s[k] * hr.energy_mev[k];
            vec![
                fmt_f64(hr.energy_mev[k]),
                fmt_f64(hr.energy_mev[k] * MEV_TO_THZ),
                fmt_f64(hr.energy_mev[k] * MEV_TO_CM1),
                fmt_f64(hr.power_mev2[k]),
                fmt_f64(hr.s[k]),
                fmt_f64(hr.s[k] / hr.bin_mev),
                fmt_f64(cum),
            ]
        })
        .collect();
    report::write_csv(
        &out.join("huang_rhys.csv"),
        &[
            "energy_mev",
            "frequency_thz",
            "wavenumber_cm1",
            "power_mev2",
            "s",
            "s_per_mev",
            "cumulative_lambda_mev",
        ],
        &rows,
    )
}

/// `huang_rhys.png`: S per meV up to 40 meV or 1.2× the highest band.
fn huang_rhys_png(out: &Path, hr: &HuangRhys, bands: &[Band], t: f64) -> Result<()> {
    let pts: Vec<(f64, f64)> = (1..hr.s.len())
        .filter(|&k| {
            hr.energy_mev[k]
                <= 40.0_f64.max(bands.iter().map(|b| b.hi_mev).fold(0.0, f64::max) * 1.2)
        })
        .map(|k| (hr.energy_mev[k], hr.s[k] / hr.bin_mev))
        .collect();
    plot::xy_png(
        &out.join("huang_rhys.png"),
        &format!(
            "Huang–Rhys spectrum: ΣS = {:.2}, Λ = {:.2} meV, Γ(300 K) = {:.1} meV",
            hr.s_total,
            hr.lambda_mev,
            hr.gamma_mev(300.0)
        ),
        "ħω (meV)",
        "S per meV (1/meV)",
        &[plot::Series {
            label: format!("T = {t} K"),
            points: pts,
            line: true,
            y_err: None,
        }],
    )
}

/// Coupling analysis of a gap series, written into `dir`.
///
/// # Errors
/// Invalid parameters, bands beyond Nyquist, I/O errors.
#[allow(clippy::too_many_arguments)]
pub fn coupling_outputs(
    dir: &Path,
    input: &Path,
    g: &GapSeries,
    t: f64,
    bands: &[Band],
    temps: &[f64],
    opts: SpectrumOptions,
    per_free: Option<usize>,
) -> Result<HuangRhys> {
    check_temperature(t)?;
    let hr = coupling::huang_rhys(&g.gap_mev, g.dt_fs, t, opts)?;
    let nyq = hr.energy_mev.last().copied().unwrap_or(0.0);
    if let Some(b) = bands.iter().find(|b| b.lo_mev >= nyq) {
        return Err(Error::param(
            "--bands-mev",
            format!(
                "band [{}, {}) lies beyond the Nyquist energy {nyq:.3} meV",
                b.lo_mev, b.hi_mev
            ),
        ));
    }
    if let Some(tt) = temps.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
        return Err(Error::param(
            "--temps",
            format!("temperatures must be > 0 K, got {tt}"),
        ));
    }
    let s_band = hr.band_couplings(bands);
    let scale = per_free.map_or(1.0, |n| 1.0 / n.max(1) as f64);
    // Diagnostic row: hann + linear.
    let diag = coupling::huang_rhys(
        &g.gap_mev,
        g.dt_fs,
        t,
        SpectrumOptions {
            window: Window::Hann,
            detrend: Detrend::Linear,
        },
    )?;
    let set = crate::report::OutputSet::new(dir)?;
    let out = set.dir().to_path_buf();
    write_huang_rhys_csv(&out, &hr)?;
    let brows: Vec<Vec<String>> = bands
        .iter()
        .zip(&s_band)
        .map(|(b, s)| {
            vec![
                fmt_f64(b.lo_mev),
                fmt_f64(b.hi_mev),
                fmt_f64(b.centre_mev()),
                fmt_f64(s * scale),
                fmt_f64(s * b.centre_mev()),
            ]
        })
        .collect();
    report::write_csv(
        &out.join("bands.csv"),
        &[
            "lo_mev",
            "hi_mev",
            "centre_mev",
            "s_band",
            "lambda_share_mev",
        ],
        &brows,
    )?;
    let grows: Vec<Vec<String>> = temps
        .iter()
        .map(|&tt| {
            vec![
                fmt_f64(tt),
                fmt_f64(hr.sigma_mev(tt)),
                fmt_f64(hr.gamma_mev(tt)),
            ]
        })
        .collect();
    report::write_csv(
        &out.join("gamma.csv"),
        &["temperature_k", "sigma_mev", "gamma_mev"],
        &grows,
    )?;
    let in_bands: f64 = s_band
        .iter()
        .zip(bands)
        .map(|(s, b)| s * b.centre_mev())
        .sum();
    let summary = serde_json::json!({
        "metadata": meta(input, g, &hr),
        "s_total": hr.s_total,
        "lambda_mev": hr.lambda_mev,
        "variance_mev2": hr.variance_mev2,
        "power_sum_mev2": hr.power_sum_mev2,
        "lambda_identity_sigma2_over_2kt_mev": hr.variance_mev2 / (2.0 * kt_mev(t)),
        "bands": bands.iter().zip(&s_band).map(|(b, s)| serde_json::json!({
            "lo_mev": b.lo_mev, "hi_mev": b.hi_mev, "centre_mev": b.centre_mev(), "s": s * scale})).collect::<Vec<_>>(),
        "s_per_free_atom": per_free.is_some(),
        "lambda_in_bands_mev": in_bands,
        "sigma_run_mev": hr.sigma_mev(t),
        "gamma_run_mev": hr.gamma_mev(t),
        "gamma_300k_mev": hr.gamma_mev(300.0),
        "gamma_aimd_run_mev": crate::units::FWHM_PER_SIGMA * hr.variance_mev2.sqrt(),
        "diagnostic_hann_linear": {"s_total": diag.s_total, "lambda_mev": diag.lambda_mev},
        "warnings": hr.warnings,
    });
    report::write_json(&out.join("coupling.json"), &summary)?;
    huang_rhys_png(&out, &hr, bands, t)?;
    set.commit()?;
    Ok(hr)
}

pub(super) fn run_coupling(a: &CouplingArgs) -> Result<()> {
    let bands = coupling::parse_bands(&a.bands_mev)?;
    let (g, rows) = a.input.load_with_ener()?;
    if let (Some(e), Some(rows)) = (&a.input.ener, &rows) {
        check_measured_t_of(e, rows, a.input.skip_fs, a.temperature_k)?;
    }
    let hr = coupling_outputs(
        &a.output,
        &a.input.gap,
        &g,
        a.temperature_k,
        &bands,
        &a.temps,
        SpectrumOptions {
            window: a.window,
            detrend: a.detrend,
        },
        a.per_free_atoms,
    )?;
    for w in &hr.warnings.0 {
        eprintln!("qdscope: warning: {}: {w}", a.input.gap.display());
    }
    let s = hr.band_couplings(&bands);
    println!(
        "{}: {} samples × {} fs; ΣS = {:.3}, Λ = {:.3} meV; bands {}; Γ({} K) = {:.2} meV, Γ(300 K) = {:.2} meV",
        a.input.gap.display(),
        hr.n,
        hr.dt_fs,
        hr.s_total,
        hr.lambda_mev,
        bands
            .iter()
            .zip(&s)
            .map(|(b, s)| format!("S{}={s:.3}", b.centre_mev()))
            .collect::<Vec<_>>()
            .join(" "),
        a.temperature_k,
        hr.gamma_mev(a.temperature_k),
        hr.gamma_mev(300.0)
    );
    Ok(())
}

/// `acf.csv`: the biased gap ACF and its trapezoid g(t) per lag.
fn write_acf_csv(out: &Path, acf: &[f64], g_trap: &[f64], dt_fs: f64) -> Result<()> {
    let rows: Vec<Vec<String>> = acf
        .iter()
        .zip(g_trap)
        .enumerate()
        .map(|(j, (c, gt))| vec![fmt_f64(j as f64 * dt_fs), fmt_f64(*c), fmt_f64(*gt)])
        .collect();
    report::write_csv(
        &out.join("acf.csv"),
        &["lag_fs", "acf_mev2", "g_acf_trapezoid"],
        &rows,
    )
}

pub(super) fn run_dephasing(a: &DephasingArgs) -> Result<()> {
    check_temperature(a.temperature_k)?;
    let g = a.input.load()?;
    if g.gap_mev.len() < 8 {
        return Err(Error::Empty {
            what: a.input.gap.display().to_string(),
            reason: format!(
                "{} samples: too short for a dephasing analysis (need ≥ 8)",
                g.gap_mev.len()
            ),
        });
    }
    let hr = coupling::huang_rhys(
        &g.gap_mev,
        g.dt_fs,
        a.temperature_k,
        SpectrumOptions::default(),
    )?;
    let thr = match a.fit_threshold {
        Threshold::Percent1 => FitThreshold::Percent1,
        Threshold::HalfE => FitThreshold::HalfE,
    };
    let d = dephasing::dephasing_from_spectrum(&hr, a.dt_fine_fs, thr)?;
    let acf = dephasing::acf_biased(&g.gap_mev);
    let g_trap = dephasing::g_acf_trapezoid(&acf, g.dt_fs);
    let set = crate::report::OutputSet::new(&a.output)?;
    let out = set.dir().to_path_buf();
    let rows: Vec<Vec<String>> = (0..d.t_fs.len())
        .map(|i| {
            let t = d.t_fs[i];
            vec![
                fmt_f64(t),
                fmt_f64(d.g[i]),
                fmt_f64(d.d[i]),
                fmt_f64((-t * t / (2.0 * d.t2_star_fs * d.t2_star_fs)).exp()),
            ]
        })
        .collect();
    report::write_csv(
        &out.join("dephasing.csv"),
        &["t_fs", "g", "d", "d_gaussian_fit"],
        &rows,
    )?;
    write_acf_csv(&out, &acf, &g_trap, g.dt_fs)?;
    let summary = serde_json::json!({
        "metadata": meta(&a.input.gap, &g, &hr),
        "sigma_mev": hr.variance_mev2.sqrt(),
        "t2_star_fs": d.t2_star_fs,
        "gamma_fit_mev": d.gamma_fit_mev,
        "fit_window_fs": d.fit_window_fs,
        "fit_threshold": d.fit_threshold,
        "fwhm_exact_mev": d.fwhm_exact_mev,
        "gamma_static_mev": d.gamma_static_mev,
        "conventions": {
            "t2_star_fs": "SI eq. 8, Hefei-NAMD: D = exp(-t^2/(2 t2*^2))",
            "tau_gauss_fs": d.tau_gauss_fs,
            "tau_gauss_note": "PYXAID: D = exp(-(t/tau)^2), tau = sqrt(2) t2*",
            "tau_sigma_fs": d.tau_sigma_fs,
            "tau_sigma_note": "Libra: sqrt(12/5) hbar/sigma",
        },
        "dt_fine_fs": d.dt_fine_fs,
        "warnings": d.warnings,
    });
    report::write_json(&out.join("dephasing.json"), &summary)?;
    let tmax = d.fit_window_fs[1] * 3.0;
    let pick = |f: &dyn Fn(usize) -> f64| -> Vec<(f64, f64)> {
        (0..d.t_fs.len())
            .filter(|&i| d.t_fs[i] <= tmax)
            .step_by(5)
            .map(|i| (d.t_fs[i], f(i)))
            .collect()
    };
    plot::xy_png(
        &out.join("dephasing.png"),
        &format!(
            "D(t): t2* = {:.1} fs, Γ_fit = {:.1} meV, exact FWHM = {}",
            d.t2_star_fs,
            d.gamma_fit_mev,
            d.fwhm_exact_mev
                .map_or("n/a".into(), |f| format!("{f:.1} meV"))
        ),
        "t (fs)",
        "D(t)",
        &[
            plot::Series {
                label: "D = exp(-g)".into(),
                points: pick(&|i| d.d[i]),
                line: true,
                y_err: None,
            },
            plot::Series {
                label: "Gaussian fit".into(),
                points: pick(&|i| {
                    (-d.t_fs[i] * d.t_fs[i] / (2.0 * d.t2_star_fs * d.t2_star_fs)).exp()
                }),
                line: true,
                y_err: None,
            },
        ],
    )?;
    set.commit()?;
    for w in &d.warnings.0 {
        eprintln!("qdscope: warning: {}: {w}", a.input.gap.display());
    }
    println!(
        "{}: σ = {:.3} meV; t2* = {:.2} fs, Γ_fit = {:.3} meV (window 0–{:.1} fs); exact FWHM {}",
        a.input.gap.display(),
        hr.variance_mev2.sqrt(),
        d.t2_star_fs,
        d.gamma_fit_mev,
        d.fit_window_fs[1],
        d.fwhm_exact_mev
            .map_or("n/a".into(), |f| format!("{f:.3} meV"))
    );
    Ok(())
}

pub(super) fn run_histogram(a: &HistogramArgs) -> Result<()> {
    if !a.labels.is_empty() && a.labels.len() != a.gaps.len() {
        return Err(Error::param(
            "--labels",
            format!("{} labels for {} runs", a.labels.len(), a.gaps.len()),
        ));
    }
    let mut hs = Vec::new();
    for (i, p) in a.gaps.iter().enumerate() {
        let g = GapInput {
            allow_truncated: a.allow_truncated,
            ..GapInput::plain(p.clone(), a.dt_fs, a.skip_fs)
        }
        .load()?;
        let label = a.labels.get(i).cloned().unwrap_or_else(|| {
            p.file_stem()
                .map_or("run".into(), |s| s.to_string_lossy().into())
        });
        let h = histogram::gap_histogram(&g.gap_mev, a.bin_width_mev)
            .map_err(|e| e.context(p.display()))?;
        hs.push((label, h, g.blocks_dropped_truncated));
    }
    let set = crate::report::OutputSet::new(&a.output)?;
    let out = set.dir().to_path_buf();
    let mut rows = Vec::new();
    for (l, h, _) in &hs {
        for (c, n) in h.centres_mev.iter().zip(&h.counts) {
            rows.push(vec![l.clone(), fmt_f64(*c), n.to_string()]);
        }
    }
    report::write_csv(
        &out.join("histogram.csv"),
        &["run", "gap_mev", "count"],
        &rows,
    )?;
    let runs: Vec<serde_json::Value> = hs
        .iter()
        .map(|(l, h, dropped)| {
            serde_json::json!({"run": l, "n": h.n, "blocks_dropped_truncated": dropped, "bin_width_mev": h.bin_width_mev, "mean_mev": h.mean_mev,
                "sd_mev": h.sd_mev, "fwhm_moment_mev": h.fwhm_moment_mev, "fit_mean_mev": h.fit_mean_mev,
                "fit_sigma_mev": h.fit_sigma_mev, "fwhm_fit_mev": h.fwhm_fit_mev, "fit_converged": h.fit_converged})
        })
        .collect();
    report::write_json(
        &out.join("histogram.json"),
        &serde_json::json!({"runs": runs}),
    )?;
    let series: Vec<plot::Series> = hs
        .iter()
        .map(|(l, h, _)| plot::Series {
            label: format!(
                "{l}: FWHM {:.0} (moment) / {:.0} (fit) meV",
                h.fwhm_moment_mev, h.fwhm_fit_mev
            ),
            points: h
                .centres_mev
                .iter()
                .zip(&h.counts)
                .map(|(c, n)| (*c, *n as f64 / (h.n as f64 * h.bin_width_mev)))
                .collect(),
            line: true,
            y_err: None,
        })
        .collect();
    plot::xy_png(
        &out.join("histogram.png"),
        "HOMO–LUMO gap distributions",
        "gap (meV)",
        "probability density (1/meV)",
        &series,
    )?;
    set.commit()?;
    for (l, h, _) in &hs {
        println!(
            "{l}: {} samples, mean {:.1} meV, FWHM {:.2} meV (moments) / {:.2} meV (Gaussian fit)",
            h.n, h.mean_mev, h.fwhm_moment_mev, h.fwhm_fit_mev
        );
    }
    Ok(())
}
