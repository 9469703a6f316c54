//! Every file in or out: readers return calibrated [`Image`]/[`Stack`],
//! writers are atomic (temp file in the target directory + rename).
//!
//! | format | read | write | calibration |
//! |---|---|---|---|
//! | NPY (`.npy`) | 2-D image or 3-D `[frame, y, x]`; `i1 u1 i2 u2 i4 u4 i8 u8 f2 f4 f8`, either byte order, C or Fortran order | float32, C order | none (uncalibrated) |
//! | TIFF (`.tif`, `.tiff`) | single/multi-page; 8/16/32-bit signed/unsigned integer, 32/64-bit float, grey, in the stored dtype | 32-bit float, single or multi-page | ImageJ `unit=` + resolution tags; DigitalMicrograph export tags; FEI/Thermo Fisher SEM `[Scan] PixelWidth`; `ResolutionUnit` inch/cm |
//! | MRC (`.mrc`, `.mrcs`, `.st`, `.map`) | modes 0 (int8, or uint8 by the IMOD flag), 1, 2, 3/4 (complex), 6, 12 in the stored dtype; extended header skipped; either byte order | mode 2 | cell length / grid size (Å); negative → uncalibrated + warning |
//! | PNG | — | 8-bit grey preview, percentile contrast | — |
//! | DM3/DM4 (`dm`) | every image of `ImageList` (thumbnail skipped); all numeric DataTypes incl. complex, packed complex (DataType 5, unpacked to the centred complex transform), RGB, bool, i64/u64; either byte order; 2-D/3-D | — | `Calibrations/Dimension` scale/origin/units; `Microscope Info` voltage, magnification, convergence; acquisition date |
//! | Velox EMD (`emd`) | every `Data/Image/<uuid>` (frames (y, x, f) → (f, y, x)); chunked, deflate/shuffle, unwritten chunks = fill value; titles from display labels and operations | — | JSON `Metadata`: pixel size, kV, convergence, detector angles, dwell time |
//! | Berkeley EMD (`emd`) | every `emd_group_type` group (`data`, `dim1…`); HyperSpy-written groups with their axes reversed back | — | `dimN` vectors with `name`/`units` |
//! | TIA SER (+ EMI) (`ser`, `emi`) | 2-D element series (series version 0x0210 32-bit / 0x0220 64-bit offsets), data types 1–10, series dimensions kept (a scan of images is 4-D), rows top first; the `.emi` reads every sibling `NAME_N.ser` as a signal | — | element calibration (m, or 1/m for diffraction); series dimensions; EMI `<ObjectInfo>` XML (kV, magnification) |
//!
//! Multi-signal files are read as [`signal::FileSignals`]; [`load_stack`]
//! picks one (`--signal N|TITLE`) as a calibrated [`Stack`] with its
//! [`signal::Acquisition`]. Lengths in files (m, nm, µm, pm) are normalised
//! to Å and reciprocal lengths to 1/Å; other axes keep their unit.
//!
//! Formats are recognised by their magic bytes first and by extension
//! second. Values are converted to `f32` for the pipeline (complex → the
//! modulus |z|, with a warning from [`load_stack`]); `convert` to NPY
//! keeps the stored dtype. Nothing here checks for
//! NaN: readers pass data through as stored, the pipeline validates.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::image::{Image, Stack};
use signal::{Acquisition, Axis, FileSignals, Signal};

mod atomic;
pub mod cp2k;
mod dm;
mod emd;
mod mrc;
mod npy;
mod png;
mod ser;
pub mod signal;
mod tiff;
pub mod xyz;

pub use atomic::{atomic_write, write_text};
pub use mrc::{read_mrc, write_mrc_f32};
pub use npy::{read_npy, write_npy_2d, write_npy_3d, write_npy_bytes};
pub use png::{to_gray_u8, write_png_panels, write_png_preview, write_rgb};
pub use tiff::{read_tiff, write_tiff_f32, write_tiff_stack_f32};

// The TIA EMI metadata parser behind `read_signals`. Public only because the
// reader tests (`tests/readers.rs`, through `tests/support/testfiles.rs`)
// check it on its own with hand-made XML and byte soup; not part of the
// API, hence hidden.
#[doc(hidden)]
pub use ser::emi_metadata;

