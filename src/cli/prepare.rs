//! `qdscope prepare STACK -o DIR`: registration + averaging, background
//! removal, Du denoising, blind deconvolution from the probe PSF. Writes
//! `averaged.npy`, `background.npy`, `denoised.npy`, `deconvolved.npy`,
//! `psf_initial.npy`, `psf_final.npy`, `prepared.npy` (float32, y×x),
//! `shifts.csv` (`frame,dy_px,dx_px,score`), `prepare.json`, `prepared.png`
//! and `stages.png`. Nothing is written unless every stage succeeded.

use std::path::{Path, PathBuf};

use serde::Serialize;

use qdscope::error::{Error, Result};
use qdscope::io;
use qdscope::report::{self, fmt_f64};
use qdscope::stem::analyze::{self, AnalyzeParams, Input, ParamSources, Source};
use qdscope::stem::background::Decomposition;
use qdscope::stem::pipeline::{self, PrepareParams, Prepared, Radius};
use qdscope::stem::register::Correlation;

/// Arguments of `qdscope prepare`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Input stack or image (DM3/DM4, EMD, SER, TIFF, NPY, MRC/MRCS).
    pub stack: PathBuf,
    /// Signal of a multi-signal file: index or title (see `qdscope inspect`).
    #[arg(long, value_name = "N|TITLE")]
    pub signal: Option<String>,
    /// Output directory (created if missing).
    #[arg(short, long = "output", value_name = "DIR")]
    pub output: PathBuf,
    /// TOML file with any parameter of prepare; command-line flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Pixel size in Å/px, overriding the file's calibration.
    #[arg(long, value_name = "A_PER_PX")]
    pub pixel_size_angstrom: Option<f64>,
    /// Background disk radius in Å (default 2a = 11.74 Å; needs a calibration).
    #[arg(long, value_name = "ANGSTROM", conflicts_with = "background_radius_px")]
    pub background_radius_angstrom: Option<f64>,
    /// Background disk radius in px.
    #[arg(long, value_name = "PX")]
    pub background_radius_px: Option<f64>,
    /// Disk decomposition: MATLAB strel('disk', R, n) with n = 4 (default), 6, 8, or the exact Euclidean disk.
    #[arg(long, value_enum)]
    pub decomposition: Option<Decomposition>,
    /// Gaussian σ of the background smoothing as a multiple of the radius (default 1).
    #[arg(long, value_name = "FACTOR")]
    pub background_sigma_factor: Option<f64>,
    /// Registration up-sampling factor (precision 1/u px; default 20).
    #[arg(long, value_name = "U")]
    pub upsample: Option<usize>,
    /// Correlation normalisation: cross (default) or phase.
    #[arg(long, value_enum)]
    pub correlation: Option<Correlation>,
    /// Re-registration passes against the running mean (default 3).
    #[arg(long, value_name = "N")]
    pub refine_passes: Option<usize>,
    /// Largest shift searched, px (default: unlimited).
    #[arg(long, value_name = "PX")]
    pub max_shift_px: Option<f64>,
    /// Keep every frame (no outlier-frame rejection).
    #[arg(long)]
    pub no_reject_outliers: bool,
    /// High tension in kV for the probe PSF (default 300).
    #[arg(long, value_name = "KV")]
    pub kv: Option<f64>,
    /// Probe convergence semi-angle in mrad for the PSF (default 18).
    #[arg(long, value_name = "MRAD")]
    pub convergence_mrad: Option<f64>,
    /// Skip the Du (2015) denoising stage.
    #[arg(long)]
    pub no_denoise: bool,
    /// Iterations of the denoising filter (default 50).
    #[arg(long, value_name = "N")]
    pub denoise_iterations: Option<usize>,
    /// Skip the blind deconvolution stage.
    #[arg(long)]
    pub no_deconvolve: bool,
    /// Richardson–Lucy iterations (default 10).
    #[arg(long, value_name = "N")]
    pub deconv_iterations: Option<usize>,
    /// Half-width of the computed PSF support in px (default: 3 Airy first-zero radii).
    #[arg(long, value_name = "PX")]
    pub psf_half_width_px: Option<usize>,
    /// Initial PSF from a file (NPY/TIFF, 2-D) instead of the microscope's probe.
    #[arg(long, value_name = "FILE")]
    pub psf: Option<PathBuf>,
}

