//! `qdscope analyze INPUT... -o DIR [--config FILE]`: `prepare` + `columns`
//! for every input into `DIR/<input-stem>/`, and one row per input in
//! `DIR/summary.csv`. A failing input is reported (its row says why) and
//! skipped; the others go on; the exit code is 1 when any failed.

use std::path::{Path, PathBuf};

use qdscope::error::{Error, Result};
use qdscope::report::{self, fmt_f64};
use qdscope::stem::analyze::{self, AnalyzeParams, Input, PixelSource, Source, Summary};

use super::columns::{self, ColumnOpts, PipelineConfig};

/// Header of `summary.csv`.
pub const SUMMARY_HEADER: [&str; 17] = [
    "input",
    "status",
    "error",
    "output_dir",
    "n_cs",
    "n_pbbr",
    "n_br",
    "n_failed",
    "ratio_volume_mean",
    "ratio_volume_sd",
    "ratio_height_mean",
    "ratio_height_sd",
    "ci95_low",
    "ci95_high",
    "lattice_spacing_angstrom",
    "lattice_spacing_sd_angstrom",
    "seconds",
];

/// Arguments of `qdscope analyze`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Input stacks or images (DM3/DM4, EMD, SER, TIFF, NPY, MRC/MRCS).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Signal of multi-signal files: index or title (see `qdscope inspect`).
    #[arg(long, value_name = "N|TITLE")]
    pub signal: Option<String>,
    /// Output directory (created if missing).
    #[arg(short, long = "output", value_name = "DIR")]
    pub output: PathBuf,
    /// TOML with `[prepare]` and `[columns]` tables (any parameter of each).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Pixel size in Å/px for every input, overriding the files' calibration.
    #[arg(long, value_name = "A_PER_PX")]
    pub pixel_size_angstrom: Option<f64>,
    #[command(flatten)]
    pub opts: ColumnOpts,
}

/// Outcome of one input.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The input.
    pub input: PathBuf,
    /// Its output directory.
    pub dir: PathBuf,
    /// The summary, or the error message.
    pub result: std::result::Result<Summary, String>,
    /// Wall time, s.
    pub seconds: f64,
}

/// Output sub-directory names: the input stems, which must be distinct.
///
/// # Errors
/// Two inputs with the same stem.
pub fn stems(inputs: &[PathBuf]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for p in inputs {
        let s = p
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "input".into());
        if let Some(i) = out.iter().position(|o| *o == s) {
            return Err(Error::param(
                "analyze inputs",
                format!(
                    "{} and {} share the stem '{s}' (outputs go to DIR/<stem>/); rename one",
                    inputs[i].display(),
                    p.display()
                ),
            ));
        }
        out.push(s);
    }
    Ok(out)
}

/// Prepare + columns of one input ([`analyze::analyze`]) into `dir`.
///
/// # Errors
/// Any stage's error.
pub fn analyze_one(input: &Path, dir: &Path, cfg: &PipelineConfig) -> Result<Summary> {
    let loaded = Input::read(input, cfg.signal.as_deref())?;
    for w in &loaded.warnings.0 {
        eprintln!("qdscope: warning: {}: {w}", loaded.name);
    }
    let a = analyze::analyze(loaded, &cfg.params)?;
    let [f, ny, nx] = a.input_shape_frames_y_x;
    // The input's directory gets both stages' files or none of them.
    let set = report::OutputSet::new(dir)?;
    super::prepare::write_outputs(
        set.dir(),
        input,
        (f, ny, nx),
        &a.params.prepare,
        &a.prepared,
        &a.sources,
    )?;
    let summary = columns::write_outputs(
        set.dir(),
        input,
        &a.prepared.prepared,
        &a.params.columns,
        &a.columns,
        PixelSource::of(a.prepared.calibration_source),
    )?;
    set.commit()?;
    Ok(summary)
}

