//! FEI/Thermo Fisher TIA series files: `NAME_1.ser` (data) with
//! `NAME.emi` (acquisition metadata as embedded XML).
//!
//! Format followed: the "TIA Series File Format" description (FEI; also
//! documented by C. Boothroyd, "TIA SER file format"): little-endian header
//! (byte order 0x4949, series id 0x0197, version 0x0210 with 64-bit offsets
//! or older with 32-bit ones, data type 0x4120 1-D / 0x4122 2-D, tag type,
//! element counts, offset-array offset, series dimensions with calibration
//! and unit strings), an offset array, and per element a 2-D calibration
//! (offset, delta [m], element; for x and y), a data-type code (1 u8,
//! 2 u16, 3 u32, 4 i8, 5 i16, 6 i32, 7 f32, 8 f64, 9 complex64,
//! 10 complex128) and the array, x fastest. The EMI is read only for its
//! `<ObjectInfo>` XML leaves (e.g. `AcceleratingVoltage` in V).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, Warnings};
use crate::io::signal::{check_len, Acquisition, Axis, Dtype, FileSignals, Signal};

struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl Cur<'_> {
    fn at(&mut self, pos: u64) -> Result<()> {
        if pos > self.b.len() as u64 {
            return Err(Error::format(
                self.path,
                format!(
                    "offset {pos} points past the end of the file ({} bytes)",
                    self.b.len()
                ),
            ));
        }
        self.pos = pos as usize;
        Ok(())
    }
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.b.len() - self.pos < n {
            return Err(Error::format(
                self.path,
                format!(
                    "byte {}: truncated ({n} bytes needed, {} left)",
                    self.pos,
                    self.b.len() - self.pos
                ),
            ));
        }
        self.pos += n;
        Ok(&self.b[self.pos - n..self.pos])
    }
    fn u16(&mut self) -> Result<u16> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64()?))
    }
    fn text(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
}

fn ser_dtype(code: u16) -> Option<Dtype> {
    Some(match code {
        1 => Dtype::U8,
        2 => Dtype::U16,
        3 => Dtype::U32,
        4 => Dtype::I8,
        5 => Dtype::I16,
        6 => Dtype::I32,
        7 => Dtype::F32,
        8 => Dtype::F64,
        9 => Dtype::C64,
        10 => Dtype::C128,
        _ => return None,
    })
}

/// The EMI that belongs to `NAME_N.ser`: `NAME.emi`.
fn emi_path(ser: &Path) -> PathBuf {
    let stem = ser
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = match stem.rsplit_once('_') {
        Some((b, n)) if n.chars().all(|c| c.is_ascii_digit()) => b.to_string(),
        _ => stem,
    };
    ser.with_file_name(format!("{base}.emi"))
}

/// Leaves `<Tag>value</Tag>` of the `<ObjectInfo>` XML inside an EMI file.
#[must_use]
pub fn emi_metadata(bytes: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = BTreeMap::new();
    let Some(start) = text.find("<ObjectInfo>") else {
        return out;
    };
    let end = text[start..]
        .find("</ObjectInfo>")
        .map_or(text.len(), |e| start + e);
    let xml = &text[start..end];
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find('>') else { break };
        let tag = &rest[..close];
        rest = &rest[close + 1..];
        if tag.starts_with('/') || tag.contains(' ') || tag.is_empty() {
            continue;
        }
        let end_tag = format!("</{tag}>");
        if let Some(v) = rest.find(&end_tag) {
            let value = &rest[..v];
            if !value.contains('<') && !value.trim().is_empty() && out.len() < 10_000 {
                out.insert(tag.to_string(), value.trim().to_string());
            }
        }
    }
    out
}

