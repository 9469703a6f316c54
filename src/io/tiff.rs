//! TIFF reader and 32-bit float writer through the `tiff` crate (a
//! maintained decoder for every compression and layout; nothing to gain by
//! hand-writing it).
//!
//! Reads single and multi-page grey TIFFs with 8/16/32/64-bit signed or
//! unsigned integers or 32/64-bit floats; all pages must share one shape.
//! Pixel size, in order of trust:
//! 1. ImageJ metadata: `ImageDescription` starting `ImageJ=` with `unit=`
//!    (`nm`, `micron`/`µm`/`um`, `A`/`Å`/`angstrom`, `pm`) and `XResolution`
//!    as pixels per unit;
//! 2. the tags DigitalMicrograph writes in its TIFF exports (65009/65010
//!    x/y scale, 65012/65013 their unit); y and x may differ, which
//!    `read_signals` keeps and a stack (one pixel size) reads as uncalibrated;
//! 3. FEI/Thermo Fisher SEM metadata (tag 34682, `PixelWidth=` in m under
//!    `[Scan]`);
//! 4. `XResolution` with `ResolutionUnit` inch or cm, accepted only when it
//!    gives a pixel size below 1 µm (larger values are print resolutions
//!    such as 72 dpi, not microscope calibrations);
//! 5. otherwise uncalibrated.
//!
//! Palette (indexed-colour) TIFFs are refused in words; `read_signals`
//! keeps the stored sample type, [`read_tiff`] converts to f32.
//!
//! The writer stores ImageJ-compatible calibration (`unit=nm`, resolution in
//! px/nm) so ImageJ/Fiji and this reader agree.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use ndarray::Array3;
use tiff::decoder::{Decoder, DecodingResult, Limits};
use tiff::encoder::{colortype, Rational, TiffEncoder};
use tiff::tags::{ResolutionUnit, Tag};
use tiff::ColorType;

use super::signal::{Acquisition, Dtype, Signal};
use super::{atomic_write, empty_stack};
use crate::error::{Error, Result};
use crate::image::{Calibration, Image, Stack};

fn terr(path: &Path, e: tiff::TiffError) -> Error {
    match e {
        tiff::TiffError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::format(path, "truncated TIFF (unexpected end of file)")
        }
        tiff::TiffError::IoError(io) => Error::io(path, io),
        tiff::TiffError::UnsupportedError(u) => {
            let what = u.to_string();
            if what.contains("RGBPalette") {
                Error::format(
                    path,
                    "palette-colour TIFF (indexed colours) is not supported: save it as a grey-level TIFF",
                )
            } else {
                Error::format(
                    path,
                    format!("unsupported TIFF: {}", what.replace('`', "'")),
                )
            }
        }
        other => Error::format(path, format!("corrupt or unsupported TIFF: {other}")),
    }
}

/// Largest expansion accepted for compressed TIFF data (bytes of pixels
/// per byte of file): LZW, the widest-ratio TIFF codec, emits at most 4096
/// bytes per code of at least 9 bits, so 4096 is a safe ceiling for it,
/// deflate (1032) and PackBits (64).
const COMPRESSED_MAX_RATIO: u64 = 4096;

fn colour_name(c: ColorType) -> String {
    match c {
        ColorType::RGB(b) => format!("RGB ({b}-bit)"),
        ColorType::RGBA(b) => format!("RGBA ({b}-bit)"),
        ColorType::CMYK(b) => format!("CMYK ({b}-bit)"),
        ColorType::YCbCr(b) => format!("YCbCr ({b}-bit)"),
        ColorType::Palette(b) => format!("palette ({b}-bit)"),
        ColorType::GrayA(b) => format!("grey + alpha ({b}-bit)"),
        _ => "other than grey".into(),
    }
}

/// Decoded samples as little-endian bytes with their dtype.
fn to_le_bytes(r: DecodingResult) -> (Dtype, Vec<u8>) {
    fn le<T: Copy, const N: usize>(v: Vec<T>, f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        v.into_iter().flat_map(f).collect()
    }
    match r {
        DecodingResult::U8(v) => (Dtype::U8, v),
        DecodingResult::U16(v) => (Dtype::U16, le(v, u16::to_le_bytes)),
        DecodingResult::U32(v) => (Dtype::U32, le(v, u32::to_le_bytes)),
        DecodingResult::U64(v) => (Dtype::U64, le(v, u64::to_le_bytes)),
        DecodingResult::I8(v) => (Dtype::I8, le(v, i8::to_le_bytes)),
        DecodingResult::I16(v) => (Dtype::I16, le(v, i16::to_le_bytes)),
        DecodingResult::I32(v) => (Dtype::I32, le(v, i32::to_le_bytes)),
        DecodingResult::I64(v) => (Dtype::I64, le(v, i64::to_le_bytes)),
        DecodingResult::F32(v) => (Dtype::F32, le(v, f32::to_le_bytes)),
        DecodingResult::F64(v) => (Dtype::F64, le(v, f64::to_le_bytes)),
    }
}

