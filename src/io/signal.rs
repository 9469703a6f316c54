//! Signals of microscope files (DM3/DM4, Velox/Berkeley EMD, TIA SER):
//! the stored array in its own dtype, per-axis calibration with units
//! normalised to Å (lengths) and 1/Å (reciprocal lengths), and the
//! acquisition metadata the pipeline uses.
//!
//! A file holds one or more signals (detectors, images of a DM file, …);
//! [`pick`] selects one by index or title (`--signal`).

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::Array3;
use num_complex::Complex;
use serde::Serialize;

use crate::error::{Error, Result, Warnings};
use crate::image::{Calibration, Stack};
use crate::io::npy::half_to_f32;

/// Element type of a stored array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// Unsigned 8-bit.
    U8,
    /// Signed 8-bit.
    I8,
    /// Unsigned 16-bit.
    U16,
    /// Signed 16-bit.
    I16,
    /// Unsigned 32-bit.
    U32,
    /// Signed 32-bit.
    I32,
    /// Unsigned 64-bit.
    U64,
    /// Signed 64-bit.
    I64,
    /// IEEE half float (MRC mode 12).
    F16,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// Complex of two signed 16-bit integers (MRC mode 3).
    Ci16,
    /// Complex of two 32-bit floats.
    C64,
    /// Complex of two 64-bit floats.
    C128,
    /// RGB(A) pixel as 4 bytes (R, G, B, A).
    Rgba8,
    /// Boolean byte.
    Bool,
}

impl Dtype {
    /// Bytes per element.
    #[must_use]
    pub fn size(self) -> usize {
        match self {
            Dtype::U8 | Dtype::I8 | Dtype::Bool => 1,
            Dtype::U16 | Dtype::I16 | Dtype::F16 => 2,
            Dtype::U32 | Dtype::I32 | Dtype::F32 | Dtype::Rgba8 | Dtype::Ci16 => 4,
            Dtype::U64 | Dtype::I64 | Dtype::F64 | Dtype::C64 => 8,
            Dtype::C128 => 16,
        }
    }

    /// Whether the elements are complex (two components).
    #[must_use]
    pub fn is_complex(self) -> bool {
        matches!(self, Dtype::Ci16 | Dtype::C64 | Dtype::C128)
    }

    /// The type in words, for messages (`uint16`, `complex64`, …).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Dtype::U8 => "uint8",
            Dtype::I8 => "int8",
            Dtype::U16 => "uint16",
            Dtype::I16 => "int16",
            Dtype::U32 => "uint32",
            Dtype::I32 => "int32",
            Dtype::U64 => "uint64",
            Dtype::I64 => "int64",
            Dtype::F16 => "float16",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::Ci16 => "complex int16",
            Dtype::C64 => "complex64",
            Dtype::C128 => "complex128",
            Dtype::Rgba8 => "RGBA",
            Dtype::Bool => "bool",
        }
    }

    /// NumPy `descr` of the little-endian bytes held by a [`Signal`]: a
    /// type string, or for complex int16 (no NumPy scalar type) the list
    /// of a structured type with `real` and `imag` fields.
    #[must_use]
    pub fn npy_descr(self) -> &'static str {
        match self {
            Dtype::U8 => "|u1",
            Dtype::I8 => "|i1",
            Dtype::Bool => "|b1",
            Dtype::U16 => "<u2",
            Dtype::I16 => "<i2",
            Dtype::U32 | Dtype::Rgba8 => "<u4",
            Dtype::I32 => "<i4",
            Dtype::U64 => "<u8",
            Dtype::I64 => "<i8",
            Dtype::F16 => "<f2",
            Dtype::F32 => "<f4",
            Dtype::F64 => "<f8",
            Dtype::Ci16 => "[('real', '<i2'), ('imag', '<i2')]",
            Dtype::C64 => "<c8",
            Dtype::C128 => "<c16",
        }
    }
}

/// What an axis measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AxisKind {
    /// Real-space length (scale in Å).
    Length,
    /// Reciprocal length (scale in 1/Å).
    Reciprocal,
    /// Anything else (time, energy, frame index, unknown unit): kept as stored.
    Other,
}

/// Calibration of one axis: value = offset + scale · index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Axis {
    /// Axis name if the file gives one.
    pub name: String,
    /// Step per index (Å or 1/Å for lengths; the file's unit otherwise).
    pub scale: f64,
    /// Value at index 0.
    pub offset: f64,
    /// Unit after normalisation (`Å`, `1/Å`, or the file's unit).
    pub unit: String,
    /// What the axis measures.
    pub kind: AxisKind,
}

