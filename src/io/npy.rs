//! NumPy `.npy` reader and float32 writer, hand-written: the format is a
//! short text header plus raw data, and writing it ourselves gives precise
//! error messages (truncation with byte counts, unsupported dtype) that a
//! generic crate does not.
//!
//! Reads versions 1.0–3.0, dtypes `i1 u1 i2 u2 i4 u4 i8 u8 f2 f4 f8` in
//! either byte order, C or Fortran order, 2-D images and 3-D `[frame, y, x]`
//! stacks. Writes float32 little-endian C order, version 1.0.

use std::io::Write;
use std::path::Path;

use ndarray::{Array3, ArrayView2, ArrayView3, ShapeBuilder};

use super::{atomic_write, empty_stack};
use crate::error::{Error, Result};
use crate::image::{Calibration, Stack};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Uint,
    Float,
}

struct Header {
    kind: Kind,
    size: usize,
    big_endian: bool,
    fortran: bool,
    shape: Vec<usize>,
}

fn parse_header(path: &Path, h: &str) -> Result<Header> {
    let bad = |r: &str| Error::format(path, format!("invalid NPY header: {r}"));
    let value_after = |key: &str| -> Option<&str> {
        let i = h.find(&format!("'{key}'"))?;
        let rest = &h[i + key.len() + 2..];
        let c = rest.find(':')?;
        Some(rest[c + 1..].trim_start())
    };
    let descr = value_after("descr").ok_or_else(|| bad("no 'descr'"))?;
    let q = descr.chars().next().ok_or_else(|| bad("empty 'descr'"))?;
    if q != '\'' && q != '"' {
        return Err(Error::format(
            path,
            "unsupported NPY dtype (structured arrays are not images)",
        ));
    }
    let end = descr[1..]
        .find(q)
        .ok_or_else(|| bad("unterminated 'descr'"))?;
    let d = &descr[1..1 + end];
    // Split by characters, not bytes: a non-ASCII first character must be
    // an error, not a slice inside a UTF-8 sequence.
    let mut chars = d.chars();
    let big_endian = match chars.next() {
        Some('>') => true,
        Some('<' | '|' | '=') => false,
        _ => return Err(bad(&format!("dtype '{d}'"))),
    };
    let kc = chars.next().map(String::from).unwrap_or_default();
    let kc = kc.as_str();
    let sz = chars.as_str();
    let size: usize = sz.parse().map_err(|_| bad(&format!("dtype '{d}'")))?;
    let kind = match (kc, size) {
        ("i", 1 | 2 | 4 | 8) => Kind::Int,
        ("u", 1 | 2 | 4 | 8) => Kind::Uint,
        ("f", 2 | 4 | 8) => Kind::Float,
        _ => {
            return Err(Error::format(
                path,
                format!("unsupported NPY dtype '{d}' (need an integer or float type)"),
            ))
        }
    };
    let fo = value_after("fortran_order").ok_or_else(|| bad("no 'fortran_order'"))?;
    let fortran = if fo.starts_with("True") {
        true
    } else if fo.starts_with("False") {
        false
    } else {
        return Err(bad("'fortran_order' is neither True nor False"));
    };
    let sh = value_after("shape").ok_or_else(|| bad("no 'shape'"))?;
    if !sh.starts_with('(') {
        return Err(bad("'shape' is not a tuple"));
    }
    let close = sh.find(')').ok_or_else(|| bad("unterminated 'shape'"))?;
    let shape = sh[1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| bad("'shape' has a non-integer entry"))?;
    Ok(Header {
        kind,
        size,
        big_endian,
        fortran,
        shape,
    })
}

fn convert(h: &Header, b: &[u8]) -> f32 {
    macro_rules! get {
        ($t:ty, $n:expr) => {{
            let mut a = [0u8; $n];
            a.copy_from_slice(&b[..$n]);
            if h.big_endian {
                <$t>::from_be_bytes(a)
            } else {
                <$t>::from_le_bytes(a)
            }
        }};
    }
    match (h.kind, h.size) {
        (Kind::Int, 1) => b[0] as i8 as f32,
        (Kind::Uint, 1) => b[0] as f32,
        (Kind::Int, 2) => get!(i16, 2) as f32,
        (Kind::Uint, 2) => get!(u16, 2) as f32,
        (Kind::Int, 4) => get!(i32, 4) as f32,
        (Kind::Uint, 4) => get!(u32, 4) as f32,
        (Kind::Int, 8) => get!(i64, 8) as f32,
        (Kind::Uint, 8) => get!(u64, 8) as f32,
        (Kind::Float, 2) => half_to_f32(get!(u16, 2)),
        (Kind::Float, 4) => get!(f32, 4),
        _ => get!(f64, 8) as f32,
    }
}

/// IEEE 754 binary16 → f32 (exact for every half value, incl. subnormals, ±∞, NaN).
pub(crate) fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exp = (h >> 10) & 0x1f;
    let frac = (h & 0x3ff) as f32;
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 => {
            if frac == 0.0 {
                sign * f32::INFINITY
            } else {
                f32::NAN
            }
        }
        e => sign * (1.0 + frac / 1024.0) * 2f32.powi(e as i32 - 15),
    }
}

