//! Gap-series commands: `coupling` (eqs. 2–6), `dephasing` (eqs. 7–8),
//! `histogram` (docs/methods/phonon.md).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{print_remarks, GapInput};
use qdscope::error::Result;
use qdscope::fft::{Detrend, Window};
use qdscope::io::cp2k::GapSeries;
use qdscope::phonon::analysis::{
    self, BandCoupling, Coupling, CouplingParams, DephasingParams, DephasingRun, GapParams,
    HistogramParams, HistogramRun,
};
use qdscope::phonon::coupling::{self, HuangRhys};
use qdscope::phonon::dephasing::FitThreshold;
use qdscope::report::{self, fmt_f64, plot};
use qdscope::units::{MEV_TO_CM1, MEV_TO_THZ};

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
fn huang_rhys_png(out: &Path, hr: &HuangRhys, bands: &[BandCoupling], t: f64) -> Result<()> {
    let pts: Vec<(f64, f64)> = (1..hr.s.len())
        .filter(|&k| {
            hr.energy_mev[k]
                <= 40.0_f64.max(bands.iter().map(|b| b.band.hi_mev).fold(0.0, f64::max) * 1.2)
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

/// `bands.csv`: each band with its coupling (per free atom when asked)
/// and its share of Λ.
fn write_bands_csv(out: &Path, c: &Coupling) -> Result<()> {
    let rows: Vec<Vec<String>> = c
        .bands
        .iter()
        .map(|b| {
            vec![
                fmt_f64(b.band.lo_mev),
                fmt_f64(b.band.hi_mev),
                fmt_f64(b.band.centre_mev()),
                fmt_f64(b.s_reported),
                fmt_f64(b.s * b.band.centre_mev()),
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
        &rows,
    )
}

/// `gamma.csv`: σ(T) and Γ(T) at the temperatures asked for.
fn write_gamma_csv(out: &Path, c: &Coupling) -> Result<()> {
    let rows: Vec<Vec<String>> = c
        .gamma
        .iter()
        .map(|g| {
            vec![
                fmt_f64(g.temperature_k),
                fmt_f64(g.sigma_mev),
                fmt_f64(g.gamma_mev),
            ]
        })
        .collect();
    report::write_csv(
        &out.join("gamma.csv"),
        &["temperature_k", "sigma_mev", "gamma_mev"],
        &rows,
    )
}

/// `coupling.json`: the totals, the bands, Γ and the metadata.
fn write_coupling_json(out: &Path, input: &Path, c: &Coupling, per_free: bool) -> Result<()> {
    let hr = &c.spectrum;
    let summary = serde_json::json!({
        "metadata": meta(input, &c.series, hr),
        "s_total": hr.s_total,
        "lambda_mev": hr.lambda_mev,
        "variance_mev2": hr.variance_mev2,
        "power_sum_mev2": hr.power_sum_mev2,
        "lambda_identity_sigma2_over_2kt_mev": c.lambda_identity_mev,
        "bands": c.bands.iter().map(|b| serde_json::json!({
            "lo_mev": b.band.lo_mev, "hi_mev": b.band.hi_mev, "centre_mev": b.band.centre_mev(), "s": b.s_reported})).collect::<Vec<_>>(),
        "s_per_free_atom": per_free,
        "lambda_in_bands_mev": c.lambda_in_bands_mev,
        "sigma_run_mev": c.sigma_run_mev,
        "gamma_run_mev": c.gamma_run_mev,
        "gamma_300k_mev": c.gamma_300k_mev,
        "gamma_aimd_run_mev": c.gamma_aimd_run_mev,
        "diagnostic_hann_linear": {"s_total": c.diagnostic_hann_linear.s_total, "lambda_mev": c.diagnostic_hann_linear.lambda_mev},
        "warnings": hr.warnings,
    });
    report::write_json(&out.join("coupling.json"), &summary)
}

/// Every output of a coupling analysis, written into `dir` (all or none).
///
/// # Errors
/// I/O errors.
fn write_coupling(dir: &Path, input: &Path, c: &Coupling, per_free: bool) -> Result<()> {
    let set = qdscope::report::OutputSet::new(dir)?;
    let out = set.dir().to_path_buf();
    write_huang_rhys_csv(&out, &c.spectrum)?;
    write_bands_csv(&out, c)?;
    write_gamma_csv(&out, c)?;
    write_coupling_json(&out, input, c, per_free)?;
    huang_rhys_png(&out, &c.spectrum, &c.bands, c.spectrum.temperature_k)?;
    set.commit()
}

impl CouplingArgs {
    /// The library's parameters (the bands parsed).
    pub(super) fn params(&self) -> Result<CouplingParams> {
        Ok(CouplingParams {
            input: self.input.params(),
            temperature_k: self.temperature_k,
            bands_mev: coupling::parse_bands(&self.bands_mev)?,
            gamma_temperatures_k: self.temps.clone(),
            window: self.window,
            detrend: self.detrend,
            per_free_atoms: self.per_free_atoms,
        })
    }
}

pub(super) fn run_coupling(a: &CouplingArgs) -> Result<()> {
    let p = a.params()?;
    let mut remarks = Vec::new();
    let c = analysis::coupling(&a.input.gap, &p, &mut remarks);
    print_remarks(&remarks);
    let c = c?;
    write_coupling(&a.output, &a.input.gap, &c, a.per_free_atoms.is_some())?;
    let hr = &c.spectrum;
    for w in &hr.warnings.0 {
        eprintln!("qdscope: warning: {}: {w}", a.input.gap.display());
    }
    println!(
        "{}: {} samples × {} fs; ΣS = {:.3}, Λ = {:.3} meV; bands {}; Γ({} K) = {:.2} meV, Γ(300 K) = {:.2} meV",
        a.input.gap.display(),
        hr.n,
        hr.dt_fs,
        hr.s_total,
        hr.lambda_mev,
        c.bands
            .iter()
            .map(|b| format!("S{}={:.3}", b.band.centre_mev(), b.s))
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

/// Every output of a dephasing analysis, written into `dir` (all or
/// none).
fn write_dephasing(dir: &Path, input: &Path, r: &DephasingRun) -> Result<()> {
    let (g, hr, d) = (&r.series, &r.spectrum, &r.dephasing);
    let set = qdscope::report::OutputSet::new(dir)?;
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
    write_acf_csv(&out, &r.acf_mev2, &r.g_acf_trapezoid, g.dt_fs)?;
    let summary = serde_json::json!({
        "metadata": meta(input, g, hr),
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
    set.commit()
}

impl DephasingArgs {
    /// The library's parameters.
    pub(super) fn params(&self) -> DephasingParams {
        DephasingParams {
            input: self.input.params(),
            temperature_k: self.temperature_k,
            dt_fine_fs: self.dt_fine_fs,
            fit_threshold: match self.fit_threshold {
                Threshold::Percent1 => FitThreshold::Percent1,
                Threshold::HalfE => FitThreshold::HalfE,
            },
        }
    }
}

pub(super) fn run_dephasing(a: &DephasingArgs) -> Result<()> {
    let p = a.params();
    let mut remarks = Vec::new();
    let r = analysis::dephasing(&a.input.gap, &p, &mut remarks);
    print_remarks(&remarks);
    let r = r?;
    write_dephasing(&a.output, &a.input.gap, &r)?;
    let (hr, d) = (&r.spectrum, &r.dephasing);
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

impl HistogramArgs {
    /// The library's parameters (every run read alike).
    pub(super) fn params(&self) -> HistogramParams {
        HistogramParams {
            input: GapParams {
                dt_fs: self.dt_fs,
                skip_fs: self.skip_fs,
                allow_truncated: self.allow_truncated,
                ..GapParams::default()
            },
            labels: self.labels.clone(),
            bin_width_mev: self.bin_width_mev,
        }
    }
}

pub(super) fn run_histogram(a: &HistogramArgs) -> Result<()> {
    let p = a.params();
    let mut remarks = Vec::new();
    let runs = analysis::histograms(&a.gaps, &p, &mut remarks);
    print_remarks(&remarks);
    let runs = runs?;
    write_histograms(&a.output, &runs)?;
    for r in &runs {
        let (l, h) = (&r.label, &r.histogram);
        println!(
            "{l}: {} samples, mean {:.1} meV, FWHM {:.2} meV (moments) / {:.2} meV (Gaussian fit)",
            h.n, h.mean_mev, h.fwhm_moment_mev, h.fwhm_fit_mev
        );
    }
    Ok(())
}

/// `histogram.csv`, `histogram.json` and `histogram.png` of the runs, in
/// `dir` (all or none).
fn write_histograms(dir: &Path, runs: &[HistogramRun]) -> Result<()> {
    let set = qdscope::report::OutputSet::new(dir)?;
    let out = set.dir().to_path_buf();
    let mut rows = Vec::new();
    for r in runs {
        let h = &r.histogram;
        for (c, n) in h.centres_mev.iter().zip(&h.counts) {
            rows.push(vec![r.label.clone(), fmt_f64(*c), n.to_string()]);
        }
    }
    report::write_csv(
        &out.join("histogram.csv"),
        &["run", "gap_mev", "count"],
        &rows,
    )?;
    let json_runs: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            let h = &r.histogram;
            serde_json::json!({"run": r.label, "n": h.n, "blocks_dropped_truncated": r.blocks_dropped_truncated, "bin_width_mev": h.bin_width_mev, "mean_mev": h.mean_mev,
                "sd_mev": h.sd_mev, "fwhm_moment_mev": h.fwhm_moment_mev, "fit_mean_mev": h.fit_mean_mev,
                "fit_sigma_mev": h.fit_sigma_mev, "fwhm_fit_mev": h.fwhm_fit_mev, "fit_converged": h.fit_converged})
        })
        .collect();
    report::write_json(
        &out.join("histogram.json"),
        &serde_json::json!({"runs": json_runs}),
    )?;
    let series: Vec<plot::Series> = runs
        .iter()
        .map(|r| {
            let h = &r.histogram;
            plot::Series {
                label: format!(
                    "{}: FWHM {:.0} (moment) / {:.0} (fit) meV",
                    r.label, h.fwhm_moment_mev, h.fwhm_fit_mev
                ),
                points: h
                    .centres_mev
                    .iter()
                    .zip(&h.counts)
                    .map(|(c, n)| (*c, *n as f64 / (h.n as f64 * h.bin_width_mev)))
                    .collect(),
                line: true,
                y_err: None,
            }
        })
        .collect();
    plot::xy_png(
        &out.join("histogram.png"),
        "HOMO–LUMO gap distributions",
        "gap (meV)",
        "probability density (1/meV)",
        &series,
    )?;
    set.commit()
}
