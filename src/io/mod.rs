//! Every file in or out: readers return calibrated [`Image`]/[`Stack`],
//! writers are atomic (temp file in the target directory + rename).
//!
//! | format | read | write | calibration |
//! |---|---|---|---|
//! | NPY (`.npy`) | 2-D image or 3-D `[frame, y, x]`; `i1 u1 i2 u2 i4 u4 i8 u8 f2 f4 f8`, either byte order, C or Fortran order | float32, C order | none (uncalibrated) |
//! | TIFF (`.tif`, `.tiff`) | single/multi-page; 8/16/32-bit signed/unsigned integer, 32/64-bit float, grey | 32-bit float, single or multi-page | ImageJ `unit=` + resolution tags, or `ResolutionUnit` inch/cm |
//! | MRC (`.mrc`, `.mrcs`, `.st`, `.map`) | modes 0, 1, 2, 6, 12; extended header skipped; either byte order | mode 2 | cell length / grid size (Å) |
//! | PNG | — | 8-bit grey preview, percentile contrast | — |
//!
//! Formats are recognised by their magic bytes first and by extension
//! second. Values are converted to `f32` on read. Nothing here checks for
//! NaN: readers pass data through as stored, the pipeline validates.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::image::{Image, Stack};

mod atomic;
pub mod cp2k;
mod mrc;
mod npy;
mod png;
mod tiff;
pub mod xyz;

pub use atomic::{atomic_write, write_text};
pub use mrc::{read_mrc, write_mrc_f32};
pub use npy::{read_npy, write_npy_2d, write_npy_3d};
pub use png::{to_gray_u8, write_png_panels, write_png_preview, write_rgb};
pub use tiff::{read_tiff, write_tiff_f32, write_tiff_stack_f32};

/// A file format qdscope reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// NumPy `.npy`.
    Npy,
    /// TIFF (incl. ImageJ stacks).
    Tiff,
    /// MRC / MRCS.
    Mrc,
}

/// Recognise the format of `path` by magic bytes, then by extension.
///
/// # Errors
/// `Error::Io` if the file cannot be opened; `Error::UnknownFormat` if neither
/// the content nor the extension is a supported format.
pub fn detect_format(path: &Path) -> Result<Format> {
    let mut head = [0u8; 8];
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let n = read_up_to(&mut f, &mut head).map_err(|e| Error::io(path, e))?;
    let head = &head[..n];
    if head.starts_with(b"\x93NUMPY") {
        return Ok(Format::Npy);
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
    match ext.as_str() {
        "mrc" | "mrcs" | "st" | "map" | "ali" | "rec" => Ok(Format::Mrc),
        "npy" => Ok(Format::Npy),
        "tif" | "tiff" => Ok(Format::Tiff),
        _ => Err(Error::UnknownFormat {
            path: path.to_path_buf(),
            hint: "supported: .npy, .tif/.tiff, .mrc/.mrcs".into(),
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
    match detect_format(path)? {
        Format::Npy => read_npy(path),
        Format::Tiff => read_tiff(path),
        Format::Mrc => read_mrc(path),
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