impl Args {
    /// The effective parameters: defaults ← config file ← flags, with
    /// where the pixel size and microscope values came from; checked.
    pub fn params(&self) -> Result<AnalyzeParams> {
        let mut a = match &self.config {
            Some(path) => AnalyzeParams::load_prepare_config(path)?,
            None => AnalyzeParams::default(),
        };
        let given = &mut a.sources;
        if self.pixel_size_angstrom.is_some() {
            given.pixel_size_angstrom = Source::Flag;
        }
        if self.kv.is_some() {
            given.high_tension_kv = Source::Flag;
        }
        if self.convergence_mrad.is_some() {
            given.convergence_mrad = Source::Flag;
        }
        let p = &mut a.prepare;
        if let Some(v) = self.pixel_size_angstrom {
            p.pixel_size_angstrom = Some(v);
        }
        if let Some(v) = self.background_radius_angstrom {
            p.background.radius = Radius::Angstrom(v);
        }
        if let Some(v) = self.background_radius_px {
            p.background.radius = Radius::Px(v);
        }
        if let Some(v) = self.decomposition {
            p.background.decomposition = v;
        }
        if let Some(v) = self.background_sigma_factor {
            p.background.sigma_factor = v;
        }
        if let Some(v) = self.upsample {
            p.register.upsample = v;
        }
        if let Some(v) = self.correlation {
            p.register.correlation = v;
        }
        if let Some(v) = self.refine_passes {
            p.register.refine_passes = v;
        }
        if let Some(v) = self.max_shift_px {
            p.register.max_shift_px = Some(v);
        }
        if self.no_reject_outliers {
            p.register.reject_outliers = false;
        }
        if let Some(v) = self.kv {
            p.microscope.high_tension_kv = v;
        }
        if let Some(v) = self.convergence_mrad {
            p.microscope.convergence_mrad = v;
        }
        if self.no_denoise {
            p.denoise_enabled = false;
        }
        if let Some(v) = self.denoise_iterations {
            p.denoise.iterations = v;
        }
        if self.no_deconvolve {
            p.deconvolve_enabled = false;
        }
        if let Some(v) = self.psf_half_width_px {
            p.psf_half_width_px = Some(v);
        }
        if let Some(v) = self.deconv_iterations {
            p.deconvolve.iterations = v;
        }
        a.validate()?;
        Ok(a)
    }
}

/// Read an initial PSF (any 2-D image file), as f64.
pub fn load_psf(path: &Path) -> Result<ndarray::Array2<f64>> {
    let img = io::read_image(path).map_err(|e| match e {
        Error::Shape { got, .. } => Error::param(
            "--psf",
            format!("{}: must be a 2-D array, got {got}", path.display()),
        ),
        other => other,
    })?;
    let psf = img.data.mapv(f64::from);
    qdscope::stem::deconvolve::validate_psf(psf.view(), (usize::MAX, usize::MAX)).map_err(|e| {
        let e = super::flags::render(&e);
        Error::param("--psf", format!("{}: {e}", path.display()))
    })?;
    Ok(psf)
}

pub(crate) fn run(args: &Args, quiet: bool) -> Result<()> {
    let params = args.params()?;
    let psf = match (&args.psf, params.prepare.deconvolve_enabled) {
        (Some(path), true) => Some(load_psf(path)?),
        _ => None,
    };
    let pb = report::progress(3, "prepare", quiet);
    pb.set_message("reading");
    let input = Input::read(&args.stack, args.signal.as_deref())?;
    let name = input.name.clone();
    let reader_warnings = input.warnings.clone();
    pb.inc(1);
    pb.set_message("registering");
    let p = analyze::prepare_input(input, &params, psf)?;
    pb.inc(1);
    pb.set_message("writing");
    for w in &reader_warnings.0 {
        eprintln!("qdscope: warning: {name}: {w}");
    }
    let [f, ny, nx] = p.input_shape_frames_y_x;
    write_outputs(
        &args.output,
        &args.stack,
        (f, ny, nx),
        &p.params,
        &p.prepared,
        &p.sources,
    )?;
    pb.finish_and_clear();
    for w in &p.prepared.warnings.0 {
        eprintln!("qdscope: warning: {name}: {w}");
    }
    Ok(())
}

#[derive(Serialize)]
struct InputInfo<'a> {
    path: &'a str,
    size_bytes: u64,
    shape_frames_y_x: [usize; 3],
}

