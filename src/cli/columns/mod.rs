//! `qdscope columns IMAGE -o DIR`: atomic columns, 7-parameter Gaussian
//! fits, sublattices, Cs : Pb/Br ratios and peak-pair spacings of one
//! prepared image.
//!
//! Writes `columns.csv`
//! (`id,sublattice,x_px,y_px,x_angstrom,y_angstrom,height,volume,sigma_x_angstrom,sigma_y_angstrom,rotation_rad,baseline,residual,converged,flag`;
//! height, baseline and residual in image units, volume = 2π·A·σx·σy in
//! image units × Å²), `fits.csv` (uncertainties, evaluations, pixels,
//! status per column), `lattice.csv` (local peak-pair vectors and strain
//! per column: the local spacing map as a table), `summary.json`,
//! `overlay.png` (columns by sublattice, scale bar in nm), `spacing.png`
//! (pair-distance histograms) and `spacing_map.png` (local spacing per
//! column).

use std::path::{Path, PathBuf};

use qdscope::error::{Error, Result};
use qdscope::image::{Calibration, Image};
use qdscope::io;
use qdscope::report;
use qdscope::stem::analyze::AnalyzeParams;
use qdscope::stem::columns::{self, ColumnsParams};
use qdscope::stem::gaussian::Neighbours;

mod output;

pub use output::write_outputs;
pub use qdscope::stem::analyze::PixelSource;

/// Column-analysis options shared by `columns` and `analyze`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ColumnOpts {
    /// Cubic lattice constant a in Å (default 5.87; sets the default lengths).
    #[arg(long, value_name = "ANGSTROM")]
    pub lattice_angstrom: Option<f64>,
    /// Minimum separation of two columns in Å (default 0.5622·a = 3.3 Å).
    #[arg(long, value_name = "ANGSTROM")]
    pub min_separation_angstrom: Option<f64>,
    /// Peak threshold as a fraction of (max − min) inside the mask (default 0.1).
    #[arg(long, value_name = "FRACTION")]
    pub threshold_rel: Option<f64>,
    /// Absolute peak threshold in image units (overrides --threshold-rel).
    #[arg(long, value_name = "VALUE")]
    pub threshold_abs: Option<f64>,
    /// Gaussian fit disk radius in Å of the single and sweep fits (default 0.5·a/2 = 1.47 Å).
    #[arg(long, value_name = "ANGSTROM")]
    pub fit_radius_angstrom: Option<f64>,
    /// Neighbour handling in the fits: joint (every column in one model; the default), single (the study's: each column alone in its disk) or sweep (subtract neighbours, refit).
    #[arg(long, value_enum)]
    pub neighbours: Option<Neighbours>,
    /// Weight the single and sweep fits' residuals by 1/√I (Poisson).
    #[arg(long)]
    pub poisson_weights: bool,
    /// Do not restrict columns to the particle mask.
    #[arg(long)]
    pub no_mask: bool,
    /// Particle-mask threshold in image units (default: Otsu).
    #[arg(long, value_name = "VALUE")]
    pub mask_threshold: Option<f64>,
    /// Also fit the pure-Br columns at the predicted sites.
    #[arg(long)]
    pub fit_br: bool,
    /// Count edge columns in the ratio.
    #[arg(long)]
    pub include_edge: bool,
    /// Reference lattice constant in Å for the peak-pair strain (default: the fitted lattice).
    #[arg(long, value_name = "ANGSTROM")]
    pub reference_lattice_angstrom: Option<f64>,
}

impl ColumnOpts {
    /// Apply the flags on top of `p`.
    pub fn apply(&self, p: &mut ColumnsParams) {
        if let Some(v) = self.lattice_angstrom {
            p.lattice_angstrom = v;
        }
        if self.min_separation_angstrom.is_some() {
            p.min_separation_angstrom = self.min_separation_angstrom;
        }
        if let Some(v) = self.threshold_rel {
            p.threshold_rel = v;
        }
        if self.threshold_abs.is_some() {
            p.threshold_abs = self.threshold_abs;
        }
        if self.fit_radius_angstrom.is_some() {
            p.fit_radius_angstrom = self.fit_radius_angstrom;
        }
        if let Some(v) = self.neighbours {
            p.neighbours = v;
        }
        if self.poisson_weights {
            p.poisson_weights = true;
        }
        if self.no_mask {
            p.mask = false;
        }
        if self.mask_threshold.is_some() {
            p.mask_threshold = self.mask_threshold;
        }
        if self.fit_br {
            p.fit_br = true;
        }
        if self.include_edge {
            p.include_edge = true;
        }
        if self.reference_lattice_angstrom.is_some() {
            p.reference_lattice_angstrom = self.reference_lattice_angstrom;
        }
    }
}