/// Run `analyze_one` over every input with a progress bar, write
/// `summary.csv`, and return the outcomes.
///
/// # Errors
/// Duplicate stems, an unwritable output directory or summary.
pub fn analyze_all(
    inputs: &[PathBuf],
    out: &Path,
    cfg: &PipelineConfig,
    quiet: bool,
) -> Result<Vec<Outcome>> {
    let names = stems(inputs)?;
    super::ensure_dir(out)?;
    let pb = report::progress(inputs.len() as u64, "analyze", quiet);
    let mut outcomes = Vec::new();
    for (input, stem) in inputs.iter().zip(&names) {
        pb.set_message(stem.clone());
        let dir = out.join(stem);
        let t0 = std::time::Instant::now();
        let result = analyze_one(input, &dir, cfg).map_err(|e| super::flags::render(&e));
        if let Err(e) = &result {
            pb.suspend(|| eprintln!("qdscope: error: {e} (skipped)"));
        }
        outcomes.push(Outcome {
            input: input.clone(),
            dir,
            result,
            seconds: t0.elapsed().as_secs_f64(),
        });
        pb.inc(1);
    }
    pb.finish_and_clear();
    let opt = |v: Option<f64>| v.map_or(String::new(), fmt_f64);
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            let mut row = vec![o.input.display().to_string()];
            match &o.result {
                Ok(s) => row.extend([
                    "ok".to_string(),
                    String::new(),
                    o.dir.display().to_string(),
                    s.n_cs.to_string(),
                    s.n_pbbr.to_string(),
                    s.n_br.to_string(),
                    s.n_failed.to_string(),
                    fmt_f64(s.ratio_volume_mean),
                    opt(s.ratio_volume_sd),
                    fmt_f64(s.ratio_height_mean),
                    opt(s.ratio_height_sd),
                    opt(s.ci95[0]),
                    opt(s.ci95[1]),
                    opt(s.lattice_spacing_angstrom),
                    opt(s.lattice_spacing_sd_angstrom),
                ]),
                Err(e) => {
                    row.extend([
                        "failed".to_string(),
                        e.replace([',', '\n'], ";"),
                        String::new(),
                    ]);
                    row.extend(std::iter::repeat_n(String::new(), 12));
                }
            }
            row.push(format!("{:.3}", o.seconds));
            row
        })
        .collect();
    report::write_csv(&out.join("summary.csv"), &SUMMARY_HEADER, &rows)?;
    Ok(outcomes)
}

pub(crate) fn run(args: &Args, quiet: bool) -> Result<()> {
    let mut params = match &args.config {
        Some(p) => AnalyzeParams::load_config(p)?,
        None => AnalyzeParams::default(),
    };
    if let Some(p) = args.pixel_size_angstrom {
        params.prepare.pixel_size_angstrom = Some(p);
        params.sources.pixel_size_angstrom = Source::Flag;
    }
    args.opts.apply(&mut params.columns);
    params.validate()?;
    let cfg = PipelineConfig {
        params,
        signal: args.signal.clone(),
    };
    let outcomes = analyze_all(&args.inputs, &args.output, &cfg, quiet)?;
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    for o in &outcomes {
        if let Ok(s) = &o.result {
            println!(
                "{}: volume ratio {:.4} ± {:.4} ({} Cs, {} Pb/Br), spacing {} Å",
                o.input.display(),
                s.ratio_volume_mean,
                s.ratio_volume_sd.unwrap_or(f64::NAN),
                s.n_cs_in_ratio,
                s.n_pbbr_in_ratio,
                s.lattice_spacing_angstrom
                    .map_or("n/a".into(), |v| format!("{v:.3}"))
            );
        }
    }
    if failed > 0 {
        return Err(Error::Numerical {
            what: args.output.join("summary.csv").display().to_string(),
            reason: format!(
                "{failed} of {} inputs failed (see the status and error columns)",
                outcomes.len()
            ),
        });
    }
    Ok(())
}
