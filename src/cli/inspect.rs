//! `qdscope inspect FILE [--json]` and `qdscope convert FILE [--signal N|TITLE]
//! -o OUT.{npy,tif}`: what a microscope file holds, and one signal of it in
//! an open format (NPY keeps the stored dtype; TIFF is float32 with the
//! pixel size in the resolution tags and ImageJ metadata).

use std::path::PathBuf;

use qdscope::error::{Error, Result};
use qdscope::io::{self, signal};

/// Arguments of `qdscope inspect`.
#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// File to inspect (DM3/DM4, EMD, SER, TIFF, NPY, MRC).
    pub file: PathBuf,
    /// Print JSON (signals, axes, acquisition, all metadata) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `qdscope convert`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConvertArgs {
    /// Input file.
    pub file: PathBuf,
    /// Signal to write: index or title (see `qdscope inspect`).
    #[arg(long, value_name = "N|TITLE")]
    pub signal: Option<String>,
    /// Output: `.npy` (stored dtype) or `.tif`/`.tiff` (float32, calibrated).
    #[arg(short, long = "output", value_name = "OUT")]
    pub output: PathBuf,
}

fn fmt_num(v: f64) -> String {
    format!("{}", (v * 1e9).round() / 1e9)
}

/// Run `qdscope inspect`.
///
/// # Errors
/// Reader errors.
pub fn run_inspect(a: &InspectArgs) -> Result<()> {
    let fs = io::read_signals(&a.file)?;
    if a.json {
        let text = serde_json::to_string_pretty(&fs)
            .map_err(|e| Error::format(&a.file, format!("cannot serialise: {e}")))?;
        println!("{text}");
        return Ok(());
    }
    println!(
        "{}: {}, {} signal(s)",
        a.file.display(),
        fs.format,
        fs.signals.len()
    );
    for (i, s) in fs.signals.iter().enumerate() {
        if let Some(r) = &s.unreadable {
            println!("[{i}] {}  unreadable: {r}", s.title);
            continue;
        }
        println!("[{i}] {}  shape {:?}  {:?}", s.title, s.shape, s.dtype);
        for (k, ax) in s.axes.iter().enumerate() {
            println!(
                "    axis {k} {}: scale {} {}, offset {} ({:?})",
                ax.name,
                fmt_num(ax.scale),
                ax.unit,
                fmt_num(ax.offset),
                ax.kind
            );
        }
        let q = &s.acquisition;
        let mut acq = Vec::new();
        if let Some(v) = q.high_tension_kv {
            acq.push(format!("{} kV", fmt_num(v)));
        }
        if let Some(v) = q.convergence_mrad {
            acq.push(format!("convergence {} mrad", fmt_num(v)));
        }
        if let Some((lo, hi)) = q.collection_mrad {
            acq.push(format!("collection {}–{} mrad", fmt_num(lo), fmt_num(hi)));
        }
        if let Some(v) = q.dwell_time_us {
            acq.push(format!("dwell {} µs", fmt_num(v)));
        }
        if let Some(v) = q.magnification {
            acq.push(format!("magnification {}", fmt_num(v)));
        }
        if let Some(d) = &q.date {
            acq.push(format!("acquired {d}"));
        }
        if let Some(p) = s.pixel_size_angstrom() {
            acq.push(format!("pixel {} Å", fmt_num(p)));
        } else {
            acq.push("uncalibrated".into());
        }
        println!("    {}", acq.join(", "));
        println!(
            "    {} metadata item(s) (--json lists them)",
            s.metadata.len()
        );
    }
    for w in &fs.warnings.0 {
        eprintln!("qdscope: warning: {}: {w}", a.file.display());
    }
    Ok(())
}

/// Run `qdscope convert`.
///
/// # Errors
/// Reader errors, an unknown signal, an output extension other than
/// `.npy`/`.tif`/`.tiff`, I/O errors.
pub fn run_convert(a: &ConvertArgs) -> Result<()> {
    let ext = a
        .output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if !matches!(ext.as_str(), "npy" | "tif" | "tiff") {
        return Err(Error::param(
            "--output",
            format!(
                "{}: extension must be .npy or .tif/.tiff",
                a.output.display()
            ),
        ));
    }
    let fs = io::read_signals(&a.file)?;
    let s = signal::pick(&a.file, &fs, a.signal.as_deref())?;
    if let Some(dir) = a.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        super::ensure_dir(dir)?;
    }
    if ext == "npy" {
        io::write_npy_bytes(&a.output, s.dtype.npy_descr(), &s.shape, &s.bytes)?;
    } else {
        let stack = s.to_stack(&a.file)?;
        io::write_tiff_stack_f32(&a.output, &stack)?;
    }
    for w in &fs.warnings.0 {
        eprintln!("qdscope: warning: {}: {w}", a.file.display());
    }
    Ok(())
}