/// Read a TIA SER file (2-D image series) and its EMI when present.
///
/// # Errors
/// I/O errors; a wrong byte order or series id, 1-D (spectrum) series,
/// offsets past the end, unknown data types, elements of different shapes.
pub fn read_ser(path: &Path) -> Result<FileSignals> {
    let b = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut c = Cur {
        b: &b,
        pos: 0,
        path,
    };
    if c.u16()? != 0x4949 || c.u16()? != 0x0197 {
        return Err(Error::format(
            path,
            "not a TIA SER file (byte order 0x4949, series id 0x0197 expected)",
        ));
    }
    let version = c.u16()?;
    let wide = version >= 0x0210;
    let data_type = c.u32()?;
    let _tag_type = c.u32()?;
    let total = c.u32()?;
    let valid = c.u32()?;
    let offsets_at = if wide { c.u64()? } else { u64::from(c.u32()?) };
    let ndim = c.u32()?;
    if data_type != 0x4122 {
        return Err(Error::format(
            path,
            format!(
                "data type 0x{data_type:04x}: only 2-D image series (0x4122) are read, not spectra"
            ),
        ));
    }
    if valid > total || ndim > 8 {
        return Err(Error::format(
            path,
            format!("corrupt header ({valid} of {total} elements, {ndim} dimensions)"),
        ));
    }
    let mut series_axes = Vec::new();
    for _ in 0..ndim {
        let size = c.u32()?;
        let offset = c.f64()?;
        let delta = c.f64()?;
        let _element = c.u32()?;
        let desc = c.text()?;
        let units = c.text()?;
        series_axes.push((size, Axis::from_unit(&desc, delta, offset, &units)));
    }
    c.at(offsets_at)?;
    let left = (b.len() - c.pos) as u64;
    let w = if wide { 8 } else { 4 };
    check_len(path, "SER offset array", u64::from(total), w, left)?;
    let mut offsets = Vec::new();
    for _ in 0..valid {
        offsets.push(if wide { c.u64()? } else { u64::from(c.u32()?) });
    }
    if offsets.is_empty() {
        return Err(Error::Empty {
            what: path.display().to_string(),
            reason: "the series holds no valid element".into(),
        });
    }
    let mut bytes = Vec::new();
    let mut shape: Option<(Dtype, u32, u32, Axis, Axis)> = None;
    for (k, &off) in offsets.iter().enumerate() {
        c.at(off)?;
        let (ox, dx, _) = (c.f64()?, c.f64()?, c.u32()?);
        let (oy, dy, _) = (c.f64()?, c.f64()?, c.u32()?);
        let code = c.u16()?;
        let dtype = ser_dtype(code).ok_or_else(|| {
            Error::format(path, format!("element {k}: unknown SER data type {code}"))
        })?;
        let (nx, ny) = (c.u32()?, c.u32()?);
        let left = (b.len() - c.pos) as u64;
        let n = check_len(
            path,
            &format!("element {k}"),
            u64::from(nx) * u64::from(ny),
            dtype.size(),
            left,
        )?;
        match &shape {
            None => {
                shape = Some((
                    dtype,
                    nx,
                    ny,
                    Axis::from_unit("y", dy, oy, "m"),
                    Axis::from_unit("x", dx, ox, "m"),
                ));
                bytes.reserve(n * offsets.len().min(4096));
            }
            Some((d, x, y, _, _)) if (*d, *x, *y) != (dtype, nx, ny) => {
                return Err(Error::format(
                    path,
                    format!("element {k}: shape or type differs from element 0"),
                ));
            }
            _ => {}
        }
        bytes.extend_from_slice(c.take(n)?);
    }
    let Some((dtype, nx, ny, ay, ax)) = shape else {
        return Err(Error::format(path, "no data elements"));
    };
    let mut warnings = Warnings::default();
    let emi = emi_path(path);
    let metadata = match std::fs::read(&emi) {
        Ok(e) => emi_metadata(&e),
        Err(_) => {
            warnings.push(format!(
                "no {} next to it: acquisition metadata (high tension, magnification) missing",
                emi.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            BTreeMap::new()
        }
    };
    let num = |k: &str| {
        metadata
            .get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    let acquisition = Acquisition {
        high_tension_kv: num("AcceleratingVoltage")
            .map(|v| if v > 1000.0 { v / 1000.0 } else { v }),
        convergence_mrad: num("ConvergenceAngle").map(|v| if v < 0.5 { v * 1000.0 } else { v }),
        collection_mrad: None,
        dwell_time_us: num("DwellTime").map(|v| v * 1e6),
        magnification: num("Magnification"),
        date: metadata.get("AcquireDate").cloned(),
    };
    let frames = offsets.len();
    let (shape, axes) = if frames > 1 {
        let series = series_axes
            .first()
            .map_or_else(|| Axis::uncalibrated("frame"), |a| a.1.clone());
        (vec![frames, ny as usize, nx as usize], vec![series, ay, ax])
    } else {
        (vec![ny as usize, nx as usize], vec![ay, ax])
    };
    Ok(FileSignals {
        format: "TIA SER".into(),
        signals: vec![Signal {
            title: metadata
                .get("DetectorName")
                .cloned()
                .unwrap_or_else(|| "image".into()),
            shape,
            dtype,
            axes,
            acquisition,
            metadata,
            bytes,
        }],
        warnings,
    })
}
