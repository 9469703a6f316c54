//! EMD files (HDF5): Thermo Fisher Velox and the Berkeley EMD of
//! simulation and open-source tools.
//!
//! Formats followed: Velox — `Data/Image/<uuid>/Data` (frames stored as
//! (y, x, frame)) with `Data/Image/<uuid>/Metadata`, a uint8 array
//! (length × frame) holding each frame's JSON (`BinaryResult.PixelSize`
//! in m, `BinaryResult.Detector`, `Optics.AccelerationVoltage` in V,
//! `Optics.BeamConvergence` in rad, `Detectors.Detector-N` with
//! `CollectionAngleRange` in rad, `Scan.DwellTime` in s), as described in
//! Thermo Fisher's Velox EMD notes and the `rosettasciio` format docs.
//! Berkeley EMD 0.2 (emdatasets.com): groups with an `emd_group_type`
//! attribute holding `data` and `dim1…dimN` vectors with `name`/`units`
//! attributes.
//!
//! **HDF5 library: `rust-hdf5` (pure Rust).** Compared with `hdf5-metno`
//! (the libhdf5 binding) built with its `static` feature: the static build
//! compiles libhdf5 from source through CMake, which a fresh machine with
//! only a Rust toolchain lacks (`.ci/run` would have to install it), and the
//! non-static build needs the system `libhdf5-dev`. `rust-hdf5` builds with
//! cargo alone, reads chunked + deflate (and shuffle) datasets, groups and
//! attributes, and writes the same layouts for our tests. Its calls are
//! wrapped so a panic inside it on a corrupt file becomes an error.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use rust_hdf5::{ByteOrder, DatatypeMessage, H5File};

use crate::error::{Error, Result, Warnings};
use crate::io::signal::{Acquisition, Axis, AxisKind, Dtype, FileSignals, Signal};

fn h5err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::format(path, format!("HDF5: {e}"))
}

fn dtype_of(path: &Path, dt: &DatatypeMessage) -> Result<(Dtype, bool)> {
    match dt {
        DatatypeMessage::FixedPoint {
            size,
            byte_order,
            signed,
            ..
        } => {
            let d = match (size, signed) {
                (1, false) => Dtype::U8,
                (1, true) => Dtype::I8,
                (2, false) => Dtype::U16,
                (2, true) => Dtype::I16,
                (4, false) => Dtype::U32,
                (4, true) => Dtype::I32,
                (8, false) => Dtype::U64,
                (8, true) => Dtype::I64,
                _ => {
                    return Err(Error::format(
                        path,
                        format!("{size}-byte integers are not supported"),
                    ))
                }
            };
            Ok((d, matches!(byte_order, ByteOrder::BigEndian)))
        }
        DatatypeMessage::FloatingPoint {
            size, byte_order, ..
        } => {
            let d = match size {
                4 => Dtype::F32,
                8 => Dtype::F64,
                _ => {
                    return Err(Error::format(
                        path,
                        format!("{size}-byte floats are not supported"),
                    ))
                }
            };
            Ok((d, matches!(byte_order, ByteOrder::BigEndian)))
        }
        other => Err(Error::format(
            path,
            format!("image data of HDF5 type {other:?} is not supported"),
        )),
    }
}

/// Undo the filters of one chunk (deflate = 1, shuffle = 2), in reverse
/// pipeline order, skipping those the chunk's mask marks as not applied.
fn unfilter(
    path: &Path,
    mut raw: Vec<u8>,
    mask: u32,
    filters: &[rust_hdf5::Filter],
    es: usize,
    max: usize,
) -> Result<Vec<u8>> {
    for (i, fl) in filters.iter().enumerate().rev() {
        if mask >> i & 1 == 1 {
            continue;
        }
        raw = match fl.id {
            1 => {
                use std::io::Read;
                let mut out = Vec::with_capacity(max);
                flate2::read::ZlibDecoder::new(raw.as_slice())
                    .take(max as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| h5err(path, format!("deflate: {e}")))?;
                out
            }
            2 => {
                let n = raw.len() / es.max(1);
                let mut out = vec![0u8; raw.len()];
                for b in 0..es {
                    for k in 0..n {
                        out[k * es + b] = raw[b * n + k];
                    }
                }
                out
            }
            id => return Err(h5err(path, format!("unsupported filter {id}"))),
        };
        if raw.len() > max {
            return Err(h5err(
                path,
                "a chunk decompresses beyond its size (corrupt)",
            ));
        }
    }
    Ok(raw)
}

