//! MRC/MRCS (MRC2014) reader and mode-2 writer, hand-written: a fixed
//! 1024-byte header and raw data; the hand-written reader validates every
//! header field against the file size and names the problem.
//!
//! The stored dtype is kept: mode 0 int8 (uint8 when the IMOD stamp
//! 1146047817 at byte 152 is present and bit 0 of the IMOD flags at
//! byte 156, "bytes are signed", is clear; without the stamp MRC2014 says
//! signed), 1 int16, 2 float32, 3 complex int16, 4 complex float32, 6
//! uint16, 12 float16. The extended header (`NSYMBT` bytes) is skipped.
//! Byte order from the machine stamp (`0x44 0x44` little, `0x11 0x11`
//! big; little if unset). Pixel size = cell length X / MX in Å when both
//! are positive (applied to x and y); a negative or non-finite cell
//! length reads as uncalibrated with a warning. `nz = 1` is an image,
//! `nz > 1` a stack (movie, MRCS).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::signal::{Acquisition, Axis, Dtype, FileSignals, Signal};
use super::{atomic_write, empty_stack};
use crate::error::{Error, Result, Warnings};
use crate::image::Stack;

const HEADER: usize = 1024;
/// `imodStamp` value marking IMOD's use of the flags word after it.
const IMOD_STAMP: i32 = 1_146_047_817;

/// Mode → stored dtype and the byte size of one component (for swapping).
fn mode_dtype(mode: i32, signed_bytes: bool) -> Option<(Dtype, usize)> {
    Some(match mode {
        0 if signed_bytes => (Dtype::I8, 1),
        0 => (Dtype::U8, 1),
        1 => (Dtype::I16, 2),
        2 => (Dtype::F32, 4),
        3 => (Dtype::Ci16, 2),
        4 => (Dtype::C64, 4),
        6 => (Dtype::U16, 2),
        12 => (Dtype::F16, 2),
        _ => return None,
    })
}

/// Read an MRC/MRCS file as a stack (complex modes as their modulus).
///
/// # Errors
/// As reading the MRC signals (header, mode, sizes), and those of [`Signal::to_stack`].
pub fn read_mrc(path: &Path) -> Result<Stack> {
    read_mrc_signals(path)?.signals[0].to_stack(path)
}

/// The header fields the reader uses, in the file's byte order.
struct Header {
    nx: usize,
    ny: usize,
    nz: usize,
    mode: i32,
    dtype: Dtype,
    /// Component size for byte swapping.
    part: usize,
    big: bool,
    nsymbt: usize,
    mx: i32,
    xlen: f64,
}

fn header(path: &Path, bytes: &[u8]) -> Result<Header> {
    let big = match (bytes[212], bytes[213]) {
        (0x11, 0x11) => true,
        (0x44, 0x44) | (0x44, 0x41) => false,
        _ => {
            // No stamp: pick the byte order that gives a sane mode.
            let le = i32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
            !(0..=16).contains(&le)
        }
    };
    let word = |i: usize| -> [u8; 4] {
        let mut w = [0u8; 4];
        w.copy_from_slice(&bytes[4 * i..4 * i + 4]);
        if big {
            w.reverse();
        }
        w
    };
    let int = |i: usize| i32::from_le_bytes(word(i));
    let (nx, ny, nz, mode) = (int(0), int(1), int(2), int(3));
    if nx <= 0 || ny <= 0 || nz < 0 {
        return Err(Error::format(
            path,
            format!("invalid MRC dimensions {nx}x{ny}x{nz}"),
        ));
    }
    if nz == 0 {
        return Err(empty_stack(path, "MRC file with 0 sections"));
    }
    // Words 38 and 39 (bytes 152, 156): imodStamp, imodFlags.
    let signed_bytes = int(38) != IMOD_STAMP || int(39) & 1 == 1;
    let (dtype, part) = mode_dtype(mode, signed_bytes).ok_or_else(|| {
        Error::format(
            path,
            format!("unsupported MRC mode {mode} (supported: 0, 1, 2, 3, 4, 6, 12)"),
        )
    })?;
    Ok(Header {
        nx: nx as usize,
        ny: ny as usize,
        nz: nz as usize,
        mode,
        dtype,
        part,
        big,
        nsymbt: int(23).max(0) as usize,
        mx: int(7),
        xlen: f64::from(f32::from_le_bytes(word(10))),
    })
}

