//! Titles of Velox images. `BinaryResult.Detector` names the detector,
//! which several images share (the four segments of a DF4 detector and
//! every image computed from them are all `DF4`). Velox names each image
//! elsewhere:
//! - `Presentation/Displays/*/<id>`: JSON with `display.label` and the
//!   `dataPath` of the image shown;
//! - `Operations/<Kind>/<id>`: JSON with the `dataPath` an operation
//!   writes, and `outputs` naming the operations that take it as input
//!   (`inputIndex`); a `StemInputOperation` names its `detector` segment
//!   (`DF4-A`), a `MathematicsOperation` its `mathematicsMode`, a
//!   `SurfaceReconstructionOperation` (iDPC) also its `unfilteredDataPath`.
//!
//! An image's title is, in order: its display label, its detector segment,
//! the operation that wrote it (a difference of segments as `DF4-B - DF4-D`,
//! an unfiltered iDPC as `iDPC (unfiltered)`), the detector name.

use std::collections::BTreeMap;

use rust_hdf5::H5File;

/// JSON documents of every dataset in the groups under `base`
/// (`base/<kind>/<id>`), with their path; unreadable ones are skipped.
fn json_docs(f: &H5File, base: &str) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    let Ok(g) = f.root_group().group(base) else {
        return out;
    };
    for kind in g.group_names().unwrap_or_default().into_iter().take(1000) {
        let Ok(sub) = g.group(&kind) else { continue };
        for id in sub
            .dataset_names()
            .unwrap_or_default()
            .into_iter()
            .take(10_000)
        {
            let path = format!("/{base}/{kind}/{id}");
            let Ok(ds) = f.dataset(&path) else { continue };
            // Small JSON strings only; anything else is not a description.
            if ds.shape().iter().product::<usize>() > 16 {
                continue;
            }
            let text = ds.read_strings_lossy().unwrap_or_default().join("");
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                out.push((path, v));
            }
        }
    }
    out
}

fn field<'a>(v: &'a serde_json::Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Normalise a `dataPath` (`\/Data\/Image\/<id>` after JSON decoding is
/// `/Data/Image/<id>`) to the image id.
fn image_id(p: &str) -> Option<String> {
    p.trim_start_matches('/')
        .strip_prefix("Data/Image/")
        .map(|id| id.trim_end_matches('/').to_string())
}

/// `%XX` escapes decoded (Velox percent-encodes labels such as
/// `FFT%231%28Ceta%29` = `FFT#1(Ceta)`); invalid ones are kept as written.
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// Image id → title, from the file's displays and operations.
pub(super) fn velox_titles(f: &H5File) -> BTreeMap<String, String> {
    let mut titles = BTreeMap::new();
    for (_, v) in json_docs(f, "Presentation/Displays") {
        if let (Some(label), Some(id)) = (
            field(&v, &["display", "label"]),
            field(&v, &["dataPath"]).and_then(image_id),
        ) {
            titles.entry(id).or_insert_with(|| percent_decoded(label));
        }
    }
    let ops = json_docs(f, "Operations");
    for (_, v) in &ops {
        if let (Some(det), Some(id)) = (
            field(v, &["detector"]),
            field(v, &["dataPath"]).and_then(image_id),
        ) {
            titles.entry(id).or_insert_with(|| det.to_string());
        }
    }
    // Inputs of each operation: (inputIndex, title of the source's image).
    let mut inputs: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for (_, v) in &ops {
        let Some(src) = field(v, &["dataPath"])
            .and_then(image_id)
            .and_then(|id| titles.get(&id).cloned())
        else {
            continue;
        };
        for o in v
            .get("outputs")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(op) = field(o, &["operation"]) {
                let k = field(o, &["inputIndex"])
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                inputs
                    .entry(op.to_string())
                    .or_default()
                    .push((k, src.clone()));
            }
        }
    }
    for (path, v) in &ops {
        let Some(id) = field(v, &["dataPath"]).and_then(image_id) else {
            continue;
        };
        let kind = path.split('/').nth(2).unwrap_or_default();
        let title = match (kind, field(v, &["mathematicsMode"])) {
            ("MathematicsOperation", Some(mode)) => {
                let mut ins = inputs.get(path.as_str()).cloned().unwrap_or_default();
                ins.sort();
                let sep = match mode {
                    "Subtraction" => " - ",
                    "Addition" => " + ",
                    "Multiplication" => " × ",
                    "Division" => " / ",
                    _ => "",
                };
                if ins.len() == 2 && !sep.is_empty() {
                    format!("{}{sep}{}", ins[0].1, ins[1].1)
                } else {
                    mode.to_string()
                }
            }
            _ => kind.trim_end_matches("Operation").to_string(),
        };
        if !title.is_empty() {
            titles.entry(id.clone()).or_insert(title);
        }
        let name = titles.get(&id).cloned();
        if let (Some(unf), Some(name)) =
            (field(v, &["unfilteredDataPath"]).and_then(image_id), name)
        {
            titles.entry(unf).or_insert(format!("{name} (unfiltered)"));
        }
    }
    titles
}
