//! FEI/Thermo Fisher TIA series files: `NAME_1.ser` (data) with
//! `NAME.emi` (acquisition metadata as embedded XML).
//!
//! Format followed: the "TIA Series File Format" description (FEI; also
//! documented by C. Boothroyd, "TIA SER file format"): little-endian header
//! (byte order 0x4949, series id 0x0197, series version 0x0210 with 32-bit
//! offsets or 0x0220 with 64-bit ones, data type 0x4120 1-D / 0x4122 2-D,
//! tag type, total and valid element counts, offset-array offset, series
//! dimensions with size, calibration and unit strings, the first varying
//! fastest), an offset array, and per element a 2-D calibration (offset,
//! delta, element; for x and y), a data-type code (1 u8, 2 u16, 3 u32,
//! 4 i8, 5 i16, 6 i32, 7 f32, 8 f64, 9 complex64, 10 complex128) and the
//! array, x fastest, rows bottom-up.
//!
//! A signal's shape is the series dimensions (slowest first; a scan of
//! 5 × 5 camera images is (5, 5, ny, nx)), or the valid elements alone
//! when the acquisition stopped early, then (ny, nx) with the top row
//! first. Element calibrations are in m, or in 1/m for diffraction
//! patterns (a delta of 1 or more). The EMI is read only for its
//! `<ObjectInfo>` XML blocks, the N-th for `NAME_N.ser` (see
//! [`emi_metadata_blocks`]). Opening the `.emi` reads
//! every sibling `NAME_N.ser` as a signal ([`read_emi`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, Warnings};
use crate::io::signal::{
    check_len, require_readable, Acquisition, Axis, Dtype, FileSignals, Signal,
};

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