impl Axis {
    /// An axis with the file's unit string, normalised to Å / 1/Å when the
    /// unit is a length (m/meters, cm, mm, µm/um, nm, Å/A, pm) or its inverse.
    #[must_use]
    pub fn from_unit(name: &str, scale: f64, offset: f64, unit: &str) -> Axis {
        let u = unit.trim();
        let length = |s: &str| -> Option<f64> {
            Some(match s {
                "m" | "meter" | "meters" | "metre" | "metres" => 1e10,
                "cm" => 1e8,
                "mm" => 1e7,
                "µm" | "um" | "μm" | "micron" => 1e4,
                "nm" => 10.0,
                "\u{c5}" | "\u{212b}" | "A" | "angstrom" | "Angstrom" | "ang" => 1.0,
                "pm" => 1e-2,
                _ => return None,
            })
        };
        if let Some(f) = length(u) {
            return Axis {
                name: name.into(),
                scale: scale * f,
                offset: offset * f,
                unit: "Å".into(),
                kind: AxisKind::Length,
            };
        }
        let inv = u
            .strip_prefix("1/")
            .or_else(|| u.strip_suffix("^-1"))
            .or_else(|| u.strip_suffix("⁻¹"));
        if let Some(f) = inv.and_then(length) {
            return Axis {
                name: name.into(),
                scale: scale / f,
                offset: offset / f,
                unit: "1/Å".into(),
                kind: AxisKind::Reciprocal,
            };
        }
        Axis {
            name: name.into(),
            scale,
            offset,
            unit: u.into(),
            kind: AxisKind::Other,
        }
    }

    /// An index axis without calibration.
    #[must_use]
    pub fn uncalibrated(name: &str) -> Axis {
        Axis {
            name: name.into(),
            scale: 1.0,
            offset: 0.0,
            unit: String::new(),
            kind: AxisKind::Other,
        }
    }
}

/// Acquisition parameters found in a file (all optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Acquisition {
    /// High tension, kV.
    pub high_tension_kv: Option<f64>,
    /// Probe convergence semi-angle, mrad.
    pub convergence_mrad: Option<f64>,
    /// Detector collection angles (inner, outer), mrad.
    pub collection_mrad: Option<(f64, f64)>,
    /// Dwell time per pixel, µs.
    pub dwell_time_us: Option<f64>,
    /// Indicated magnification.
    pub magnification: Option<f64>,
    /// Acquisition date/time as the file states it.
    pub date: Option<String>,
}

/// One array of a file with its calibration.
#[derive(Debug, Clone, Serialize)]
pub struct Signal {
    /// Title (detector name, image name, …).
    pub title: String,
    /// Shape in NumPy (C) order, slowest axis first; images end in (y, x).
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: Dtype,
    /// Calibration of each axis of `shape`.
    pub axes: Vec<Axis>,
    /// Acquisition parameters.
    pub acquisition: Acquisition,
    /// Every other metadata item found, as flat `path → value` strings.
    pub metadata: BTreeMap<String, String>,
    /// The elements, little-endian, C order.
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// Why the signal could not be read (one line), if it could not: the
    /// file's other signals still read; this one keeps its place (index)
    /// and title, with no elements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// The signals of a file plus reader remarks.
#[derive(Debug, Clone, Serialize)]
pub struct FileSignals {
    /// Format name (`DM3`, `DM4`, `Velox EMD`, `Berkeley EMD`, `TIA SER`).
    pub format: String,
    /// Signals in file order.
    pub signals: Vec<Signal>,
    /// Non-fatal remarks (missing EMI, skipped thumbnail, …).
    pub warnings: Warnings,
}

fn le<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

/// Convert `N`-byte little-endian elements to f32 in parallel.
fn conv<const N: usize>(b: &[u8], f: impl Fn([u8; N]) -> f32 + Sync) -> Vec<f32> {
    use rayon::prelude::*;
    if b.len() < 1 << 16 {
        return b.chunks_exact(N).map(|c| f(le(c))).collect();
    }
    b.par_chunks_exact(N).map(|c| f(le(c))).collect()
}

impl Signal {
    /// A placeholder for a signal that could not be read: `title` and the
    /// one-line `reason`, no elements (shape `[0]`).
    #[must_use]
    pub fn unreadable(title: String, reason: String) -> Signal {
        Signal {
            title,
            shape: vec![0],
            dtype: Dtype::U8,
            axes: Vec::new(),
            acquisition: Acquisition::default(),
            metadata: BTreeMap::new(),
            bytes: Vec::new(),
            unreadable: Some(reason),
        }
    }

