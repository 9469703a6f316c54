//! Output tables and progress display: CSV with units in the header, JSON
//! summaries, all written atomically through [`crate::io::atomic_write`].

pub mod output_set;
pub mod plot;
pub mod table;
pub mod view;

pub use output_set::OutputSet;

use std::io::{IsTerminal, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::atomic_write;

/// Write `value` as pretty JSON (atomic).
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::format(path, format!("cannot serialise JSON: {e}")))?;
    atomic_write(path, |w| {
        w.write_all(text.as_bytes())?;
        w.write_all(b"\n")
    })
}

/// Write a CSV table (atomic). `header` names every column with its unit.
///
/// # Errors
/// `Error::Shape` if a row's length differs from the header's.
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    for (i, r) in rows.iter().enumerate() {
        if r.len() != header.len() {
            return Err(Error::shape(
                format!("{}: row {i}", path.display()),
                format!("{} fields", header.len()),
                format!("{} fields", r.len()),
            ));
        }
    }
    atomic_write(path, |w| {
        writeln!(w, "{}", header.join(","))?;
        for r in rows {
            writeln!(w, "{}", r.join(","))?;
        }
        Ok(())
    })
}

/// Format a float for a table: full precision that round-trips, no exponent
/// games; non-finite values become empty cells (never a fake 0).
#[must_use]
pub fn fmt_f64(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

/// [`fmt_f64`] of a value that may be absent: `None` is an empty cell, as
/// a non-finite value is.
#[must_use]
pub fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, fmt_f64)
}

/// A progress bar on stderr, hidden when stderr is not a terminal or when
/// `quiet` is set.
#[must_use]
pub fn progress(len: u64, message: &str, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if quiet || !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>12} [{elapsed_precise}] {wide_bar} {pos}/{len}")
    {
        pb.set_style(style);
    }
    pb.set_message(message.to_string());
    pb
}

/// A spinner counting items (frames read …) when the total is unknown;
/// hidden like [`progress`].
#[must_use]
pub fn spinner(unit: &str, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    if quiet || !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{{spinner}} {{pos}} {unit} [{{elapsed_precise}}] {{msg}}"
    )) {
        pb.set_style(style);
    }
    pb
}