fn unit_to_angstrom(unit: &str) -> Option<f64> {
    match unit.trim().trim_matches('"') {
        "nm" | "nanometer" | "nanometre" => Some(10.0),
        "micron" | "µm" | "um" | "\u{3bc}m" | "microns" | "micrometer" | "micrometre" => Some(1e4),
        "A" | "Å" | "\u{212b}" | "angstrom" | "Angstrom" => Some(1.0),
        "pm" => Some(0.01),
        "mm" => Some(1e7),
        _ => None,
    }
}

/// A tag's value as a number (stored as a number or as text).
fn tag_number<R: std::io::Read + std::io::Seek>(d: &mut Decoder<R>, code: u16) -> Option<f64> {
    use tiff::decoder::ifd::Value;
    match d.find_tag(Tag::Unknown(code)).ok().flatten()? {
        Value::Double(v) => Some(v),
        Value::Float(v) => Some(f64::from(v)),
        Value::Ascii(s) => s.trim().parse().ok(),
        Value::Rational(n, den) if den > 0 => Some(f64::from(n) / f64::from(den)),
        v => v.into_f64().ok(),
    }
    .filter(|v| v.is_finite() && *v > 0.0)
}

/// Pixel sizes (y, x) in Å from the tags DigitalMicrograph writes into its
/// TIFF exports: 65009/65010 the x/y scale per pixel, 65012/65013 their
/// unit in words (`micrometer`; 65003/65004 hold the unit symbol, which DM
/// writes in Latin-1).
fn dm_tiff_pixel<R: std::io::Read + std::io::Seek>(d: &mut Decoder<R>) -> Option<(f64, f64)> {
    use tiff::decoder::ifd::Value;
    let mut unit = |words: u16, symbol: u16| {
        [words, symbol].into_iter().find_map(|code| {
            match d.find_tag(Tag::Unknown(code)).ok().flatten()? {
                Value::Ascii(s) => unit_to_angstrom(&s),
                _ => None,
            }
        })
    };
    let (ux, uy) = (unit(65012, 65003)?, unit(65013, 65004));
    let x = tag_number(d, 65009)? * ux;
    let y = match (tag_number(d, 65010), uy) {
        (Some(v), Some(u)) => v * u,
        _ => x,
    };
    Some((y, x))
}

/// Pixel size (Å) from the INI-style text FEI/Thermo Fisher SEMs (Helios)
/// write in tag 34682: `PixelWidth=` (m) in the `[Scan]` section.
fn fei_tiff_pixel<R: std::io::Read + std::io::Seek>(d: &mut Decoder<R>) -> Option<f64> {
    use tiff::decoder::ifd::Value;
    let text = match d.find_tag(Tag::Unknown(34682)).ok().flatten()? {
        Value::Ascii(s) => s,
        _ => return None,
    };
    let mut section = "";
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[Scan]" {
            if let Some(v) = line.strip_prefix("PixelWidth=") {
                return v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| *v > 0.0)
                    .map(|m| m * 1e10);
            }
        }
    }
    None
}

/// Pixel sizes (y, x) in Å, NaN when the file holds none.
fn pixel_sizes<R: std::io::Read + std::io::Seek>(d: &mut Decoder<R>) -> (f64, f64) {
    let ppu = match d.find_tag(Tag::XResolution) {
        Ok(Some(tiff::decoder::ifd::Value::Rational(n, den))) if n > 0 && den > 0 => {
            Some(n as f64 / den as f64)
        }
        _ => None,
    };
    let desc = d
        .get_tag_ascii_string(Tag::ImageDescription)
        .unwrap_or_default();
    if desc.starts_with("ImageJ=") {
        let unit = desc
            .lines()
            .find_map(|l| l.strip_prefix("unit="))
            .and_then(unit_to_angstrom);
        return match (unit, ppu) {
            (Some(u), Some(ppu)) => (u / ppu, u / ppu),
            _ => (f64::NAN, f64::NAN),
        };
    }
    if let Some((y, x)) = dm_tiff_pixel(d).or_else(|| fei_tiff_pixel(d).map(|p| (p, p))) {
        return (y, x);
    }
    let Some(ppu) = ppu else {
        return (f64::NAN, f64::NAN);
    };
    let per = match d.find_tag_unsigned::<u16>(Tag::ResolutionUnit) {
        Ok(Some(2)) | Ok(None) => 2.54e8, // inch (the TIFF default) in Å
        Ok(Some(3)) => 1e8,               // cm in Å
        _ => return (f64::NAN, f64::NAN),
    };
    let p = per / ppu;
    if p < 1e4 {
        (p, p)
    } else {
        (f64::NAN, f64::NAN)
    }
}

