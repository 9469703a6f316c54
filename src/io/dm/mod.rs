//! Gatan DigitalMicrograph DM3 and DM4 files.
//!
//! Format followed: the DM tag-file layout as documented by C. Boothroyd
//! ("Gatan DM3 file format", Ernst Ruska-Centre) and its DM4 extension
//! (64-bit lengths, a tag-size field after each label) as summarised in
//! the EMAN2 `dm4io` notes: a big-endian header (version, root length,
//! byte-order flag), nested tag groups (sorted, open, count), tags with a
//! type byte (20 group, 21 data), a label, and for data a `%%%%` marker,
//! a type-definition array (simple 2–12, struct 15, string 18, array 20)
//! and the values in the byte order of the header flag.
//!
//! Images are the entries of `ImageList` (`ImageData`: `Data`, `DataType`,
//! `Dimensions`, `Calibrations/Dimension`), the RGBA thumbnail
//! (DataType 23 as the first of several entries) skipped; RGB images of
//! their own read as RGBA. Microscope tags feed [`Acquisition`].
//! The whole file is read once; every length is checked against the bytes
//! left before anything is allocated.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result, Warnings};
use crate::io::signal::{
    check_len, one_line_reason, require_readable, Acquisition, Axis, Dtype, FileSignals, Signal,
};

mod packed;

use packed::unpack_packed_complex;

/// A parsed tag value.
#[derive(Debug, Clone)]
enum Val {
    Num(f64),
    Text(String),
    /// An array: element type (15 = struct), byte offset, element count,
    /// bytes per element, bytes per swapped component.
    Array {
        elem: u64,
        offset: usize,
        count: usize,
        esize: usize,
        part: usize,
    },
    Struct(Vec<f64>),
    Group(Vec<(String, Val)>),
}

fn simple_size(t: u64) -> Option<usize> {
    Some(match t {
        8..=10 => 1,
        2 | 4 => 2,
        3 | 5 | 6 => 4,
        7 | 11 | 12 => 8,
        _ => return None,
    })
}

struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
    v4: bool,
    le: bool,
    path: &'a Path,
}