/// The EMI that belongs to `NAME_N.ser` (`NAME.emi`) and N.
fn emi_path(ser: &Path) -> (PathBuf, Option<usize>) {
    let stem = ser
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (base, n) = match stem.rsplit_once('_') {
        Some((b, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => {
            (b.to_string(), n.parse().ok())
        }
        _ => (stem, None),
    };
    (ser.with_file_name(format!("{base}.emi")), n)
}

/// The metadata of `NAME_N.ser` among its EMI's blocks: the N-th, or the
/// first when the EMI has fewer.
fn block_of(blocks: &[BTreeMap<String, String>], n: Option<usize>) -> BTreeMap<String, String> {
    n.and_then(|n| n.checked_sub(1))
        .and_then(|i| blocks.get(i))
        .or_else(|| blocks.first())
        .cloned()
        .unwrap_or_default()
}

/// Metadata of an EMI file's first `<ObjectInfo>` XML block (see
/// [`emi_metadata_blocks`]).
#[must_use]
pub fn emi_metadata(bytes: &[u8]) -> BTreeMap<String, String> {
    emi_metadata_blocks(bytes)
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// Metadata of each of an EMI file's `<ObjectInfo>` XML blocks, in file
/// order (TIA writes one per data object: block N belongs to `NAME_N.ser`),
/// each read in one linear pass (no XML library: the blocks sit among
/// binary data):
/// - leaves `<Tag>value</Tag>` → `Tag` (e.g. `AcceleratingVoltage` in V,
///   `Magnification`, `DetectorName`, `AcquireDate`);
/// - TIA's `ExperimentalDescription` entries
///   `<Label>L</Label><Value>V</Value><Unit>U</Unit>` → `L` (value) and
///   `L unit` (e.g. `High tension` = 300, `High tension unit` = kV).
///
/// A tag's value must be text without markup and the closing tag must
/// follow it directly; anything else is skipped, so any byte soup gives
/// (possibly empty) maps, at most 10 000 items in all.
#[must_use]
pub fn emi_metadata_blocks(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let text = String::from_utf8_lossy(bytes);
    let mut blocks = Vec::new();
    let mut items = 0usize;
    let mut from = 0usize;
    while let Some(start) = text[from..].find("<ObjectInfo>").map(|i| from + i) {
        let end = text[start..]
            .find("</ObjectInfo>")
            .map_or(text.len(), |e| start + e);
        let block = object_info(&text[start..end], 10_000usize.saturating_sub(items));
        items += block.len();
        blocks.push(block);
        from = end;
        if items >= 10_000 || blocks.len() >= 1024 {
            break;
        }
    }
    blocks
}

/// The items of one `<ObjectInfo>` block, at most `limit`.
fn object_info(text: &str, limit: usize) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    let mut label: Option<String> = None;
    while let Some(open) = rest.find('<') {
        if out.len() >= limit {
            break;
        }
        rest = &rest[open + 1..];
        let Some(close) = rest.find('>') else { break };
        let tag = &rest[..close];
        rest = &rest[close + 1..];
        if tag.starts_with('/') || tag.contains([' ', '<']) || tag.is_empty() {
            continue;
        }
        let v = rest.find('<').unwrap_or(rest.len());
        let value = rest[..v].trim();
        let closed = rest[v..]
            .strip_prefix("</")
            .and_then(|r| r.strip_prefix(tag))
            .is_some_and(|r| r.starts_with('>'));
        if !closed {
            continue;
        }
        match (tag, &label) {
            ("Label", _) => label = Some(value.to_string()).filter(|l| !l.is_empty()),
            ("Value", Some(l)) if !value.is_empty() => {
                out.insert(l.clone(), value.to_string());
            }
            ("Unit", Some(l)) => {
                if !value.is_empty() {
                    out.insert(format!("{l} unit"), value.to_string());
                }
                label = None;
            }
            _ if !value.is_empty() => {
                out.insert(tag.to_string(), value.to_string());
            }
            _ => {}
        }
    }
    out
}

/// The elements of one SER file.
struct Series {
    dtype: Dtype,
    nx: usize,
    ny: usize,
    /// Series shape, slowest first (empty for a single element).
    series_shape: Vec<usize>,
    /// Calibration of each series axis, in `series_shape` order.
    series_axes: Vec<Axis>,
    ay: Axis,
    ax: Axis,
    bytes: Vec<u8>,
}

/// The SER header: whether offsets are 64-bit, the total and valid
/// element counts, and the series dimensions (size and calibration) in
/// file order (the first dimension varies fastest).
struct Header {
    wide: bool,
    total: u32,
    valid: u32,
    dims: Vec<(usize, Axis)>,
}

/// Read the header up to the offset array and move the cursor there.
/// Series version 0x0210 stores 32-bit offsets, 0x0220 and later 64-bit.
fn ser_header(c: &mut Cur) -> Result<Header> {
    let path = c.path;
    if c.u16()? != 0x4949 || c.u16()? != 0x0197 {
        return Err(Error::format(
            path,
            "not a TIA SER file (byte order 0x4949, series id 0x0197 expected)",
        ));
    }
    let version = c.u16()?;
    let wide = version >= 0x0220;
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
    let mut dims = Vec::new();
    for _ in 0..ndim {
        let size = c.u32()? as usize;
        let offset = c.f64()?;
        let delta = c.f64()?;
        let _element = c.u32()?;
        let desc = c.text()?;
        let units = c.text()?;
        dims.push((size, Axis::from_unit(&desc, delta, offset, &units)));
    }
    c.at(offsets_at)?;
    let left = (c.b.len() - c.pos) as u64;
    check_len(
        path,
        "SER offset array",
        u64::from(total),
        if wide { 8 } else { 4 },
        left,
    )?;
    Ok(Header {
        wide,
        total,
        valid,
        dims,
    })
}

/// The series shape (slowest first) and its axes: the header's dimensions
/// reversed when they hold every element, one axis of the valid elements
/// when the acquisition stopped early, none for a single element.
fn series_layout(h: &Header, n: usize) -> (Vec<usize>, Vec<Axis>) {
    let product = h
        .dims
        .iter()
        .try_fold(1usize, |a, (s, _)| a.checked_mul(*s));
    if n == 1 {
        (Vec::new(), Vec::new())
    } else if n == h.total as usize && !h.dims.is_empty() && product == Some(n) {
        h.dims.iter().rev().map(|(s, a)| (*s, a.clone())).unzip()
    } else {
        let axis = match h.dims.as_slice() {
            [(_, a)] => a.clone(),
            _ => Axis::uncalibrated("frame"),
        };
        (vec![n], vec![axis])
    }
}

/// An element axis: TIA stores real-space calibrations in m and
/// diffraction ones in 1/m, without saying which; a pixel of a metre or
/// more is no real-space pixel, so such a delta is read as 1/m.
fn element_axis(name: &str, delta: f64, offset: f64, reciprocal: bool) -> Axis {
    Axis::from_unit(name, delta, offset, if reciprocal { "1/m" } else { "m" })
}

/// The offsets of the returned (top-row-first) image's axes from TIA's
/// element calibration: TIA gives the coordinate `o` of its calibration
/// element `c` (usually 0) on axes whose y points up from the bottom row.
/// The returned x axis starts at the first column (`ox − cx·dx`); the
/// returned rows run downwards, so its y axis is TIA's negated, starting
/// at the top row (`−(oy + (ny − 1 − cy)·dy)`).
fn top_left(ox: f64, dx: f64, cx: u32, oy: f64, dy: f64, cy: u32, ny: u32) -> (f64, f64) {
    let x0 = ox - f64::from(cx) * dx;
    let y0 = -(oy + (f64::from(ny) - 1.0 - f64::from(cy)) * dy);
    (x0, y0)
}

/// Parse a SER file's bytes. Every element's data must lie inside the
/// file, and all of them together cannot hold more bytes than the file.
///
/// TIA stores an image's rows bottom-up; they are returned top row first,
/// as TIA displays them.
fn parse_ser(path: &Path, b: &[u8]) -> Result<Series> {
    let mut c = Cur { b, pos: 0, path };
    let h = ser_header(&mut c)?;
    let mut offsets = Vec::new();
    for _ in 0..h.valid {
        offsets.push(if h.wide {
            c.u64()?
        } else {
            u64::from(c.u32()?)
        });
    }
    if offsets.is_empty() {
        return Err(Error::Empty {
            what: path.display().to_string(),
            reason: "the series holds no valid element".into(),
        });
    }
    let mut bytes = Vec::new();
    let mut first: Option<(Dtype, u32, u32, Axis, Axis)> = None;
    for (k, &off) in offsets.iter().enumerate() {
        c.at(off)?;
        let (ox, dx, cx) = (c.f64()?, c.f64()?, c.u32()?);
        let (oy, dy, cy) = (c.f64()?, c.f64()?, c.u32()?);
        let code = c.u16()?;
        let dtype = ser_dtype(code).ok_or_else(|| {
            Error::format(path, format!("element {k}: unknown SER data type {code}"))
        })?;
        let (nx, ny) = (c.u32()?, c.u32()?);
        let left = (b.len() - c.pos) as u64;
        let what = format!("element {k}");
        let n = check_len(
            path,
            &what,
            u64::from(nx) * u64::from(ny),
            dtype.size(),
            left,
        )?;
        // Elements pointing at the same data would multiply the file.
        check_len(
            path,
            "SER elements together",
            (bytes.len() + n) as u64,
            1,
            b.len() as u64,
        )?;
        match &first {
            None => {
                let reciprocal = dx.abs() >= 1.0 || dy.abs() >= 1.0;
                let (x0, y0) = top_left(ox, dx, cx, oy, dy, cy, ny);
                first = Some((
                    dtype,
                    nx,
                    ny,
                    element_axis("y", dy, y0, reciprocal),
                    element_axis("x", dx, x0, reciprocal),
                ));
                bytes.reserve(n.saturating_mul(offsets.len()).min(b.len()));
            }
            Some((d, x, y, _, _)) if (*d, *x, *y) != (dtype, nx, ny) => {
                return Err(Error::format(
                    path,
                    format!("element {k}: shape or type differs from element 0"),
                ));
            }
            _ => {}
        }
        let data = c.take(n)?;
        let row = nx as usize * dtype.size();
        if row == 0 {
            continue;
        }
        for r in data.chunks_exact(row).rev() {
            bytes.extend_from_slice(r);
        }
    }
    let Some((dtype, nx, ny, ay, ax)) = first else {
        return Err(Error::format(path, "no data elements"));
    };
    let (series_shape, series_axes) = series_layout(&h, offsets.len());
    Ok(Series {
        dtype,
        nx: nx as usize,
        ny: ny as usize,
        series_shape,
        series_axes,
        ay,
        ax,
        bytes,
    })
}

/// Acquisition parameters of EMI metadata: `AcceleratingVoltage` (V) or
/// `High tension` (kV), magnification, convergence, dwell time, date.
fn acquisition(metadata: &BTreeMap<String, String>) -> Acquisition {
    let num = |k: &str| {
        metadata
            .get(k)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    let kv = |v: f64| if v > 1000.0 { v / 1000.0 } else { v };
    Acquisition {
        high_tension_kv: num("AcceleratingVoltage")
            .map(kv)
            .or_else(|| num("High tension").map(kv)),
        convergence_mrad: num("ConvergenceAngle").map(|v| if v < 0.5 { v * 1000.0 } else { v }),
        collection_mrad: None,
        dwell_time_us: num("DwellTime").map(|v| v * 1e6),
        magnification: num("Magnification"),
        date: metadata.get("AcquireDate").cloned(),
    }
}

fn signal(s: Series, title: String, metadata: BTreeMap<String, String>) -> Signal {
    let mut shape = s.series_shape;
    shape.extend([s.ny, s.nx]);
    let mut axes = s.series_axes;
    axes.extend([s.ay, s.ax]);
    Signal {
        title,
        shape,
        dtype: s.dtype,
        axes,
        acquisition: acquisition(&metadata),
        metadata,
        bytes: s.bytes,
        unreadable: None,
    }
}

fn read_series(path: &Path) -> Result<Series> {
    let b = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_ser(path, &b)
}

/// Read a TIA SER file (2-D image series) and its EMI when present.
///
/// # Errors
/// I/O errors; a wrong byte order or series id, 1-D (spectrum) series,
/// offsets past the end, unknown data types, elements of different shapes.
pub fn read_ser(path: &Path) -> Result<FileSignals> {
    let series = read_series(path)?;
    let mut warnings = Warnings::default();
    let (emi, n) = emi_path(path);
    let metadata = match std::fs::read(&emi) {
        Ok(e) => block_of(&emi_metadata_blocks(&e), n),
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
    let title = metadata
        .get("DetectorName")
        .cloned()
        .unwrap_or_else(|| "image".into());
    Ok(FileSignals {
        format: "TIA SER".into(),
        signals: vec![signal(series, title, metadata)],
        warnings,
    })
}

/// The `NAME_N.ser` files next to `NAME.emi`, by N.
fn sibling_sers(emi: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let stem = emi
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = match emi.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(n) = name
            .strip_prefix(stem.as_str())
            .and_then(|r| r.strip_prefix('_'))
            .and_then(|r| r.strip_suffix(".ser").or_else(|| r.strip_suffix(".SER")))
            .filter(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((n, e.path()));
    }
    out.sort();
    Ok(out)
}

/// Read a TIA acquisition by its `NAME.emi`: every sibling `NAME_1.ser`,
/// `NAME_2.ser`, … is a signal titled by its file stem (`NAME_1`, …), each
/// with the EMI's metadata block of its number; a SER that cannot be read is listed as
/// unreadable with its reason.
///
/// # Errors
/// An unreadable EMI, no sibling SER, or no readable one.
pub fn read_emi(path: &Path) -> Result<FileSignals> {
    let emi = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let blocks = emi_metadata_blocks(&emi);
    let sers = sibling_sers(path)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if sers.is_empty() {
        return Err(Error::format(
            path,
            format!("no {stem}_1.ser next to it: an EMI holds metadata only, the images are in its .ser files"),
        ));
    }
    let mut warnings = Warnings::default();
    if blocks.iter().all(BTreeMap::is_empty) {
        warnings.push("no <ObjectInfo> metadata found in the EMI".to_string());
    }
    let signals: Vec<Signal> = sers
        .iter()
        .map(|(n, p)| {
            let metadata = block_of(&blocks, usize::try_from(*n).ok());
            let title = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            match read_series(p) {
                Ok(s) => signal(s, title, metadata),
                Err(e) => Signal::unreadable(title, e.to_string().replace('\n', " ")),
            }
        })
        .collect();
    require_readable(path, &signals)?;
    Ok(FileSignals {
        format: "TIA EMI".into(),
        signals,
        warnings,
    })
}