/// A file format qdscope reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// NumPy `.npy`.
    Npy,
    /// TIFF (incl. ImageJ stacks).
    Tiff,
    /// MRC / MRCS.
    Mrc,
    /// Gatan DigitalMicrograph DM3/DM4.
    Dm,
    /// HDF5 EMD (Velox or Berkeley).
    Emd,
    /// TIA SER (+ EMI).
    Ser,
    /// TIA EMI: the acquisition's metadata, read with its `NAME_N.ser` files.
    Emi,
}

/// Recognise the format of `path` by magic bytes, then by extension.
///
/// # Errors
/// `Error::Io` if the file cannot be opened; `Error::UnknownFormat` if neither
/// the content nor the extension is a supported format.
pub fn detect_format(path: &Path) -> Result<Format> {
    let mut head = [0u8; 16];
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let n = read_up_to(&mut f, &mut head).map_err(|e| Error::io(path, e))?;
    let head = &head[..n];
    // An EMI has no documented signature; TIA names it `.emi`.
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("emi"))
    {
        return Ok(Format::Emi);
    }
    if head.starts_with(b"\x93NUMPY") {
        return Ok(Format::Npy);
    }
    if head.starts_with(b"\x89HDF\r\n\x1a\n") {
        return Ok(Format::Emd);
    }
    if head.starts_with(b"II\x97\x01") {
        return Ok(Format::Ser);
    }
    if head.starts_with(b"II*\0")
        || head.starts_with(b"MM\0*")
        || head.starts_with(b"II+\0")
        || head.starts_with(b"MM\0+")
    {
        return Ok(Format::Tiff);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    // DM's signature (big-endian version 3 or 4, then a 0/1 byte-order
    // flag) is weak: a big-endian MRC with nx = 3 or 4 starts the same way,
    // so MRC extensions win over it.
    let mrc_ext = matches!(ext.as_str(), "mrc" | "mrcs" | "st" | "map" | "ali" | "rec");
    let flag_at = |i: usize| head.len() >= i + 4 && head[i..i + 3] == [0, 0, 0] && head[i + 3] <= 1;
    if !mrc_ext
        && head.len() >= 4
        && ((head[..4] == [0, 0, 0, 3] && flag_at(8)) || (head[..4] == [0, 0, 0, 4] && flag_at(12)))
    {
        return Ok(Format::Dm);
    }
    match ext.as_str() {
        "mrc" | "mrcs" | "st" | "map" | "ali" | "rec" => Ok(Format::Mrc),
        "npy" => Ok(Format::Npy),
        "tif" | "tiff" => Ok(Format::Tiff),
        "dm3" | "dm4" | "emd" | "h5" | "ser" => Err(Error::format(
            path,
            format!("the content is not a {} file (wrong signature)", ext.to_ascii_uppercase()),
        )),
        _ => Err(Error::UnknownFormat {
            path: path.to_path_buf(),
            hint: "supported: .npy, .tif/.tiff, .mrc/.mrcs, .dm3/.dm4, .emd (Velox, Berkeley), .ser/.emi (TIA)".into(),
        }),
    }
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = f.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

/// Read any supported file as a stack (a 2-D image becomes one frame).
///
/// # Errors
/// Missing or unreadable file, unknown format, corrupt or truncated content,
/// arrays that are not 2-D or 3-D, an empty (0-frame) stack.
pub fn read_stack(path: &Path) -> Result<Stack> {
    Ok(load_stack(path, None)?.stack)
}

/// Every signal of a file. NPY files give one float32 signal; TIFF (one
/// signal), MRC, DM3/DM4, EMD and SER give theirs in the stored dtype. A signal the
/// reader cannot decode keeps its place with [`Signal::unreadable`] set.
///
/// # Errors
/// As the format's reader.
pub fn read_signals(path: &Path) -> Result<FileSignals> {
    let simple = |s: Stack, name: &str| {
        let (f, ny, nx) = s.data.dim();
        let len = |kind: &str| match s.calibration.pixel_size_angstrom() {
            Some(p) => Axis::from_unit(kind, p, 0.0, "A"),
            None => Axis::uncalibrated(kind),
        };
        FileSignals {
            format: name.into(),
            signals: vec![Signal {
                title: "image".into(),
                shape: if f == 1 {
                    vec![ny, nx]
                } else {
                    vec![f, ny, nx]
                },
                dtype: signal::Dtype::F32,
                axes: if f == 1 {
                    vec![len("y"), len("x")]
                } else {
                    vec![Axis::uncalibrated("frame"), len("y"), len("x")]
                },
                acquisition: Acquisition::default(),
                metadata: std::collections::BTreeMap::new(),
                bytes: s.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                unreadable: None,
            }],
            warnings: crate::Warnings::default(),
        }
    };
    match detect_format(path)? {
        Format::Npy => Ok(simple(read_npy(path)?, "NPY")),
        Format::Tiff => Ok(tiff_signals(path)?),
        Format::Mrc => mrc::read_mrc_signals(path),
        Format::Dm => dm::read_dm(path),
        Format::Emd => emd::read_emd(path),
        Format::Ser => ser::read_ser(path),
        Format::Emi => ser::read_emi(path),
    }
}

/// A TIFF as one signal in its stored dtype: (y, x), or (page, y, x).
fn tiff_signals(path: &Path) -> Result<FileSignals> {
    let p = tiff::read_pages(path)?;
    let len = |kind: &str, px: f64| {
        if px.is_finite() && px > 0.0 {
            Axis::from_unit(kind, px, 0.0, "A")
        } else {
            Axis::uncalibrated(kind)
        }
    };
    let (py, px) = p.pixel_yx;
    let (shape, axes) = if p.pages == 1 {
        (vec![p.height, p.width], vec![len("y", py), len("x", px)])
    } else {
        (
            vec![p.pages, p.height, p.width],
            vec![Axis::uncalibrated("frame"), len("y", py), len("x", px)],
        )
    };
    Ok(FileSignals {
        format: "TIFF".into(),
        signals: vec![Signal {
            title: "image".into(),
            shape,
            dtype: p.dtype,
            axes,
            acquisition: Acquisition::default(),
            metadata: std::collections::BTreeMap::new(),
            bytes: p.bytes,
            unreadable: None,
        }],
        warnings: crate::Warnings::default(),
    })
}

/// A stack with what its file says about the acquisition.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The calibrated stack.
    pub stack: Stack,
    /// Acquisition parameters found in the file.
    pub acquisition: Acquisition,
    /// Title of the signal read.
    pub title: String,
    /// Reader remarks (missing EMI, skipped thumbnail, …).
    pub warnings: crate::Warnings,
}

