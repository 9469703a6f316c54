//! MRC/MRCS (MRC2014) reader and mode-2 writer, hand-written: a fixed
//! 1024-byte header and raw data; the hand-written reader validates every
//! header field against the file size and names the problem.
//!
//! Modes 0 (int8), 1 (int16), 2 (float32), 6 (uint16), 12 (float16). The
//! extended header (`NSYMBT` bytes) is skipped. Byte order from the machine
//! stamp (`0x44 0x44` little, `0x11 0x11` big; little if unset). Pixel size
//! = cell length X / MX in Å when both are positive; `nz = 1` is an image,
//! `nz > 1` a stack (movie, MRCS).

use std::io::Write;
use std::path::Path;

use ndarray::Array3;

use super::npy::half_to_f32;
use super::{atomic_write, empty_stack};
use crate::error::{Error, Result};
use crate::image::{Calibration, Stack};

const HEADER: usize = 1024;

/// Read an MRC/MRCS file as a stack.
///
/// # Errors
/// Missing file, header shorter than 1024 bytes, non-positive dimensions,
/// unsupported mode, truncated data.
pub fn read_mrc(path: &Path) -> Result<Stack> {
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
        [
            bytes[4 * i],
            bytes[4 * i + 1],
            bytes[4 * i + 2],
            bytes[4 * i + 3],
        ]
    };
    let int = |i: usize| {
        if big {
            i32::from_be_bytes(word(i))
        } else {
            i32::from_le_bytes(word(i))
        }
    };
    let float = |i: usize| {
        if big {
            f32::from_be_bytes(word(i))
        } else {
            f32::from_le_bytes(word(i))
        }
    };
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
    let size = match mode {
        0 => 1,
        1 | 6 | 12 => 2,
        2 => 4,
        m => {
            return Err(Error::format(
                path,
                format!("unsupported MRC mode {m} (supported: 0, 1, 2, 6, 12)"),
            ))
        }
    };
    let nsymbt = int(23).max(0) as usize;
    let (nx, ny, nz) = (nx as usize, ny as usize, nz as usize);
    let count = nx
        .checked_mul(ny)
        .and_then(|v| v.checked_mul(nz))
        .ok_or_else(|| Error::format(path, "MRC dimensions overflow"))?;
    let need = count
        .checked_mul(size)
        .ok_or_else(|| Error::format(path, "MRC dimensions overflow"))?;
    let start = HEADER + nsymbt;
    let have = bytes.len().saturating_sub(start);
    if have < need {
        return Err(Error::format(
            path,
            format!(
                "truncated: expected {need} bytes of data for {nx}x{ny}x{nz} (mode {mode}), found {have}"
            ),
        ));
    }
    let data = &bytes[start..start + need];
    let values: Vec<f32> = match mode {
        0 => data.iter().map(|b| *b as i8 as f32).collect(),
        2 => data
            .chunks_exact(4)
            .map(|c| {
                let a = [c[0], c[1], c[2], c[3]];
                if big {
                    f32::from_be_bytes(a)
                } else {
                    f32::from_le_bytes(a)
                }
            })
            .collect(),
        _ => data
            .chunks_exact(2)
            .map(|c| {
                let a = [c[0], c[1]];
                let u = if big {
                    u16::from_be_bytes(a)
                } else {
                    u16::from_le_bytes(a)
                };
                match mode {
                    1 => u as i16 as f32,
                    6 => u as f32,
                    _ => half_to_f32(u),
                }
            })
            .collect(),
    };
    let arr = Array3::from_shape_vec((nz, ny, nx), values)
        .map_err(|e| Error::format(path, format!("MRC data does not fit its shape: {e}")))?;
    let mx = int(7);
    let xlen = float(10) as f64;
    let cal = if mx > 0 && xlen.is_finite() && xlen > 0.0 {
        Calibration::from_pixel_size(xlen / mx as f64)?
    } else {
        Calibration::Uncalibrated
    };
    Stack::new(arr, cal).map_err(|e| e.context(path.display()))
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