/// Arguments of `qdscope columns`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Prepared image (`prepared.npy` from `qdscope prepare`, or any readable 2-D image).
    pub image: PathBuf,
    /// Signal of a multi-signal file: index or title (see `qdscope inspect`).
    #[arg(long, value_name = "N|TITLE")]
    pub signal: Option<String>,
    /// Output directory (created if missing).
    #[arg(short, long = "output", value_name = "DIR")]
    pub output: PathBuf,
    /// TOML file: a `[columns]` table with any parameter; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Pixel size in Å/px, overriding the file's (or the neighbouring prepare.json's) calibration.
    #[arg(long, value_name = "A_PER_PX")]
    pub pixel_size_angstrom: Option<f64>,
    /// Registered average (before denoising and deconvolution) on which the joint fit measures the
    /// volumes; same size as IMAGE (default: `averaged.npy` next to a `prepared.npy`).
    #[arg(long, value_name = "FILE")]
    pub linear_image: Option<PathBuf>,
    #[command(flatten)]
    pub opts: ColumnOpts,
}

/// What `qdscope analyze` runs with: the library's parameters (config file
/// and flags applied, with their provenance) and the signal to read.
#[derive(Debug, Clone, Default)]
pub struct PipelineConfig {
    /// Parameters of `prepare` and of the column analysis.
    pub params: AnalyzeParams,
    /// Signal of multi-signal inputs (`--signal`).
    pub signal: Option<String>,
}

/// Read the image and resolve its calibration: flag > file > `prepare.json`
/// in the same directory.
///
/// # Errors
/// Reader errors; no pixel size from any source.
pub fn load_calibrated(
    path: &Path,
    pixel_size: Option<f64>,
    signal: Option<&str>,
) -> Result<(Image, PixelSource)> {
    let s = io::load_stack(path, signal)?.stack;
    if s.n_frames() != 1 {
        return Err(Error::shape(
            path.display().to_string(),
            "a single 2-D image",
            format!("a stack of {} frames (run prepare first)", s.n_frames()),
        ));
    }
    let mut img = Image::new(s.frame(0).to_owned(), s.calibration);
    if let Some(p) = pixel_size {
        img.calibration = Calibration::from_pixel_size(p)?;
        return Ok((img, PixelSource::User));
    }
    if img.calibration.pixel_size_angstrom().is_some() {
        return Ok((img, PixelSource::File));
    }
    let pj = path.with_file_name("prepare.json");
    if pj.is_file() {
        let text = std::fs::read_to_string(&pj).map_err(|e| Error::io(&pj, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::format(&pj, format!("invalid JSON: {e}")))?;
        if let Some(p) = v
            .pointer("/calibration/pixel_size_angstrom")
            .and_then(serde_json::Value::as_f64)
        {
            img.calibration = Calibration::from_pixel_size(p)?;
            return Ok((img, PixelSource::PrepareJson));
        }
    }
    Err(Error::Uncalibrated {
        what: format!(
            "{}: column analysis (no pixel size in the file or a prepare.json beside it)",
            path.display()
        ),
    })
}

pub(crate) fn run(args: &Args, quiet: bool) -> Result<()> {
    let mut params = match &args.config {
        Some(path) => AnalyzeParams::load_config(path)?.columns,
        None => ColumnsParams::default(),
    };
    args.opts.apply(&mut params);
    let pb = report::progress(3, "columns", quiet);
    pb.set_message("reading");
    let (img, source) = load_calibrated(
        &args.image,
        args.pixel_size_angstrom,
        args.signal.as_deref(),
    )?;
    let linear = match args
        .linear_image
        .clone()
        .or_else(|| columns::linear_companion(&args.image))
    {
        Some(path) if params.neighbours == Neighbours::Joint => {
            let px = img.calibration.pixel_size_angstrom();
            Some(load_calibrated(&path, px.or(args.pixel_size_angstrom), None)?.0)
        }
        Some(path) if args.linear_image.is_some() => {
            eprintln!(
                "qdscope: warning: {}: --linear-image is only used by --neighbours joint; ignored",
                path.display()
            );
            None
        }
        _ => None,
    };
    pb.inc(1);
    pb.set_message("fitting");
    let name = args.image.display().to_string();
    let r = columns::analyse_with(&name, &img, linear.as_ref(), &params)?;
    pb.inc(1);
    pb.set_message("writing");
    let s = write_outputs(&args.output, &args.image, &img, &params, &r, source)?;
    pb.finish_and_clear();
    for w in &r.warnings.0 {
        eprintln!("qdscope: warning: {name}: {w}");
    }
    println!(
        "{name}: {} Cs, {} Pb/Br columns ({} failed fits); Cs:Pb/Br volume ratio {:.4} ± {:.4}, height ratio {:.4}; spacing {} Å",
        s.n_cs,
        s.n_pbbr,
        s.n_failed,
        s.ratio_volume_mean,
        s.ratio_volume_sd.unwrap_or(f64::NAN),
        s.ratio_height_mean,
        s.lattice_spacing_angstrom
            .map_or("n/a".to_string(), |v| format!("{v:.3}"))
    );
    Ok(())
}