#[derive(Serialize)]
struct PrepareReport<'a> {
    qdscope_version: &'a str,
    input: InputInfo<'a>,
    calibration: &'a qdscope::image::Calibration,
    calibration_source: pipeline::CalibrationSource,
    parameter_sources: &'a ParamSources,
    parameters: &'a PrepareParams,
    background_radius_px: usize,
    background_sigma_px: f64,
    registered: bool,
    registration_passes: usize,
    rejected_frames: &'a [usize],
    stages: Vec<&'static str>,
    output_shape_y_x: [usize; 2],
    outputs: &'a [&'a str],
    warnings: &'a qdscope::Warnings,
    crop_offset_yx: [usize; 2],
    stage_seconds: std::collections::BTreeMap<&'a str, f64>,
}

/// Names of the files `prepare` always writes.
pub const OUTPUTS: [&str; 7] = [
    "averaged.npy",
    "background.npy",
    "prepared.npy",
    "shifts.csv",
    "prepare.json",
    "prepared.png",
    "stages.png",
];

/// Write every output of `prepare` into `dir` (each file atomically).
pub fn write_outputs(
    dir: &Path,
    input: &Path,
    input_shape: (usize, usize, usize),
    params: &PrepareParams,
    p: &Prepared,
    sources: &ParamSources,
) -> Result<()> {
    let set = qdscope::report::OutputSet::new(dir)?;
    let out = set.dir().to_path_buf();
    io::write_npy_2d(&out.join("averaged.npy"), p.averaged.data.view())?;
    io::write_npy_2d(&out.join("background.npy"), p.background.view())?;
    let mut stages = vec!["register+average", "background"];
    let mut panels = vec![p.averaged.data.view(), p.subtracted.view()];
    if let Some(d) = &p.denoised {
        io::write_npy_2d(&out.join("denoised.npy"), d.view())?;
        stages.push("denoise");
        panels.push(d.view());
    }
    if let Some(d) = &p.deconvolved {
        io::write_npy_2d(&out.join("deconvolved.npy"), d.view())?;
        stages.push("deconvolve");
        panels.push(d.view());
    }
    if let Some((p0, p1)) = &p.psf {
        io::write_npy_2d(&out.join("psf_initial.npy"), p0.mapv(|v| v as f32).view())?;
        io::write_npy_2d(&out.join("psf_final.npy"), p1.mapv(|v| v as f32).view())?;
    }
    io::write_npy_2d(&out.join("prepared.npy"), p.prepared.data.view())?;
    let rows: Vec<Vec<String>> = p
        .registration
        .shifts
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vec![
                i.to_string(),
                fmt_f64(s.dy),
                fmt_f64(s.dx),
                fmt_f64(s.score),
            ]
        })
        .collect();
    report::write_csv(
        &out.join("shifts.csv"),
        &["frame", "dy_px", "dx_px", "score"],
        &rows,
    )?;
    let size_bytes = std::fs::metadata(input).map(|m| m.len()).unwrap_or(0);
    let input_str = input.display().to_string();
    let (oy, ox) = p.prepared.shape();
    let rep = PrepareReport {
        qdscope_version: env!("CARGO_PKG_VERSION"),
        input: InputInfo {
            path: &input_str,
            size_bytes,
            shape_frames_y_x: [input_shape.0, input_shape.1, input_shape.2],
        },
        calibration: &p.calibration,
        calibration_source: p.calibration_source,
        parameter_sources: sources,
        parameters: params,
        background_radius_px: p.background_radius_px,
        background_sigma_px: params.background.sigma_factor * p.background_radius_px as f64,
        registered: p.registered,
        registration_passes: p.registration.passes,
        rejected_frames: &p.registration.rejected,
        stages: stages.clone(),
        output_shape_y_x: [oy, ox],
        outputs: &OUTPUTS,
        warnings: &p.warnings,
        crop_offset_yx: [p.crop_offset_yx.0, p.crop_offset_yx.1],
        stage_seconds: p.stage_seconds.iter().copied().collect(),
    };
    report::write_json(&out.join("prepare.json"), &rep)?;
    io::write_png_preview(&out.join("prepared.png"), p.prepared.data.view(), 0.5, 99.5)?;
    // The same central crop after each stage, side by side.
    let (h, w) = p.prepared.shape();
    let c = h.min(w).min(256);
    let (y0, x0) = ((h - c) / 2, (w - c) / 2);
    let crops: Vec<_> = panels
        .iter()
        .map(|a| a.slice(ndarray::s![y0..y0 + c, x0..x0 + c]))
        .collect();
    io::write_png_panels(&out.join("stages.png"), &crops, 0.5, 99.5)?;
    set.commit()?;
    Ok(())
}