/// Chunked datasets of rank ≤ 3 with deflate/shuffle, read chunk by chunk
/// (the library's whole-dataset read scatters element by element: 340 ms vs
/// 5 ms for 10 × 1024² u16). `frames_last` = Velox (y, x, frame) chunks of
/// one frame, written straight into (frame, y, x) order (the flag says
/// so). `None` = not handled here.
fn read_chunks(
    path: &Path,
    ds: &rust_hdf5::H5Dataset,
    shape: &[usize],
    es: usize,
    frames_last: bool,
) -> Result<Option<(Vec<u8>, bool)>> {
    let Some(c) = ds.chunk_dims() else {
        return Ok(None);
    };
    let filters = ds.filters().map_err(|e| h5err(path, e))?;
    if c.len() != shape.len()
        || shape.len() > 3
        || c.contains(&0)
        || filters.iter().any(|f| f.id > 2)
    {
        return Ok(None);
    }
    let total: usize = shape.iter().product::<usize>() * es;
    let mut out = vec![0u8; total];
    let grid: Vec<usize> = shape.iter().zip(&c).map(|(s, c)| s.div_ceil(*c)).collect();
    let chunk_bytes = c.iter().product::<usize>() * es;
    let pad3 = |v: &[usize], fill: usize| -> [usize; 3] {
        let mut a = [fill; 3];
        a[3 - v.len()..].copy_from_slice(v);
        a
    };
    let (s3, c3, g3) = (pad3(shape, 1), pad3(&c, 1), pad3(&grid, 1));
    let velox =
        frames_last && shape.len() == 3 && c[0] == shape[0] && c[1] == shape[1] && c[2] == 1;
    // Raw chunks are read in order (the file handle is not shared across
    // threads), then decompressed in parallel.
    let mut raws = Vec::new();
    for i in 0..g3[0] {
        for j in 0..g3[1] {
            for k in 0..g3[2] {
                let coords: Vec<usize> = [i, j, k][3 - shape.len()..].to_vec();
                let (raw, mask) = ds.read_chunk_raw_at(&coords).map_err(|e| h5err(path, e))?;
                raws.push(([i, j, k], raw, mask));
            }
        }
    }
    let chunks: Vec<([usize; 3], Vec<u8>)> = {
        use rayon::prelude::*;
        raws.into_par_iter()
            .map(|(ijk, raw, mask)| {
                let data = unfilter(path, raw, mask, &filters, es, chunk_bytes)?;
                if data.len() != chunk_bytes {
                    return Err(h5err(
                        path,
                        format!(
                            "chunk {ijk:?}: {} bytes, expected {chunk_bytes}",
                            data.len()
                        ),
                    ));
                }
                Ok((ijk, data))
            })
            .collect::<Result<_>>()?
    };
    for ([i, j, k], data) in chunks {
        if velox {
            // Chunk (y, x, 1) = frame k in (y, x) order.
            out[k * chunk_bytes..(k + 1) * chunk_bytes].copy_from_slice(&data);
            continue;
        }
        let (o0, o1, o2) = (i * c3[0], j * c3[1], k * c3[2]);
        let run = c3[2].min(s3[2] - o2) * es;
        for a in 0..c3[0].min(s3[0] - o0) {
            for b in 0..c3[1].min(s3[1] - o1) {
                let src = ((a * c3[1] + b) * c3[2]) * es;
                let dst = (((o0 + a) * s3[1] + o1 + b) * s3[2] + o2) * es;
                out[dst..dst + run].copy_from_slice(&data[src..src + run]);
            }
        }
    }
    Ok(Some((out, velox)))
}

/// A dataset's bytes (little-endian) and its dtype and shape; with
/// `frames_last`, a rank-3 (y, x, frame) dataset comes back as
/// (frame, y, x) bytes (shape still reported as stored).
fn read_dataset(
    path: &Path,
    f: &H5File,
    name: &str,
    frames_last: bool,
) -> Result<(Vec<u8>, Dtype, Vec<usize>)> {
    let ds = f
        .dataset(name)
        .map_err(|e| h5err(path, format!("{name}: {e}")))?;
    let (dtype, big) = dtype_of(path, &ds.datatype().map_err(|e| h5err(path, e))?)?;
    let shape = ds.shape();
    let es = dtype.size();
    let (mut bytes, done_frames_first) = match read_chunks(path, &ds, &shape, es, frames_last)? {
        Some(fast) => fast,
        None => (
            ds.read_raw_bytes()
                .map_err(|e| h5err(path, format!("{name}: {e}")))?,
            false,
        ),
    };
    if frames_last && shape.len() == 3 && !done_frames_first {
        bytes = frames_first(&bytes, shape[0], shape[1], shape[2], es);
    }
    let n: usize = shape.iter().product();
    if n.checked_mul(dtype.size()) != Some(bytes.len()) {
        return Err(Error::format(
            path,
            format!("{name}: {} bytes for shape {shape:?}", bytes.len()),
        ));
    }
    if big && dtype.size() > 1 {
        for c in bytes.chunks_exact_mut(dtype.size()) {
            c.reverse();
        }
    }
    Ok((bytes, dtype, shape))
}