/// Read one signal (`--signal N|TITLE`; `None` = the only one) as a stack.
///
/// # Errors
/// Reader errors; an ambiguous or unknown signal; a signal that is not a
/// 2-D image or 3-D stack.
pub fn load_stack(path: &Path, choice: Option<&str>) -> Result<Loaded> {
    let format = detect_format(path)?;
    match format {
        Format::Npy | Format::Tiff if choice.is_none_or(|c| c == "0") => {
            let stack = match format {
                Format::Npy => read_npy(path)?,
                _ => read_tiff(path)?,
            };
            Ok(Loaded {
                stack,
                acquisition: Acquisition::default(),
                title: "image".into(),
                warnings: crate::Warnings::default(),
            })
        }
        _ => {
            let fs = read_signals(path)?;
            let sig = signal::pick(path, &fs, choice)?;
            let mut warnings = fs.warnings.clone();
            if sig.dtype.is_complex() {
                warnings.push(format!(
                    "signal '{}' is {}: its modulus |z| is analysed",
                    sig.title,
                    sig.dtype.name()
                ));
            }
            Ok(Loaded {
                stack: sig.to_stack(path)?,
                acquisition: sig.acquisition.clone(),
                title: sig.title.clone(),
                warnings,
            })
        }
    }
}

/// Read a 2-D image (a 3-D file with exactly one frame is accepted).
///
/// # Errors
/// As [`read_stack`], and `Error::Shape` for more than one frame.
pub fn read_image(path: &Path) -> Result<Image> {
    let s = read_stack(path)?;
    if s.n_frames() != 1 {
        return Err(Error::shape(
            path.display().to_string(),
            "a single 2-D image",
            format!("a stack of {} frames", s.n_frames()),
        ));
    }
    Ok(Image::new(s.frame(0).to_owned(), s.calibration))
}

/// Shared type of the writer callback of [`atomic_write`].
pub type Writer = BufWriter<File>;

/// Empty-stack error for `path`.
pub(crate) fn empty_stack(path: &Path, reason: &str) -> Error {
    Error::Empty {
        what: path.display().to_string(),
        reason: reason.to_string(),
    }
}
