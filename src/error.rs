//! The one error type of qdscope.
//!
//! Every variant names the input it is about (a file path, a parameter's
//! field name or a described array such as `"stack.tif: frame 3"`) and the
//! problem, so the binary can print it as a single line:
//! `qdscope: error: <input>: <problem>` (with the field names turned into
//! its flags).
//! Non-fatal issues ("done, but suspect") are not errors: they travel as
//! [`Warnings`] next to a result.

use std::fmt;
use std::path::{Path, PathBuf};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in qdscope, each variant carrying context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error while reading or writing `path`.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file exists but its content is not what its format promises
    /// (truncated, corrupt, unsupported variant).
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    /// A text file whose last record (trajectory frame, MO block) was cut
    /// off, as a killed job leaves it; the complete records before it are
    /// usable. Callers that accept truncation stop at it (their option);
    /// the command line maps this error to its flag.
    #[error("{}: line {line}: truncated {what} at the end of the file", path.display())]
    Truncated {
        path: PathBuf,
        line: usize,
        what: String,
    },
    /// The file's format could not be recognised.
    #[error("{}: unknown or unsupported file format ({hint})", path.display())]
    UnknownFormat { path: PathBuf, hint: String },
    /// An array has the wrong shape or size.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        what: String,
        expected: String,
        got: String,
    },
    /// NaN or infinite values where finite data is required.
    #[error("{what}: {count} non-finite value(s) (NaN or Inf), first at {first}")]
    NonFinite {
        what: String,
        count: usize,
        first: String,
    },
    /// A parameter is out of range. `name` is its params-struct field
    /// (`pixel_size_angstrom`), or the snake_case words of a value that is
    /// not a field (`background_radius_px`); messages refer to other
    /// parameters the same way, in backticks (`` `method = multislice` ``).
    /// The command line prints flags instead (the binary's `src/cli/flags.rs`).
    #[error("{name}: {reason}")]
    InvalidParameter { name: String, reason: String },
    /// A length in Å was asked for but the image has no pixel size.
    #[error("{what}: the image is uncalibrated (no pixel size); give `pixel_size_angstrom` or a length in px")]
    Uncalibrated { what: String },
    /// Input without the data needed (empty stack, no frames, no columns ...).
    #[error("{what}: {reason}")]
    Empty { what: String, reason: String },
    /// A numerical procedure could not produce a trustworthy answer
    /// (singular system, non-convergence that cannot be reported as a warning).
    #[error("{what}: {reason}")]
    Numerical { what: String, reason: String },
}

impl Error {
    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A format error for `path`.
    pub fn format(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::Format {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }

    /// An out-of-range parameter.
    pub fn param(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// A shape mismatch.
    pub fn shape(
        what: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        Error::Shape {
            what: what.into(),
            expected: expected.into(),
            got: got.into(),
        }
    }

    /// Prefix the `what`/`name` of this error with a context such as a file
    /// name, so that library errors about arrays name the file they came from.
    #[must_use]
    pub fn context(self, ctx: impl fmt::Display) -> Self {
        let pre = |s: String| format!("{ctx}: {s}");
        match self {
            Error::Shape {
                what,
                expected,
                got,
            } => Error::Shape {
                what: pre(what),
                expected,
                got,
            },
            Error::NonFinite { what, count, first } => Error::NonFinite {
                what: pre(what),
                count,
                first,
            },
            Error::InvalidParameter { name, reason } => Error::InvalidParameter {
                name: pre(name),
                reason,
            },
            Error::Uncalibrated { what } => Error::Uncalibrated { what: pre(what) },
            Error::Empty { what, reason } => Error::Empty {
                what: pre(what),
                reason,
            },
            Error::Numerical { what, reason } => Error::Numerical {
                what: pre(what),
                reason,
            },
            other => other,
        }
    }
}

/// Non-fatal findings returned beside a result and written to the report.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Warnings(pub Vec<String>);

impl Warnings {
    /// Record one warning.
    pub fn push(&mut self, msg: impl Into<String>) {
        self.0.push(msg.into());
    }
    /// Append all warnings of `other`.
    pub fn extend(&mut self, other: Warnings) {
        self.0.extend(other.0);
    }
    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A size or count derived from user input, for messages: a whole number
/// below 10⁹, scientific notation above (never 300 digits, never the
/// saturated `usize::MAX` of a cast).
#[must_use]
pub fn fmt_size(v: f64) -> String {
    if v.is_finite() && v.abs() < 1e9 {
        format!("{}", v.round())
    } else {
        format!("{v:.3e}")
    }
}

/// A value given by the user, for messages: as written for ordinary
/// magnitudes, scientific notation for the extreme ones (`1e-300`, not 300
/// zeros).
#[must_use]
pub fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || !a.is_finite() || (1e-4..1e9).contains(&a) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// Check that `value` (a size in `unit` derived from parameter `name`) is
/// at most `limit`; the error names the parameter, the value and the limit,
/// and `why` says where the limit comes from.
///
/// # Errors
/// `Error::InvalidParameter` when `value` is NaN or above `limit`.
pub fn check_size(name: &str, value: f64, limit: f64, unit: &str, why: &str) -> Result<()> {
    if value <= limit {
        return Ok(());
    }
    let unit = if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    };
    Err(Error::param(
        name,
        format!(
            "{}{unit} is above the limit of {}{unit} ({why})",
            fmt_size(value),
            fmt_size(limit)
        ),
    ))
}

/// Check that every value of `data` is finite; name the first offender.
///
/// `index_of` turns a flat index into a human-readable position.
pub fn check_finite<'a, I>(what: &str, data: I, index_of: impl Fn(usize) -> String) -> Result<()>
where
    I: IntoIterator<Item = &'a f32>,
    I::IntoIter: Clone,
{
    let data = data.into_iter();
    // Fast path without branches (vectorises): all finite ⇔ Σ v·0 == 0
    // (inf·0 and NaN·0 are NaN).
    if data.clone().fold(0.0f32, |acc, v| acc + v * 0.0) == 0.0 {
        return Ok(());
    }
    let mut count = 0usize;
    let mut first = None;
    for (i, v) in data.enumerate() {
        if !v.is_finite() {
            count += 1;
            if first.is_none() {
                first = Some(i);
            }
        }
    }
    match first {
        None => Ok(()),
        Some(i) => Err(Error::NonFinite {
            what: what.to_string(),
            count,
            first: index_of(i),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_input() {
        let e = Error::format("a/b.tif", "truncated strip 3");
        assert_eq!(e.to_string(), "a/b.tif: truncated strip 3");
        let e = Error::shape("frame 2", "64x64", "64x63").context("s.npy");
        assert_eq!(e.to_string(), "s.npy: frame 2: expected 64x64, got 64x63");
        let e = Error::Uncalibrated {
            what: "background_radius_angstrom".into(),
        };
        assert!(e.to_string().starts_with("background_radius_angstrom: "));
    }

    #[test]
    fn finite_check_reports_first_and_count() {
        let v = [1.0f32, f32::NAN, 2.0, f32::INFINITY];
        let e = check_finite("img", v.iter(), |i| format!("index {i}")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "img: 2 non-finite value(s) (NaN or Inf), first at index 1"
        );
        assert!(check_finite("img", [1.0f32].iter(), |i| i.to_string()).is_ok());
    }
}