/// (y, x, frame) → (frame, y, x).
fn frames_first(bytes: &[u8], ny: usize, nx: usize, nf: usize, es: usize) -> Vec<u8> {
    if nf == 1 {
        return bytes.to_vec();
    }
    let mut out = vec![0u8; bytes.len()];
    for p in 0..ny * nx {
        for f in 0..nf {
            let src = (p * nf + f) * es;
            let dst = (f * ny * nx + p) * es;
            out[dst..dst + es].copy_from_slice(&bytes[src..src + es]);
        }
    }
    out
}

fn flatten_json(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_json(&key, x, out);
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn velox_acquisition(m: &BTreeMap<String, String>) -> Acquisition {
    let num = |k: &str| {
        m.get(k)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    let detector = m.get("BinaryResult.Detector").cloned().unwrap_or_default();
    // The Detectors.Detector-N entry whose name is this signal's detector.
    let det_prefix = m
        .iter()
        .find(|(k, v)| {
            k.starts_with("Detectors.") && k.ends_with(".DetectorName") && **v == detector
        })
        .map(|(k, _)| k.trim_end_matches(".DetectorName").to_string());
    let collection = det_prefix.and_then(|p| {
        Some((
            num(&format!("{p}.CollectionAngleRange.begin"))? * 1e3,
            num(&format!("{p}.CollectionAngleRange.end"))? * 1e3,
        ))
    });
    Acquisition {
        high_tension_kv: num("Optics.AccelerationVoltage").map(|v| v / 1e3),
        convergence_mrad: num("Optics.BeamConvergence").map(|v| v * 1e3),
        collection_mrad: collection,
        dwell_time_us: num("Scan.DwellTime").map(|v| v * 1e6),
        magnification: num("CustomProperties.StemMagnification.value")
            .or_else(|| num("Optics.NominalMagnification")),
        date: m
            .get("Acquisition.AcquisitionStartDatetime.DateTime")
            .cloned(),
    }
}

fn read_velox(path: &Path, f: &H5File) -> Result<FileSignals> {
    let image = f
        .root_group()
        .group("Data")
        .and_then(|g| g.group("Image"))
        .map_err(|e| h5err(path, e))?;
    let mut ids = image.group_names().map_err(|e| h5err(path, e))?;
    ids.sort();
    let mut signals = Vec::new();
    let mut warnings = Warnings::default();
    for id in ids {
        let base = format!("Data/Image/{id}");
        let (bytes, dtype, shape) = read_dataset(path, f, &format!("{base}/Data"), true)?;
        let (ny, nx, nf) = match shape.as_slice() {
            [ny, nx] => (*ny, *nx, 1),
            [ny, nx, nf] => (*ny, *nx, *nf),
            s => {
                warnings.push(format!(
                    "{base}/Data: shape {s:?} skipped (not an image or frame stack)"
                ));
                continue;
            }
        };
        let mut metadata = BTreeMap::new();
        if let Ok(ds) = f.dataset(&format!("{base}/Metadata")) {
            let raw = ds.read_raw_bytes().map_err(|e| h5err(path, e))?;
            let cols = ds.shape().get(1).copied().unwrap_or(1).max(1);
            // Column 0 = the first frame's JSON, zero padded.
            let json: Vec<u8> = raw
                .iter()
                .step_by(cols)
                .copied()
                .take_while(|&c| c != 0)
                .collect();
            match serde_json::from_slice::<serde_json::Value>(&json) {
                Ok(v) => flatten_json("", &v, &mut metadata),
                Err(e) => warnings.push(format!("{base}/Metadata: not JSON ({e})")),
            }
        } else {
            warnings.push(format!("{base}: no Metadata dataset (uncalibrated)"));
        }
        let px = |k: &str| metadata.get(k).and_then(|v| v.parse::<f64>().ok());
        let unit = metadata
            .get("BinaryResult.PixelUnitX")
            .cloned()
            .unwrap_or_else(|| "m".into());
        let (ay, ax) = match (
            px("BinaryResult.PixelSize.height"),
            px("BinaryResult.PixelSize.width"),
        ) {
            (Some(h), Some(w)) => (
                Axis::from_unit("y", h, 0.0, &unit),
                Axis::from_unit("x", w, 0.0, &unit),
            ),
            _ => (Axis::uncalibrated("y"), Axis::uncalibrated("x")),
        };
        let (shape, axes) = if nf > 1 {
            (vec![nf, ny, nx], vec![Axis::uncalibrated("frame"), ay, ax])
        } else {
            (vec![ny, nx], vec![ay, ax])
        };
        let title = metadata
            .get("BinaryResult.Detector")
            .cloned()
            .unwrap_or_else(|| id.clone());
        signals.push(Signal {
            title,
            shape,
            dtype,
            axes,
            acquisition: velox_acquisition(&metadata),
            bytes,
            metadata,
        });
    }
    Ok(FileSignals {
        format: "Velox EMD".into(),
        signals,
        warnings,
    })
}

fn berkeley_groups(
    f: &H5File,
    g: &rust_hdf5::H5Group,
    prefix: &str,
    depth: usize,
    out: &mut Vec<String>,
) {
    if depth > 8 {
        return;
    }
    for name in g.group_names().unwrap_or_default() {
        let path = format!("{prefix}{name}");
        let Ok(sub) = g.group(&name) else { continue };
        if sub
            .attr_names()
            .unwrap_or_default()
            .iter()
            .any(|a| a == "emd_group_type")
            && f.dataset(&format!("{path}/data")).is_ok()
        {
            out.push(path.clone());
        }
        berkeley_groups(f, &sub, &format!("{path}/"), depth + 1, out);
    }
}

fn read_berkeley(path: &Path, f: &H5File, groups: &[String]) -> Result<FileSignals> {
    let mut signals = Vec::new();
    for g in groups {
        let (bytes, dtype, shape) = read_dataset(path, f, &format!("{g}/data"), false)?;
        let mut axes = Vec::new();
        for k in 1..=shape.len() {
            let name = format!("{g}/dim{k}");
            let axis = match f.dataset(&name) {
                Ok(ds) => {
                    let v: Vec<f64> = ds.read_numeric_as::<f64>().unwrap_or_default();
                    let attr =
                        |a: &str| ds.attr(a).and_then(|x| x.read_string()).unwrap_or_default();
                    let scale = if v.len() >= 2 { v[1] - v[0] } else { 1.0 };
                    Axis::from_unit(
                        &attr("name"),
                        scale,
                        v.first().copied().unwrap_or(0.0),
                        &attr("units"),
                    )
                }
                Err(_) => Axis::uncalibrated(&format!("dim{k}")),
            };
            axes.push(axis);
        }
        let title = g.rsplit('/').next().unwrap_or(g).to_string();
        // (y, x, frame) with a non-length last axis → frames first.
        let (shape, axes, bytes) = match (shape.as_slice(), axes.as_slice()) {
            ([ny, nx, nf], [a0, a1, a2])
                if a0.kind == AxisKind::Length
                    && a1.kind == AxisKind::Length
                    && a2.kind != AxisKind::Length =>
            {
                let b = frames_first(&bytes, *ny, *nx, *nf, dtype.size());
                (
                    vec![*nf, *ny, *nx],
                    vec![a2.clone(), a0.clone(), a1.clone()],
                    b,
                )
            }
            _ => (shape, axes, bytes),
        };
        signals.push(Signal {
            title,
            shape,
            dtype,
            axes,
            acquisition: Acquisition::default(),
            metadata: BTreeMap::new(),
            bytes,
        });
    }
    Ok(FileSignals {
        format: "Berkeley EMD".into(),
        signals,
        warnings: Warnings::default(),
    })
}

/// Read every image signal of a Velox or Berkeley EMD file.
///
/// # Errors
/// Not an HDF5 file, an HDF5 file without an EMD image group, unsupported
/// element types, corrupt files (a panic inside the HDF5 library is caught
/// and reported as an error naming the file).
pub fn read_emd(path: &Path) -> Result<FileSignals> {
    let run = || -> Result<FileSignals> {
        let f = H5File::open(path).map_err(|e| h5err(path, e))?;
        let root = f.root_group();
        let velox = root.group("Data").and_then(|g| g.group("Image")).is_ok();
        let fs = if velox {
            read_velox(path, &f)?
        } else {
            let mut groups = Vec::new();
            berkeley_groups(&f, &root, "", 0, &mut groups);
            if groups.is_empty() {
                return Err(Error::format(
                    path,
                    "HDF5 file without an EMD image group (no Data/Image, no emd_group_type group)",
                ));
            }
            read_berkeley(path, &f, &groups)?
        };
        if fs.signals.is_empty() {
            return Err(Error::Empty {
                what: path.display().to_string(),
                reason: "no image signal in the EMD file".into(),
            });
        }
        Ok(fs)
    };
    // Silence the default hook while the HDF5 library runs: a panic inside
    // it becomes our one-line error, not a backtrace on stderr.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let out = catch_unwind(AssertUnwindSafe(run));
    std::panic::set_hook(hook);
    out.unwrap_or_else(|_| {
        Err(Error::format(
            path,
            "corrupt HDF5 structure (the HDF5 reader gave up)",
        ))
    })
}