    /// Pixel size (Å) when the last two axes are equal real-space lengths.
    #[must_use]
    pub fn pixel_size_angstrom(&self) -> Option<f64> {
        let n = self.axes.len();
        if n < 2 {
            return None;
        }
        let (y, x) = (&self.axes[n - 2], &self.axes[n - 1]);
        (x.kind == AxisKind::Length
            && y.kind == AxisKind::Length
            && x.scale > 0.0
            && (x.scale - y.scale).abs() <= 1e-6 * x.scale)
            .then_some(x.scale)
    }

    /// Elements as f32 (complex → modulus |z|, RGB → luminance
    /// 0.299/0.587/0.114),
    /// converted in parallel (rayon) — the conversion is most of the time a
    /// reader spends beyond the file read itself.
    #[must_use]
    pub fn to_f32(&self) -> Vec<f32> {
        let b = &self.bytes;
        match self.dtype {
            Dtype::U8 | Dtype::Bool => conv::<1>(b, |c| f32::from(c[0])),
            Dtype::I8 => conv::<1>(b, |c| f32::from(c[0] as i8)),
            Dtype::U16 => conv::<2>(b, |c| f32::from(u16::from_le_bytes(c))),
            Dtype::I16 => conv::<2>(b, |c| f32::from(i16::from_le_bytes(c))),
            Dtype::U32 => conv::<4>(b, |c| u32::from_le_bytes(c) as f32),
            Dtype::I32 => conv::<4>(b, |c| i32::from_le_bytes(c) as f32),
            Dtype::U64 => conv::<8>(b, |c| u64::from_le_bytes(c) as f32),
            Dtype::I64 => conv::<8>(b, |c| i64::from_le_bytes(c) as f32),
            Dtype::F16 => conv::<2>(b, |c| half_to_f32(u16::from_le_bytes(c))),
            Dtype::F32 => conv::<4>(b, f32::from_le_bytes),
            Dtype::F64 => conv::<8>(b, |c| f64::from_le_bytes(c) as f32),
            Dtype::Ci16 => conv::<4>(b, |c| {
                let re = f32::from(i16::from_le_bytes([c[0], c[1]]));
                let im = f32::from(i16::from_le_bytes([c[2], c[3]]));
                re.hypot(im)
            }),
            Dtype::C64 => conv::<8>(b, |c| {
                Complex::new(f32::from_le_bytes(le(&c)), f32::from_le_bytes(le(&c[4..]))).norm()
            }),
            Dtype::C128 => conv::<16>(b, |c| {
                Complex::new(f64::from_le_bytes(le(&c)), f64::from_le_bytes(le(&c[8..]))).norm()
                    as f32
            }),
            Dtype::Rgba8 => conv::<4>(b, |c| {
                0.299 * f32::from(c[0]) + 0.587 * f32::from(c[1]) + 0.114 * f32::from(c[2])
            }),
        }
    }