impl Parser<'_> {
    fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::format(self.path, format!("byte {}: {msg}", self.pos))
    }
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.b.len() - self.pos < n {
            return Err(self.err(format!(
                "truncated: {n} bytes needed, {} left",
                self.b.len() - self.pos
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn be_u16(&mut self) -> Result<u16> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn be_u32(&mut self) -> Result<u32> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    /// A length field: u32 (DM3) or u64 (DM4), big-endian.
    fn len(&mut self) -> Result<u64> {
        if self.v4 {
            let s = self.take(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            Ok(u64::from_be_bytes(a))
        } else {
            Ok(u64::from(self.be_u32()?))
        }
    }
    fn value(&self, t: u64, s: &[u8]) -> f64 {
        let mut a = [0u8; 8];
        let n = s.len();
        a[..n].copy_from_slice(s);
        if !self.le {
            a[..n].reverse();
        }
        match t {
            2 => f64::from(i16::from_le_bytes([a[0], a[1]])),
            3 => f64::from(i32::from_le_bytes([a[0], a[1], a[2], a[3]])),
            4 => f64::from(u16::from_le_bytes([a[0], a[1]])),
            5 => f64::from(u32::from_le_bytes([a[0], a[1], a[2], a[3]])),
            6 => f64::from(f32::from_le_bytes([a[0], a[1], a[2], a[3]])),
            7 => f64::from_le_bytes(a),
            9 => f64::from(a[0] as i8),
            11 => i64::from_le_bytes(a) as f64,
            12 => u64::from_le_bytes(a) as f64,
            _ => f64::from(a[0]),
        }
    }

    fn group(&mut self, depth: usize) -> Result<Vec<(String, Val)>> {
        if depth > 64 {
            return Err(self.err("tag groups nested deeper than 64 (corrupt)"));
        }
        let _sorted = self.u8()?;
        let _open = self.u8()?;
        let n = self.len()?;
        let mut out = Vec::new();
        for _ in 0..n {
            let kind = self.u8()?;
            if kind == 0 {
                break;
            }
            let ll = usize::from(self.be_u16()?);
            let label = String::from_utf8_lossy(self.take(ll)?).into_owned();
            if self.v4 {
                let _size = self.len()?;
            }
            let v = match kind {
                20 => Val::Group(self.group(depth + 1)?),
                21 => self.data()?,
                k => return Err(self.err(format!("unknown tag kind {k} (expected 20 or 21)"))),
            };
            out.push((label, v));
        }
        Ok(out)
    }

    fn data(&mut self) -> Result<Val> {
        if self.take(4)? != b"%%%%" {
            return Err(self.err("missing %%%% data marker"));
        }
        let n = self.len()?;
        if n == 0 || n > 1024 {
            return Err(self.err(format!("type definition of {n} entries (corrupt)")));
        }
        let mut info = Vec::new();
        for _ in 0..n {
            info.push(self.len()?);
        }
        let at = |i: usize| info.get(i).copied().unwrap_or(0);
        let left = (self.b.len() - self.pos) as u64;
        match info[0] {
            t if simple_size(t).is_some() => {
                let sz = simple_size(t).unwrap_or(1);
                let s = self.take(sz)?.to_vec();
                Ok(Val::Num(self.value(t, &s)))
            }
            18 => {
                let nb = check_len(self.path, "DM string", at(1), 2, left)?;
                let s = self.take(nb)?.to_vec();
                Ok(Val::Text(self.utf16(&s)))
            }
            15 => {
                let nf = at(2) as usize;
                let mut v = Vec::new();
                for k in 0..nf {
                    let t = at(4 + 2 * k);
                    let sz = simple_size(t)
                        .ok_or_else(|| self.err(format!("unknown DM data type {t} in a struct")))?;
                    let s = self.take(sz)?.to_vec();
                    v.push(self.value(t, &s));
                }
                Ok(Val::Struct(v))
            }
            20 => {
                let elem = at(1);
                let (esize, part, count) = if elem == 15 {
                    let nf = at(3) as usize;
                    let mut total = 0;
                    let mut part = 0;
                    for k in 0..nf {
                        let t = at(5 + 2 * k);
                        let sz = simple_size(t).ok_or_else(|| {
                            self.err(format!("unknown DM data type {t} in an array of structs"))
                        })?;
                        total += sz;
                        part = sz;
                    }
                    (total, part, at(4 + 2 * nf))
                } else {
                    let sz = simple_size(elem).ok_or_else(|| {
                        self.err(format!("unknown DM data type {elem} in an array"))
                    })?;
                    (sz, sz, at(2))
                };
                if esize == 0 {
                    return Err(self.err("array of empty structs"));
                }
                let nb = check_len(self.path, "DM array", count, esize, left)?;
                let offset = self.pos;
                self.take(nb)?;
                Ok(Val::Array {
                    elem,
                    offset,
                    count: nb / esize,
                    esize,
                    part,
                })
            }
            t => Err(self.err(format!("unknown DM data type {t}"))),
        }
    }

    fn utf16(&self, s: &[u8]) -> String {
        let u: Vec<u16> = s
            .chunks_exact(2)
            .map(|c| {
                if self.le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&u)
            .trim_end_matches('\0')
            .to_string()
    }

    /// Array bytes in little-endian order.
    fn array_bytes(&self, v: &Val) -> Option<Vec<u8>> {
        let Val::Array {
            offset,
            count,
            esize,
            part,
            ..
        } = *v
        else {
            return None;
        };
        let mut out = self.b[offset..offset + count * esize].to_vec();
        if !self.le && part > 1 {
            for c in out.chunks_exact_mut(part) {
                c.reverse();
            }
        }
        Some(out)
    }

    fn text(&self, v: &Val) -> Option<String> {
        match v {
            Val::Text(t) => Some(t.clone()),
            Val::Array { elem: 4, count, .. } if *count <= 4096 => self.array_bytes(v).map(|b| {
                let u: Vec<u16> = b
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16_lossy(&u)
                    .trim_end_matches('\0')
                    .to_string()
            }),
            _ => None,
        }
    }
}

fn get<'v>(g: &'v [(String, Val)], path: &[&str]) -> Option<&'v Val> {
    let (first, rest) = path.split_first()?;
    let v = &g.iter().find(|(k, _)| k == first)?.1;
    if rest.is_empty() {
        return Some(v);
    }
    match v {
        Val::Group(sub) => get(sub, rest),
        _ => None,
    }
}

fn num(g: &[(String, Val)], path: &[&str]) -> Option<f64> {
    match get(g, path)? {
        Val::Num(x) => Some(*x),
        _ => None,
    }
}

fn flatten(p: &Parser, prefix: &str, g: &[(String, Val)], out: &mut BTreeMap<String, String>) {
    for (i, (k, v)) in g.iter().enumerate() {
        if out.len() > 10_000 {
            return;
        }
        let key = if k.is_empty() {
            format!("{prefix}{i}")
        } else {
            format!("{prefix}{k}")
        };
        match v {
            Val::Num(x) => {
                out.insert(key, x.to_string());
            }
            Val::Group(sub) => flatten(p, &format!("{key}."), sub, out),
            Val::Struct(v) => {
                out.insert(key, format!("{v:?}"));
            }
            Val::Text(_) | Val::Array { .. } => {
                if let Some(t) = p.text(v) {
                    out.insert(key, t);
                }
            }
        }
    }
}

fn dtype_of(code: u64) -> std::result::Result<Dtype, String> {
    Ok(match code {
        1 => Dtype::I16,
        2 => Dtype::F32,
        3 => Dtype::C64,
        6 => Dtype::U8,
        7 => Dtype::I32,
        8 | 23 => Dtype::Rgba8,
        9 => Dtype::I8,
        10 => Dtype::U16,
        11 => Dtype::U32,
        12 => Dtype::F64,
        13 => Dtype::C128,
        14 => Dtype::Bool,
        39 => Dtype::I64,
        40 => Dtype::U64,
        // Packed complex: stored as one f32 per pixel, unpacked to complex.
        5 => Dtype::C64,
        c => return Err(format!("unknown DM image DataType {c}")),
    })
}

fn acquisition(meta: &BTreeMap<String, String>) -> Acquisition {
    let find = |needle: &str| {
        meta.iter()
            .find(|(k, _)| k.to_ascii_lowercase().contains(needle))
            .and_then(|(_, v)| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    let date = meta
        .iter()
        .find(|(k, _)| k.ends_with("Acquisition Date"))
        .map(|(_, v)| v.clone());
    let time = meta
        .iter()
        .find(|(k, _)| k.ends_with("Acquisition Time"))
        .map(|(_, v)| v.clone());
    Acquisition {
        high_tension_kv: find("microscope info.voltage").map(|v| {
            if v > 1000.0 {
                v / 1000.0
            } else {
                v
            }
        }),
        convergence_mrad: find("convergence").map(|v| if v < 0.5 { v * 1000.0 } else { v }),
        collection_mrad: None,
        dwell_time_us: find("pixel time").or_else(|| find("dwell")),
        magnification: find("indicated magnification"),
        date: match (date, time) {
            (Some(d), Some(t)) => Some(format!("{d} {t}")),
            (d, _) => d,
        },
    }
}

/// Image `i` of the `ImageList` (`img`, its `ImageData` group `idata`).
fn image_signal(
    p: &Parser,
    i: usize,
    img: &[(String, Val)],
    idata: &[(String, Val)],
) -> Result<Signal> {
    let path = p.path;
    let Some(code) = num(idata, &["DataType"]) else {
        return Err(Error::format(path, format!("image {i}: no DataType tag")));
    };
    let dtype =
        dtype_of(code as u64).map_err(|m| Error::format(path, format!("image {i}: {m}")))?;
    let dims: Vec<usize> = match get(idata, &["Dimensions"]) {
        Some(Val::Group(d)) => d
            .iter()
            .map(|(_, v)| match v {
                Val::Num(x) if *x >= 1.0 && *x < 1e9 => Ok(*x as usize),
                _ => Err(Error::format(path, format!("image {i}: bad dimension"))),
            })
            .collect::<Result<_>>()?,
        _ => return Err(Error::format(path, format!("image {i}: no Dimensions"))),
    };
    if dims.is_empty() || dims.len() > 4 {
        return Err(Error::format(
            path,
            format!("image {i}: {} dimensions", dims.len()),
        ));
    }
    let data =
        get(idata, &["Data"]).ok_or_else(|| Error::format(path, format!("image {i}: no Data")))?;
    let bytes = p
        .array_bytes(data)
        .ok_or_else(|| Error::format(path, format!("image {i}: Data is not an array")))?;
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::format(path, format!("image {i}: dimensions {dims:?} overflow")))?;
    let packed = code as u64 == 5;
    let stored_size = if packed { 4 } else { dtype.size() };
    if n.checked_mul(stored_size) != Some(bytes.len()) {
        return Err(Error::format(
            path,
            format!(
                "image {i}: {} data bytes for {dims:?} pixels of {}",
                bytes.len(),
                dtype.name()
            ),
        ));
    }
    let bytes = if packed {
        unpack_packed_complex(&bytes, &dims)
            .map_err(|m| Error::format(path, format!("image {i}: {m}")))?
    } else {
        bytes
    };
    // DM stores (x, y, z…) fastest first; NumPy order is the reverse.
    let shape: Vec<usize> = dims.iter().rev().copied().collect();
    let mut axes: Vec<Axis> = Vec::new();
    if let Some(Val::Group(cal)) = get(idata, &["Calibrations", "Dimension"]) {
        for (k, (_, c)) in cal.iter().enumerate().take(dims.len()) {
            if let Val::Group(c) = c {
                let unit = get(c, &["Units"])
                    .and_then(|u| p.text(u))
                    .unwrap_or_default();
                let scale = num(c, &["Scale"]).unwrap_or(1.0);
                let origin = num(c, &["Origin"]).unwrap_or(0.0);
                // DM's origin is in pixels: value = (index − origin) · scale.
                axes.push(Axis::from_unit(
                    &format!("dim{k}"),
                    scale,
                    -origin * scale,
                    &unit,
                ));
            }
        }
    }
    while axes.len() < dims.len() {
        axes.push(Axis::uncalibrated(&format!("dim{}", axes.len())));
    }
    axes.reverse();
    let mut metadata = BTreeMap::new();
    if let Some(Val::Group(tags)) = get(img, &["ImageTags"]) {
        flatten(p, "", tags, &mut metadata);
    }
    let title = get(img, &["Name"])
        .and_then(|v| p.text(v))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| format!("image {i}"));
    Ok(Signal {
        title,
        shape,
        dtype,
        axes,
        acquisition: acquisition(&metadata),
        metadata,
        bytes,
        unreadable: None,
    })
}

fn image_title(p: &Parser, img: &[(String, Val)], i: usize) -> String {
    get(img, &["Name"])
        .and_then(|v| p.text(v))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| format!("image {i}"))
}

/// Read every image of a DM3/DM4 file.
///
/// # Errors
/// I/O errors; truncation at any point, unknown tag kinds or data types,
/// lengths beyond the file, no `ImageList` or no image in it (file and
/// byte offset named).
pub fn read_dm(path: &Path) -> Result<FileSignals> {
    let b = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if b.len() < 16 {
        return Err(Error::format(path, "truncated DM header"));
    }
    let version = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let v4 = match version {
        3 => false,
        4 => true,
        v => {
            return Err(Error::format(
                path,
                format!("DM version {v} (expected 3 or 4)"),
            ))
        }
    };
    let mut p = Parser {
        b: &b,
        pos: 4,
        v4,
        le: true,
        path,
    };
    let _root_len = p.len()?;
    p.le = match p.be_u32()? {
        1 => true,
        0 => false,
        o => return Err(p.err(format!("byte-order flag {o} (expected 0 or 1)"))),
    };
    let root = p.group(0)?;
    let Some(Val::Group(list)) = get(&root, &["ImageList"]) else {
        return Err(Error::format(
            path,
            "no ImageList tag group: not an image file",
        ));
    };
    let mut signals = Vec::new();
    let mut warnings = Warnings::default();
    // DM writes the file's RGBA thumbnail as the first ImageList entry,
    // before the images; an RGBA entry elsewhere, or the only entry, is an
    // image of its own.
    let entries = list
        .iter()
        .filter(|(_, e)| matches!(e, Val::Group(img) if matches!(get(img, &["ImageData"]), Some(Val::Group(_)))))
        .count();
    for (i, (_, entry)) in list.iter().enumerate() {
        let Val::Group(img) = entry else { continue };
        let Some(Val::Group(idata)) = get(img, &["ImageData"]) else {
            continue;
        };
        if i == 0 && entries > 1 && num(idata, &["DataType"]).is_some_and(|c| c as u64 == 23) {
            warnings.push(format!("image {i}: RGBA thumbnail skipped"));
            continue;
        }
        signals.push(
            image_signal(&p, i, img, idata).unwrap_or_else(|e| {
                Signal::unreadable(image_title(&p, img, i), one_line_reason(e))
            }),
        );
    }
    if !signals.is_empty() {
        require_readable(path, &signals)?;
    } else {
        return Err(Error::Empty {
            what: path.display().to_string(),
            reason: "the DM ImageList holds no image besides the thumbnail".into(),
        });
    }
    Ok(FileSignals {
        format: if v4 { "DM4" } else { "DM3" }.into(),
        signals,
        warnings,
    })
}