/// Read an MRC/MRCS file as one signal in its stored dtype.
///
/// # Errors
/// Missing file, header shorter than 1024 bytes, non-positive dimensions,
/// unsupported mode, truncated data.
pub fn read_mrc_signals(path: &Path) -> Result<FileSignals> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.len() < HEADER {
        return Err(Error::format(
            path,
            format!(
                "truncated: an MRC header needs {HEADER} bytes, file has {}",
                bytes.len()
            ),
        ));
    }
    let h = header(path, &bytes)?;
    let (nx, ny, nz, mode) = (h.nx, h.ny, h.nz, h.mode);
    let need = [nx, ny, nz, h.dtype.size()]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::format(path, "MRC dimensions overflow"))?;
    let start = HEADER.saturating_add(h.nsymbt);
    let have = bytes.len().saturating_sub(start);
    if have < need {
        return Err(Error::format(
            path,
            format!(
                "truncated: expected {need} bytes of data for {nx}x{ny}x{nz} (mode {mode}), found {have}"
            ),
        ));
    }
    let mut data = bytes[start..start + need].to_vec();
    if h.big && h.part > 1 {
        for c in data.chunks_exact_mut(h.part) {
            c.reverse();
        }
    }
    let mut warnings = Warnings::default();
    let (mx, xlen) = (h.mx, h.xlen);
    let len = |name: &str| {
        if mx > 0 && xlen.is_finite() && xlen > 0.0 {
            Axis::from_unit(name, xlen / f64::from(mx), 0.0, "A")
        } else {
            Axis::uncalibrated(name)
        }
    };
    if !(xlen.is_finite() && xlen >= 0.0) || mx < 0 {
        warnings.push(format!(
            "cell length X {xlen} Å over {mx} intervals is not a pixel size: read uncalibrated"
        ));
    }
    let (shape, axes) = if nz == 1 {
        (vec![ny, nx], vec![len("y"), len("x")])
    } else {
        (
            vec![nz, ny, nx],
            vec![Axis::uncalibrated("section"), len("y"), len("x")],
        )
    };
    let mut metadata = BTreeMap::new();
    metadata.insert("mode".into(), mode.to_string());
    Ok(FileSignals {
        format: "MRC".into(),
        signals: vec![Signal {
            title: "image".into(),
            shape,
            dtype: h.dtype,
            axes,
            acquisition: Acquisition::default(),
            metadata,
            bytes: data,
            unreadable: None,
        }],
        warnings,
    })
}

/// Write a stack as MRC mode 2 (float32, little endian), atomically; the
/// pixel size goes into the cell lengths.
pub fn write_mrc_f32(path: &Path, stack: &Stack) -> Result<()> {
    let (nz, ny, nx) = stack.data.dim();
    let dim = |v: usize| {
        i32::try_from(v)
            .map_err(|_| Error::format(path, format!("dimension {v} too large for MRC")))
    };
    let (ix, iy, iz) = (dim(nx)?, dim(ny)?, dim(nz)?);
    let p = stack.calibration.pixel_size_angstrom().unwrap_or(0.0) as f32;
    let mut h = vec![0u8; HEADER];
    let mut put = |i: usize, b: [u8; 4]| h[4 * i..4 * i + 4].copy_from_slice(&b);
    put(0, ix.to_le_bytes());
    put(1, iy.to_le_bytes());
    put(2, iz.to_le_bytes());
    put(3, 2i32.to_le_bytes());
    put(7, ix.to_le_bytes());
    put(8, iy.to_le_bytes());
    put(9, iz.to_le_bytes());
    put(10, (p * nx as f32).to_le_bytes());
    put(11, (p * ny as f32).to_le_bytes());
    put(12, (p * nz as f32).to_le_bytes());
    for (i, a) in [90.0f32, 90.0, 90.0].iter().enumerate() {
        put(13 + i, a.to_le_bytes());
    }
    put(16, 1i32.to_le_bytes());
    put(17, 2i32.to_le_bytes());
    put(18, 3i32.to_le_bytes());
    let (mut lo, mut hi, mut sum) = (f32::INFINITY, f32::NEG_INFINITY, 0.0f64);
    for v in stack.data.iter() {
        lo = lo.min(*v);
        hi = hi.max(*v);
        sum += *v as f64;
    }
    put(19, lo.to_le_bytes());
    put(20, hi.to_le_bytes());
    put(
        21,
        ((sum / stack.data.len().max(1) as f64) as f32).to_le_bytes(),
    );
    put(27, *b"MRCO");
    put(28, 20140i32.to_le_bytes());
    put(52, *b"MAP ");
    put(53, [0x44, 0x44, 0, 0]);
    let values: Vec<u8> = stack.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    atomic_write(path, |w| {
        w.write_all(&h)?;
        w.write_all(&values)
    })
}
