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
//! attributes; groups HyperSpy wrote (a `record_by` attribute) hold the
//! array with its axes reversed and are read back in HyperSpy's order.
//! Velox image titles: see `titles.rs`. A chunk the writer never wrote
//! reads as the dataset's fill value (zeros by default), as HDF5 defines.
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

use rust_hdf5::H5File;

use crate::error::{Error, Result, Warnings};
use crate::io::signal::{
    one_line_reason as reason, require_readable, Acquisition, Axis, AxisKind, FileSignals, Signal,
};

mod data;
mod titles;

use data::{bounded, byte_cap, frames_first, read_dataset};

fn h5err(path: &Path, e: impl std::fmt::Display) -> Error {
    let one_line = e.to_string().replace(['\n', '\r'], " ");
    Error::format(path, format!("HDF5: {one_line}"))
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

/// Column 0 of a Velox `Metadata` dataset (the first frame's JSON, zero
/// padded), flattened; `Err` = a one-line reason.
fn velox_metadata(
    path: &Path,
    f: &H5File,
    base: &str,
    file_len: u64,
) -> std::result::Result<BTreeMap<String, String>, String> {
    let ds = f
        .dataset(&format!("{base}/Metadata"))
        .map_err(|_| "no Metadata dataset (uncalibrated)".to_string())?;
    let shape = ds.shape();
    let cap = byte_cap(file_len, &ds.filters().unwrap_or_default());
    bounded(path, "Metadata", &shape, ds.element_size(), cap).map_err(reason)?;
    let raw = ds.read_raw_bytes().map_err(|e| reason(h5err(path, e)))?;
    let cols = shape.get(1).copied().unwrap_or(1).max(1);
    let json: Vec<u8> = raw
        .iter()
        .step_by(cols)
        .copied()
        .take_while(|&c| c != 0)
        .collect();
    let v = serde_json::from_slice::<serde_json::Value>(&json)
        .map_err(|e| format!("Metadata is not JSON ({e})"))?;
    let mut m = BTreeMap::new();
    flatten_json("", &v, &mut m);
    Ok(m)
}

/// One `Data/Image/<id>` group as a signal; `Ok(None)` = not an image
/// (warned), `Err` = unreadable (the caller keeps its place).
fn velox_signal(
    path: &Path,
    f: &H5File,
    id: &str,
    metadata: BTreeMap<String, String>,
    file_len: u64,
    warnings: &mut Warnings,
) -> Result<Option<Signal>> {
    let base = format!("Data/Image/{id}");
    let (bytes, dtype, shape) = read_dataset(path, f, &format!("{base}/Data"), true, file_len)?;
    let (ny, nx, nf) = match shape.as_slice() {
        [ny, nx] => (*ny, *nx, 1),
        [ny, nx, nf] => (*ny, *nx, *nf),
        s => {
            warnings.push(format!(
                "{base}/Data: shape {s:?} skipped (not an image or frame stack)"
            ));
            return Ok(None);
        }
    };
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
    Ok(Some(Signal {
        title: velox_title(&metadata, id),
        shape,
        dtype,
        axes,
        acquisition: velox_acquisition(&metadata),
        bytes,
        metadata,
        unreadable: None,
    }))
}

fn velox_title(metadata: &BTreeMap<String, String>, id: &str) -> String {
    metadata
        .get("BinaryResult.Detector")
        .cloned()
        .unwrap_or_else(|| id.to_string())
}

/// Every `Data/Image/<uuid>` group; one that cannot be read is listed as
/// unreadable with its reason, the others read.
fn read_velox(path: &Path, f: &H5File, file_len: u64) -> Result<FileSignals> {
    let image = f
        .root_group()
        .group("Data")
        .and_then(|g| g.group("Image"))
        .map_err(|e| h5err(path, e))?;
    let mut ids = image.group_names().map_err(|e| h5err(path, e))?;
    ids.sort();
    let mut signals = Vec::new();
    let mut warnings = Warnings::default();
    let names = titles::velox_titles(f);
    for id in ids {
        let base = format!("Data/Image/{id}");
        let metadata = match velox_metadata(path, f, &base, file_len) {
            Ok(m) => m,
            Err(r) => {
                warnings.push(format!("{base}: {r}"));
                BTreeMap::new()
            }
        };
        let title = names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| velox_title(&metadata, &id));
        match velox_signal(path, f, &id, metadata, file_len, &mut warnings) {
            Ok(Some(mut s)) => {
                s.title.clone_from(&title);
                signals.push(s);
            }
            Ok(None) => {}
            Err(e) => signals.push(Signal::unreadable(title, reason(e))),
        }
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

/// Axis `k` (1-based) of a Berkeley group from its `dimK` vector.
fn berkeley_axis(path: &Path, f: &H5File, g: &str, k: usize, file_len: u64) -> Axis {
    let name = format!("{g}/dim{k}");
    let Ok(ds) = f.dataset(&name) else {
        return Axis::uncalibrated(&format!("dim{k}"));
    };
    let cap = byte_cap(file_len, &ds.filters().unwrap_or_default());
    let v: Vec<f64> = match bounded(path, &name, &ds.shape(), ds.element_size(), cap) {
        Ok(_) => ds.read_numeric_as::<f64>().unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let attr = |a: &str| ds.attr(a).and_then(|x| x.read_string()).unwrap_or_default();
    let scale = if v.len() >= 2 { v[1] - v[0] } else { 1.0 };
    Axis::from_unit(
        &attr("name"),
        scale,
        v.first().copied().unwrap_or(0.0),
        &attr("units"),
    )
}

/// HyperSpy's EMD writer marks its groups with `record_by` and stores the
/// array with its axes reversed (dim1 = HyperSpy's last axis).
fn hyperspy_written(f: &H5File, g: &str) -> bool {
    f.root_group().group(g).is_ok_and(|grp| {
        grp.attr_names()
            .unwrap_or_default()
            .iter()
            .any(|a| a == "record_by")
    })
}

/// Elements of a C-order array of `shape` (`es` bytes each) with every
/// axis order reversed (the full transpose).
fn reverse_axes(bytes: &[u8], shape: &[usize], es: usize) -> Vec<u8> {
    let n = shape.len();
    if n < 2 {
        return bytes.to_vec();
    }
    // Source strides (elements), then the output walks the reversed shape.
    let mut stride = vec![1usize; n];
    for k in (0..n - 1).rev() {
        stride[k] = stride[k + 1] * shape[k + 1];
    }
    let out_shape: Vec<usize> = shape.iter().rev().copied().collect();
    let out_stride: Vec<usize> = stride.iter().rev().copied().collect();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = vec![0usize; n];
    let total: usize = shape.iter().product();
    for _ in 0..total {
        let src: usize = idx.iter().zip(&out_stride).map(|(i, s)| i * s).sum();
        out.extend_from_slice(&bytes[src * es..(src + 1) * es]);
        for k in (0..n).rev() {
            idx[k] += 1;
            if idx[k] < out_shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

fn berkeley_signal(path: &Path, f: &H5File, g: &str, file_len: u64) -> Result<Signal> {
    let (mut bytes, dtype, mut shape) =
        read_dataset(path, f, &format!("{g}/data"), false, file_len)?;
    let mut axes: Vec<Axis> = (1..=shape.len().min(32))
        .map(|k| berkeley_axis(path, f, g, k, file_len))
        .collect();
    if hyperspy_written(f, g) {
        bytes = reverse_axes(&bytes, &shape, dtype.size());
        shape.reverse();
        axes.reverse();
    }
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
    Ok(Signal {
        title: berkeley_title(g),
        shape,
        dtype,
        axes,
        acquisition: Acquisition::default(),
        metadata: BTreeMap::new(),
        bytes,
        unreadable: None,
    })
}

fn berkeley_title(g: &str) -> String {
    g.rsplit('/').next().unwrap_or(g).to_string()
}

fn read_berkeley(path: &Path, f: &H5File, groups: &[String], file_len: u64) -> FileSignals {
    let signals = groups
        .iter()
        .map(|g| {
            berkeley_signal(path, f, g, file_len)
                .unwrap_or_else(|e| Signal::unreadable(berkeley_title(g), reason(e)))
        })
        .collect();
    FileSignals {
        format: "Berkeley EMD".into(),
        signals,
        warnings: Warnings::default(),
    }
}

/// Read every image signal of a Velox or Berkeley EMD file.
///
/// # Errors
/// Not an HDF5 file, an HDF5 file without an EMD image group, unsupported
/// element types, corrupt files (a panic inside the HDF5 library is caught
/// and reported as an error naming the file).
pub fn read_emd(path: &Path) -> Result<FileSignals> {
    let run = || -> Result<FileSignals> {
        let file_len = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        let f = H5File::open(path).map_err(|e| h5err(path, e))?;
        let root = f.root_group();
        let velox = root.group("Data").and_then(|g| g.group("Image")).is_ok();
        let fs = if velox {
            read_velox(path, &f, file_len)?
        } else {
            let mut groups = Vec::new();
            berkeley_groups(&f, &root, "", 0, &mut groups);
            if groups.is_empty() {
                return Err(Error::format(
                    path,
                    "HDF5 file without an EMD image group (no Data/Image, no emd_group_type group)",
                ));
            }
            read_berkeley(path, &f, &groups, file_len)
        };
        if fs.signals.is_empty() {
            return Err(Error::Empty {
                what: path.display().to_string(),
                reason: "no image signal in the EMD file".into(),
            });
        }
        require_readable(path, &fs.signals)?;
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