/// One pixel size when y and x agree (a stack's calibration), else none.
fn calibration((y, x): (f64, f64)) -> Calibration {
    if x.is_finite() && x > 0.0 && (x - y).abs() <= 1e-6 * x {
        Calibration::from_pixel_size(x).unwrap_or_default()
    } else {
        Calibration::Uncalibrated
    }
}

/// The pages of a TIFF in their stored dtype.
pub(crate) struct Pages {
    /// Element type of every page.
    pub dtype: Dtype,
    /// Pages × rows × columns, little-endian, C order.
    pub bytes: Vec<u8>,
    /// Number of pages.
    pub pages: usize,
    /// Rows and columns of a page.
    pub height: usize,
    /// Columns of a page.
    pub width: usize,
    /// Pixel size found in the tags (y and x equal).
    pub calibration: Calibration,
    /// Pixel sizes (y, x) in Å found in the tags, NaN if none (they may
    /// differ, which `calibration` cannot hold).
    pub pixel_yx: (f64, f64),
}

/// Read a TIFF (all pages) as a stack.
///
/// # Errors
/// Missing file, corrupt or truncated TIFF, colour images, pages of
/// different shapes.
pub fn read_tiff(path: &Path) -> Result<Stack> {
    let p = read_pages(path)?;
    let sig = Signal {
        title: String::new(),
        shape: vec![p.pages, p.height, p.width],
        dtype: p.dtype,
        axes: Vec::new(),
        acquisition: Acquisition::default(),
        metadata: std::collections::BTreeMap::new(),
        bytes: p.bytes,
        unreadable: None,
    };
    let arr = Array3::from_shape_vec((p.pages, p.height, p.width), sig.to_f32())
        .map_err(|e| Error::format(path, format!("TIFF data does not fit its shape: {e}")))?;
    Stack::new(arr, p.calibration).map_err(|e| e.context(path.display()))
}