    /// The signal as a calibrated stack: 2-D → one frame, 3-D → frames
    /// along the first axis; other ranks are errors naming `path`.
    ///
    /// Complex signals become their modulus |z| (the convention of
    /// [`Signal::to_f32`]; [`super::load_stack`] warns when it applies).
    ///
    /// # Errors
    /// An unreadable signal; rank other than 2 or 3, or an empty array.
    pub fn to_stack(&self, path: &Path) -> Result<Stack> {
        if let Some(r) = &self.unreadable {
            return Err(Error::format(
                path,
                format!("signal '{}' is unreadable: {r}", self.title),
            ));
        }
        let (f, ny, nx) = match self.shape.as_slice() {
            [ny, nx] => (1, *ny, *nx),
            [f, ny, nx] => (*f, *ny, *nx),
            _ => {
                return Err(Error::shape(
                    format!("{}: signal '{}'", path.display(), self.title),
                    "a 2-D image or 3-D stack",
                    format!("shape {:?}", self.shape),
                ))
            }
        };
        let data = Array3::from_shape_vec((f, ny, nx), self.to_f32())
            .map_err(|e| Error::format(path, format!("signal '{}': {e}", self.title)))?;
        let cal = match self.pixel_size_angstrom() {
            Some(p) => Calibration::from_pixel_size(p)?,
            None => Calibration::Uncalibrated,
        };
        Stack::new(data, cal).map_err(|e| e.context(path.display()))
    }
}

/// Pick one signal: `None` → the only image signal (error listing them if
/// there are several), `Some("N")` → by index, otherwise by title
/// (case-insensitive).
///
/// # Errors
/// No such signal; several signals and no choice.
pub fn pick<'a>(path: &Path, fs: &'a FileSignals, choice: Option<&str>) -> Result<&'a Signal> {
    let list = || {
        fs.signals
            .iter()
            .enumerate()
            .map(|(i, s)| match s.unreadable {
                Some(_) => format!("{i}: {} (unreadable)", s.title),
                None => format!("{i}: {}", s.title),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hit = match choice {
        None => match fs.signals.len() {
            0 => {
                return Err(Error::Empty {
                    what: path.display().to_string(),
                    reason: "no image signal in the file".into(),
                })
            }
            1 => (0, &fs.signals[0]),
            _ => {
                return Err(Error::param(
                    "signal",
                    format!(
                        "{} holds several signals ({}); choose one by index or title",
                        path.display(),
                        list()
                    ),
                ))
            }
        },
        Some(c) => {
            let hit = match c.parse::<usize>() {
                Ok(i) => fs.signals.get(i).map(|s| (i, s)),
                Err(_) => fs
                    .signals
                    .iter()
                    .enumerate()
                    .find(|(_, s)| s.title.eq_ignore_ascii_case(c)),
            };
            hit.ok_or_else(|| {
                Error::param(
                    "signal",
                    format!("{}: no signal '{c}' (signals: {})", path.display(), list()),
                )
            })?
        }
    };
    match &hit.1.unreadable {
        Some(r) => Err(Error::format(
            path,
            format!("signal {} '{}' is unreadable: {r}", hit.0, hit.1.title),
        )),
        None => Ok(hit.1),
    }
}

/// The one-line reason of an error for an unreadable signal: a format
/// error's reason without the file name (the listing shows it).
pub(crate) fn one_line_reason(e: Error) -> String {
    let r = match e {
        Error::Format { reason, .. } => reason,
        other => other.to_string(),
    };
    r.replace(['\n', '\r'], " ")
}

/// A file whose signals are all unreadable is an error: the first one's
/// reason, and how many others failed.
///
/// # Errors
/// Every signal unreadable.
pub(crate) fn require_readable(path: &Path, signals: &[Signal]) -> Result<()> {
    if signals.iter().any(|s| s.unreadable.is_none()) {
        return Ok(());
    }
    let Some(s) = signals.first() else {
        return Ok(());
    };
    let more = match signals.len() {
        1 => String::new(),
        n => format!(" (and the {} other signal(s))", n - 1),
    };
    Err(Error::format(
        path,
        format!(
            "signal 0 '{}' is unreadable: {}{more}",
            s.title,
            s.unreadable.clone().unwrap_or_default()
        ),
    ))
}

/// Check that `n` elements of `dtype` fit in the `available` bytes before
/// allocating anything (corrupt length fields must not allocate).
///
/// # Errors
/// A length that overflows or exceeds the available bytes.
pub(crate) fn check_len(
    path: &Path,
    what: &str,
    n: u64,
    size: usize,
    available: u64,
) -> Result<usize> {
    let bytes = n.checked_mul(size as u64);
    match bytes {
        Some(b) if b <= available => usize::try_from(b)
            .map_err(|_| Error::format(path, format!("{what}: too large"))),
        _ => Err(Error::format(
            path,
            format!("{what}: {n} elements of {size} bytes exceed the {available} bytes left in the file (truncated or corrupt)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_normalise_to_angstrom() {
        let a = Axis::from_unit("x", 0.02, 1.0, "nm");
        assert_eq!((a.scale, a.offset, a.kind), (0.2, 10.0, AxisKind::Length));
        let b = Axis::from_unit("x", 2e-11, 0.0, "m");
        assert!((b.scale - 0.2).abs() < 1e-12);
        assert!((Axis::from_unit("x", 20.0, 0.0, "pm").scale - 0.2).abs() < 1e-12);
        assert!((Axis::from_unit("x", 1e-4, 0.0, "µm").scale - 1.0).abs() < 1e-12);
        let r = Axis::from_unit("k", 0.5, 0.0, "1/nm");
        assert_eq!((r.scale, r.kind), (0.05, AxisKind::Reciprocal));
        let t = Axis::from_unit("t", 0.1, 0.0, "s");
        assert_eq!((t.unit.as_str(), t.kind), ("s", AxisKind::Other));
        let e = Axis::from_unit("E", 0.1, 0.0, "eV");
        assert_eq!(e.kind, AxisKind::Other);
    }

    #[test]
    fn conversions() {
        let s = Signal {
            title: "t".into(),
            shape: vec![1, 2],
            dtype: Dtype::C64,
            axes: vec![],
            acquisition: Acquisition::default(),
            metadata: BTreeMap::new(),
            unreadable: None,
            bytes: [3f32, 4.0, 0.0, -2.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        };
        assert_eq!(s.to_f32(), vec![5.0, 2.0]);
        assert!(check_len(Path::new("f"), "data", u64::MAX, 4, 100).is_err());
        assert!(check_len(Path::new("f"), "data", 26, 4, 100).is_err());
        assert_eq!(
            check_len(Path::new("f"), "data", 25, 4, 100).ok(),
            Some(100)
        );
    }
}