/// Read a 2-D or 3-D NPY file as a stack (uncalibrated).
///
/// # Errors
/// Missing file, bad magic or header, unsupported dtype, a shape that is not
/// 2-D or 3-D, zero frames, truncated data.
pub fn read_npy(path: &Path) -> Result<Stack> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.len() < 10 || !bytes.starts_with(b"\x93NUMPY") {
        return Err(Error::format(path, "not an NPY file (bad magic)"));
    }
    let major = bytes[6];
    let (hlen, start): (usize, usize) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(Error::format(path, "truncated NPY header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(Error::format(path, format!("unsupported NPY version {v}"))),
    };
    let hend = start
        .checked_add(hlen)
        .filter(|e| *e <= bytes.len())
        .ok_or_else(|| Error::format(path, "truncated NPY header"))?;
    let htext = std::str::from_utf8(&bytes[start..hend])
        .map_err(|_| Error::format(path, "NPY header is not text"))?;
    let h = parse_header(path, htext)?;
    let (f, ny, nx) = match h.shape.as_slice() {
        [ny, nx] => (1, *ny, *nx),
        [f, ny, nx] => (*f, *ny, *nx),
        s => {
            return Err(Error::shape(
                path.display().to_string(),
                "a 2-D image or a 3-D stack [frame, y, x]",
                format!("shape {s:?} ({}-D)", s.len()),
            ))
        }
    };
    let count = f
        .checked_mul(ny)
        .and_then(|v| v.checked_mul(nx))
        .ok_or_else(|| Error::format(path, "NPY shape overflows"))?;
    if count == 0 {
        return Err(empty_stack(
            path,
            &format!("no pixels (shape {:?})", h.shape),
        ));
    }
    let need = count
        .checked_mul(h.size)
        .ok_or_else(|| Error::format(path, "NPY shape overflows"))?;
    let data = &bytes[hend..];
    if data.len() < need {
        return Err(Error::format(
            path,
            format!(
                "truncated: expected {need} bytes of data for shape {:?}, found {}",
                h.shape,
                data.len()
            ),
        ));
    }
    let values: Vec<f32> = data[..need]
        .chunks_exact(h.size)
        .map(|c| convert(&h, c))
        .collect();
    let shape = (f, ny, nx);
    let arr = if h.fortran {
        Array3::from_shape_vec(shape.f(), values)
    } else {
        Array3::from_shape_vec(shape, values)
    }
    .map_err(|e| Error::format(path, format!("NPY data does not fit its shape: {e}")))?;
    Stack::new(
        arr.as_standard_layout().into_owned(),
        Calibration::Uncalibrated,
    )
    .map_err(|e| e.context(path.display()))
}

fn write_npy(path: &Path, shape: &[usize], data: impl Iterator<Item = f32>) -> Result<()> {
    let values: Vec<u8> = data.flat_map(f32::to_le_bytes).collect();
    write_npy_bytes(path, "<f4", shape, &values)
}

/// Write an NPY file of any dtype (`descr` such as `<u2`, `<c8`, `|u1`,
/// or a structured type's list `[('real', '<i2'), ('imag', '<i2')]`) from its little-endian C-order bytes, atomically.
///
/// # Errors
/// A byte count that does not match the shape; I/O errors naming `path`.
pub fn write_npy_bytes(path: &Path, descr: &str, shape: &[usize], bytes: &[u8]) -> Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    // A structured type (`[('real', '<i2'), …]`) is a list, not a string.
    let descr = if descr.starts_with('[') {
        descr.to_string()
    } else {
        format!("'{descr}'")
    };
    let mut header =
        format!("{{'descr': {descr}, 'fortran_order': False, 'shape': {shape_txt}, }}");
    // Pad so that magic + len + header is a multiple of 64 (NPY 1.0 rule).
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let hlen =
        u16::try_from(header.len()).map_err(|_| Error::format(path, "NPY header too long"))?;
    atomic_write(path, |w| {
        w.write_all(b"\x93NUMPY\x01\x00")?;
        w.write_all(&hlen.to_le_bytes())?;
        w.write_all(header.as_bytes())?;
        w.write_all(bytes)
    })
}

/// Write a 2-D float32 NPY file (C order), atomically.
pub fn write_npy_2d(path: &Path, a: ArrayView2<f32>) -> Result<()> {
    let (ny, nx) = a.dim();
    write_npy(path, &[ny, nx], a.iter().copied())
}

/// Write a 3-D float32 NPY file `[frame, y, x]` (C order), atomically.
pub fn write_npy_3d(path: &Path, a: ArrayView3<f32>) -> Result<()> {
    let (f, ny, nx) = a.dim();
    write_npy(path, &[f, ny, nx], a.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_dtype_is_an_error_not_a_panic() {
        let p = Path::new("x.npy");
        for d in ["\u{e9}f4", "<\u{e9}4", "<f\u{e9}", "\u{1f600}", "<", ""] {
            let h = format!("{{'descr': '{d}', 'fortran_order': False, 'shape': (2, 2), }}");
            let e = parse_header(p, &h).err().map(|e| e.to_string());
            assert!(
                e.is_some_and(|m| m.contains("dtype") && !m.contains('\n')),
                "{d}"
            );
        }
    }

    #[test]
    fn half_floats() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x7bff), 65504.0);
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
        assert!(half_to_f32(0x7e00).is_nan());
        assert_eq!(half_to_f32(0xfc00), f32::NEG_INFINITY);
    }
}