/// Read every page of a TIFF in its stored dtype.
///
/// # Errors
/// As [`read_tiff`]; pages of different sample types.
pub(crate) fn read_pages(path: &Path) -> Result<Pages> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut limits = Limits::default();
    let most = usize::try_from(file_len.saturating_mul(COMPRESSED_MAX_RATIO)).unwrap_or(usize::MAX);
    limits.decoding_buffer_size = most;
    limits.intermediate_buffer_size = most;
    limits.ifd_value_size = usize::try_from(file_len).unwrap_or(usize::MAX).max(1 << 16);
    let mut d = Decoder::new(BufReader::new(f))
        .map_err(|e| terr(path, e))?
        .with_limits(limits);
    let pixel_yx = pixel_sizes(&mut d);
    let mut frames: Vec<u8> = Vec::new();
    let mut dtype: Option<Dtype> = None;
    let mut total_bytes = 0u64;
    let mut shape = None;
    let mut page = 0usize;
    loop {
        let bits = match d.colortype().map_err(|e| terr(path, e))? {
            ColorType::Gray(b) => u64::from(b),
            other => {
                return Err(Error::format(
                    path,
                    format!(
                        "page {page}: colour type {} is not a grey-level image",
                        colour_name(other)
                    ),
                ))
            }
        };
        let (w, h) = d.dimensions().map_err(|e| terr(path, e))?;
        let (w, h) = (w as usize, h as usize);
        match shape {
            None => shape = Some((h, w)),
            Some((sh, sw)) if (sh, sw) != (h, w) => {
                return Err(Error::shape(
                    format!("{}: page {page}", path.display()),
                    format!("{sh}x{sw} like page 0"),
                    format!("{h}x{w}"),
                ))
            }
            _ => {}
        }
        // Bound what the page header asks for by what the file can hold
        // before the decoder allocates it.
        let compressed = d
            .find_tag_unsigned::<u32>(Tag::Compression)
            .ok()
            .flatten()
            .is_some_and(|c| c != 1);
        let cap = if compressed {
            file_len.saturating_mul(COMPRESSED_MAX_RATIO)
        } else {
            file_len
        };
        total_bytes = (w as u64)
            .saturating_mul(h as u64)
            .saturating_mul(bits.div_ceil(8))
            .saturating_add(total_bytes);
        if total_bytes > cap {
            return Err(Error::format(
                path,
                format!(
                    "page {page}: {w}x{h} pixels of {bits} bits exceed the limit of {cap} bytes a {file_len}-byte file can hold{} (corrupt header)",
                    if compressed { " compressed" } else { "" }
                ),
            ));
        }
        let (dt, v) = to_le_bytes(d.read_image().map_err(|e| terr(path, e))?);
        if v.len() != w * h * dt.size() {
            return Err(Error::format(
                path,
                format!(
                    "page {page}: {} samples for a {h}x{w} image",
                    v.len() / dt.size()
                ),
            ));
        }
        match dtype {
            None => dtype = Some(dt),
            Some(d0) if d0 != dt => {
                return Err(Error::format(
                    path,
                    format!(
                        "page {page}: {} samples, page 0 has {}",
                        dt.name(),
                        d0.name()
                    ),
                ))
            }
            _ => {}
        }
        frames.extend_from_slice(&v);
        page += 1;
        if !d.more_images() {
            break;
        }
        d.next_image().map_err(|e| terr(path, e))?;
    }
    let (h, w) = shape.unwrap_or((0, 0));
    if h == 0 || w == 0 {
        return Err(empty_stack(path, "TIFF page of zero size"));
    }
    Ok(Pages {
        dtype: dtype.unwrap_or(Dtype::F32),
        bytes: frames,
        pages: page,
        height: h,
        width: w,
        calibration: calibration(pixel_yx),
        pixel_yx,
    })
}

/// Pixels per nm as a TIFF rational with as many digits as fit in u32.
fn px_per_nm(p_angstrom: f64) -> Rational {
    let v = 10.0 / p_angstrom;
    let mut d: u32 = 1_000_000;
    while d > 1 && v * d as f64 > u32::MAX as f64 {
        d /= 10;
    }
    Rational {
        n: (v * d as f64).round().clamp(1.0, u32::MAX as f64) as u32,
        d,
    }
}

fn write_pages(path: &Path, frames: &[ndarray::ArrayView2<f32>], cal: Calibration) -> Result<()> {
    let n = frames.len();
    let desc = match cal.pixel_size_angstrom() {
        Some(_) => format!("ImageJ=1.11a\nimages={n}\nslices={n}\nunit=nm\n"),
        None => format!("ImageJ=1.11a\nimages={n}\nslices={n}\n"),
    };
    atomic_write(path, |w| {
        let io = |e: tiff::TiffError| match e {
            tiff::TiffError::IoError(e) => e,
            other => std::io::Error::other(other.to_string()),
        };
        let mut enc = TiffEncoder::new(w).map_err(io)?;
        for f in frames {
            let (h, wd) = f.dim();
            let data: Vec<f32> = f.iter().copied().collect();
            let mut img = enc
                .new_image::<colortype::Gray32Float>(wd as u32, h as u32)
                .map_err(io)?;
            img.encoder()
                .write_tag(Tag::ImageDescription, desc.as_str())
                .map_err(io)?;
            if let Some(p) = cal.pixel_size_angstrom() {
                let r = px_per_nm(p);
                img.x_resolution(r.clone());
                img.y_resolution(r);
                img.resolution_unit(ResolutionUnit::None);
            }
            img.write_data(&data).map_err(io)?;
        }
        Ok(())
    })
}

/// Write one 32-bit float TIFF page with its calibration, atomically.
pub fn write_tiff_f32(path: &Path, image: &Image) -> Result<()> {
    write_pages(path, &[image.data.view()], image.calibration)
}

/// Write a multi-page 32-bit float TIFF (one page per frame), atomically.
pub fn write_tiff_stack_f32(path: &Path, stack: &Stack) -> Result<()> {
    let frames: Vec<_> = (0..stack.n_frames()).map(|i| stack.frame(i)).collect();
    write_pages(path, &frames, stack.calibration)
}
