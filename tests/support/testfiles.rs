//! Test support: minimal microscope files written from the format
//! specifications the readers follow (DM3/DM4 tag files, TIA SER + EMI,
//! MRC, Velox EMD), so readers are tested without instrument files. Not
//! for production output: qdscope writes NPY/TIFF/MRC. Velox EMD layouts
//! are written with the same HDF5 library the reader uses.
//!
//! Not part of the library: the reader tests (`tests/formats.rs`,
//! `tests/readers.rs`, `tests/mutation.rs`) and `examples/bench_read.rs`
//! include this file with `#[path = "…"] mod testfiles;`.
#![allow(dead_code)]

/// A DM tag value to write.
#[derive(Debug, Clone)]
pub enum Tag {
    /// A simple value of DM type `t` (2–12).
    Num(u64, f64),
    /// A type-18 UTF-16 string.
    Str(String),
    /// A string as an array of u16 (how DM stores most text).
    U16Str(String),
    /// A struct of simple values (type, value).
    Struct(Vec<(u64, f64)>),
    /// An array of simple elements of type `t` from little-endian bytes.
    Array(u64, Vec<u8>),
    /// An array of structs with the given field types, from little-endian bytes.
    StructArray(Vec<u64>, Vec<u8>),
    /// A tag group.
    Group(Vec<(String, Tag)>),
}

fn simple_size(t: u64) -> usize {
    match t {
        8..=10 => 1,
        2 | 4 => 2,
        3 | 5 | 6 => 4,
        _ => 8,
    }
}

struct W {
    v4: bool,
    le: bool,
}

impl W {
    fn len(&self, out: &mut Vec<u8>, n: u64) {
        if self.v4 {
            out.extend_from_slice(&n.to_be_bytes());
        } else {
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
    fn val(&self, out: &mut Vec<u8>, t: u64, v: f64) {
        let mut b: Vec<u8> = match t {
            2 => (v as i16).to_le_bytes().to_vec(),
            3 => (v as i32).to_le_bytes().to_vec(),
            4 => (v as u16).to_le_bytes().to_vec(),
            5 => (v as u32).to_le_bytes().to_vec(),
            6 => (v as f32).to_le_bytes().to_vec(),
            7 => v.to_le_bytes().to_vec(),
            9 => vec![(v as i8) as u8],
            11 => (v as i64).to_le_bytes().to_vec(),
            12 => (v as u64).to_le_bytes().to_vec(),
            _ => vec![v as u8],
        };
        if !self.le {
            b.reverse();
        }
        out.extend_from_slice(&b);
    }
    fn swapped(&self, bytes: &[u8], part: usize) -> Vec<u8> {
        let mut b = bytes.to_vec();
        if !self.le && part > 1 {
            for c in b.chunks_exact_mut(part) {
                c.reverse();
            }
        }
        b
    }
    fn data(&self, out: &mut Vec<u8>, t: &Tag) {
        if let Tag::U16Str(s) = t {
            let b: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
            return self.data(out, &Tag::Array(4, b));
        }
        out.extend_from_slice(b"%%%%");
        let (info, payload): (Vec<u64>, Vec<u8>) = match t {
            Tag::Num(ty, v) => {
                let mut p = Vec::new();
                self.val(&mut p, *ty, *v);
                (vec![*ty], p)
            }
            Tag::Str(s) => {
                let u: Vec<u16> = s.encode_utf16().collect();
                let mut p = Vec::new();
                for c in &u {
                    p.extend_from_slice(&if self.le {
                        c.to_le_bytes()
                    } else {
                        c.to_be_bytes()
                    });
                }
                (vec![18, u.len() as u64], p)
            }
            Tag::Struct(f) => {
                let mut info = vec![15, 0, f.len() as u64];
                let mut p = Vec::new();
                for (ty, v) in f {
                    info.extend_from_slice(&[0, *ty]);
                    self.val(&mut p, *ty, *v);
                }
                (info, p)
            }
            Tag::Array(ty, b) => {
                let n = b.len() / simple_size(*ty);
                (vec![20, *ty, n as u64], self.swapped(b, simple_size(*ty)))
            }
            Tag::StructArray(fields, b) => {
                let esize: usize = fields.iter().map(|&t| simple_size(t)).sum();
                let mut info = vec![20, 15, 0, fields.len() as u64];
                for &t in fields {
                    info.extend_from_slice(&[0, t]);
                }
                info.push((b.len() / esize) as u64);
                (info, self.swapped(b, simple_size(fields[0])))
            }
            Tag::Group(_) | Tag::U16Str(_) => (vec![], vec![]),
        };
        self.len(out, info.len() as u64);
        for i in info {
            self.len(out, i);
        }
        out.extend_from_slice(&payload);
    }
    fn group(&self, out: &mut Vec<u8>, g: &[(String, Tag)]) {
        out.extend_from_slice(&[1, 0]);
        self.len(out, g.len() as u64);
        for (label, t) in g {
            out.push(if matches!(t, Tag::Group(_)) { 20 } else { 21 });
            out.extend_from_slice(&(label.len() as u16).to_be_bytes());
            out.extend_from_slice(label.as_bytes());
            let mut body = Vec::new();
            match t {
                Tag::Group(sub) => self.group(&mut body, sub),
                _ => self.data(&mut body, t),
            }
            if self.v4 {
                out.extend_from_slice(&(body.len() as u64).to_be_bytes());
            }
            out.extend_from_slice(&body);
        }
    }
}

/// One image of a test DM file.
#[derive(Debug, Clone)]
pub struct DmImage {
    /// `Name` tag.
    pub name: String,
    /// DM `DataType` code.
    pub data_type: u32,
    /// Dimensions in DM order (x, y, \[z\]).
    pub dims: Vec<usize>,
    /// The `Data` tag (an [`Tag::Array`] or [`Tag::StructArray`], little-endian bytes).
    pub data: Tag,
    /// Pixel size and its unit (x and y).
    pub scale: (f64, String),
    /// `Microscope Info` voltage in V, if any.
    pub voltage_v: Option<f64>,
}

/// Bytes of a DM3 (`version` 3) or DM4 (4) file, little- or big-endian
/// data, with an RGBA thumbnail first and then `images`, plus tags of every
/// simple type, a struct and a type-18 string in `ImageTags`.
#[must_use]
pub fn dm_file(version: u32, little_endian: bool, images: &[DmImage]) -> Vec<u8> {
    let w = W {
        v4: version == 4,
        le: little_endian,
    };
    let thumb = Tag::Group(vec![(
        "ImageData".into(),
        Tag::Group(vec![
            ("Data".into(), Tag::Array(5, vec![7u8; 64])),
            ("DataType".into(), Tag::Num(5, 23.0)),
            (
                "Dimensions".into(),
                Tag::Group(vec![
                    (String::new(), Tag::Num(5, 4.0)),
                    (String::new(), Tag::Num(5, 4.0)),
                ]),
            ),
        ]),
    )]);
    let mut list = vec![(String::new(), thumb)];
    for im in images {
        let dim = |n: usize| (String::new(), Tag::Num(5, n as f64));
        let cal = |_: usize| {
            (
                String::new(),
                Tag::Group(vec![
                    ("Origin".into(), Tag::Num(6, 0.0)),
                    ("Scale".into(), Tag::Num(6, im.scale.0)),
                    ("Units".into(), Tag::U16Str(im.scale.1.clone())),
                ]),
            )
        };
        let mut mic = vec![
            ("Indicated Magnification".into(), Tag::Num(7, 2.55e6)),
            (
                "Probe Convergence Semi-angle (mrad)".into(),
                Tag::Num(6, 18.0),
            ),
        ];
        if let Some(v) = im.voltage_v {
            mic.push(("Voltage".into(), Tag::Num(7, v)));
        }
        let tags = Tag::Group(vec![
            ("Microscope Info".into(), Tag::Group(mic)),
            (
                "DataBar".into(),
                Tag::Group(vec![
                    ("Acquisition Date".into(), Tag::U16Str("11/24/2026".into())),
                    ("Acquisition Time".into(), Tag::Str("10:42:00".into())),
                ]),
            ),
            (
                "Types".into(),
                Tag::Group(vec![
                    ("short".into(), Tag::Num(2, -3.0)),
                    ("long".into(), Tag::Num(3, -70000.0)),
                    ("ushort".into(), Tag::Num(4, 65000.0)),
                    ("ulong".into(), Tag::Num(5, 4e9)),
                    ("bool".into(), Tag::Num(8, 1.0)),
                    ("char".into(), Tag::Num(9, -5.0)),
                    ("octet".into(), Tag::Num(10, 200.0)),
                    ("i64".into(), Tag::Num(11, -1e12)),
                    ("u64".into(), Tag::Num(12, 1e12)),
                    ("struct".into(), Tag::Struct(vec![(6, 1.5), (7, -2.25)])),
                ]),
            ),
        ]);
        list.push((
            String::new(),
            Tag::Group(vec![
                (
                    "ImageData".into(),
                    Tag::Group(vec![
                        (
                            "Calibrations".into(),
                            Tag::Group(vec![(
                                "Dimension".into(),
                                Tag::Group((0..im.dims.len()).map(cal).collect()),
                            )]),
                        ),
                        ("Data".into(), im.data.clone()),
                        ("DataType".into(), Tag::Num(5, f64::from(im.data_type))),
                        (
                            "Dimensions".into(),
                            Tag::Group(im.dims.iter().map(|&n| dim(n)).collect()),
                        ),
                    ]),
                ),
                ("ImageTags".into(), tags),
                ("Name".into(), Tag::U16Str(im.name.clone())),
            ]),
        ));
    }
    let root = vec![
        (
            "ApplicationBounds".into(),
            Tag::Array(
                3,
                [0i32, 0, 1024, 1024]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
        ),
        ("ImageList".into(), Tag::Group(list)),
    ];
    let mut body = Vec::new();
    w.group(&mut body, &root);
    body.extend_from_slice(&[0u8; 8]);
    let mut out = version.to_be_bytes().to_vec();
    w.len(&mut out, body.len() as u64);
    out.extend_from_slice(&u32::from(little_endian).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Bytes of a TIA SER file of 2-D elements: `frames` arrays of `dtype_code`
/// (SER codes 1–10) with `nx × ny` elements each, given as little-endian
/// bytes, pixel size `delta_m` (m); `wide` = version 0x0220 (64-bit
/// offsets), else 0x0210 (32-bit). One series dimension (the frame number).
#[must_use]
pub fn ser_file(
    dtype_code: u16,
    nx: u32,
    ny: u32,
    frames: &[Vec<u8>],
    delta_m: f64,
    wide: bool,
) -> Vec<u8> {
    let n = frames.len() as u32;
    ser_series_file(
        dtype_code,
        (nx, ny),
        frames,
        delta_m,
        wide,
        &[SerDim {
            size: n,
            delta: 1.0,
            description: "Number".into(),
            units: String::new(),
        }],
        n,
    )
}

/// One series dimension of a test SER file.
#[derive(Debug, Clone)]
pub struct SerDim {
    /// Number of elements along it.
    pub size: u32,
    /// Calibration delta per element.
    pub delta: f64,
    /// Description (`Number`, `Position`, …).
    pub description: String,
    /// Unit string (`""`, `meters`, …).
    pub units: String,
}

/// Bytes of a TIA SER file with the given series dimensions (the first
/// varies fastest) and `total` elements announced, of which `frames` are
/// valid (an acquisition stopped early has fewer valid than total).
/// Elements as in [`ser_file`], `(nx, ny)` each, calibration delta
/// `delta` (m, or 1/m for a diffraction pattern).
#[must_use]
pub fn ser_series_file(
    dtype_code: u16,
    (nx, ny): (u32, u32),
    frames: &[Vec<u8>],
    delta: f64,
    wide: bool,
    dims: &[SerDim],
    total: u32,
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0x4949u16.to_le_bytes());
    out.extend_from_slice(&0x0197u16.to_le_bytes());
    out.extend_from_slice(&(if wide { 0x0220u16 } else { 0x0210 }).to_le_bytes());
    out.extend_from_slice(&0x4122u32.to_le_bytes());
    out.extend_from_slice(&0x4152u32.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    let offsets_at_pos = out.len();
    if wide {
        out.extend_from_slice(&0u64.to_le_bytes());
    } else {
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
    for d in dims {
        out.extend_from_slice(&d.size.to_le_bytes());
        out.extend_from_slice(&0f64.to_le_bytes());
        out.extend_from_slice(&d.delta.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        for s in [&d.description, &d.units] {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    let mut data_offsets = Vec::new();
    for f in frames {
        data_offsets.push(out.len() as u64);
        for _ in 0..2 {
            out.extend_from_slice(&0f64.to_le_bytes());
            out.extend_from_slice(&delta.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
        }
        out.extend_from_slice(&dtype_code.to_le_bytes());
        out.extend_from_slice(&nx.to_le_bytes());
        out.extend_from_slice(&ny.to_le_bytes());
        out.extend_from_slice(f);
    }
    let at = out.len() as u64;
    // `total` data offsets (0 for elements never acquired), then `total`
    // tag offsets (no tags: 0).
    let unused = (total as usize).saturating_sub(frames.len()) + total as usize;
    for o in data_offsets.iter().chain(std::iter::repeat_n(&0, unused)) {
        if wide {
            out.extend_from_slice(&o.to_le_bytes());
        } else {
            out.extend_from_slice(&(*o as u32).to_le_bytes());
        }
    }
    if wide {
        out[offsets_at_pos..offsets_at_pos + 8].copy_from_slice(&at.to_le_bytes());
    } else {
        out[offsets_at_pos..offsets_at_pos + 4].copy_from_slice(&(at as u32).to_le_bytes());
    }
    out
}

/// Bytes of an EMI file: some binary preamble, then the `<ObjectInfo>` XML.
#[must_use]
pub fn emi_file(voltage_v: f64, magnification: f64) -> Vec<u8> {
    let mut out = vec![0x49, 0x49, 0x01, 0x02, 0x00, 0xff, 0x10, 0x00];
    out.extend_from_slice(
        format!(
            "<ObjectInfo><ExperimentalConditions><MicroscopeConditions><AcceleratingVoltage>{voltage_v}</AcceleratingVoltage><Magnification>{magnification}</Magnification></MicroscopeConditions></ExperimentalConditions><DetectorName>HAADF</DetectorName><AcquireDate>Tue Nov 24 10:42:00 2026</AcquireDate></ObjectInfo>"
        )
        .as_bytes(),
    );
    out.extend_from_slice(&[0u8; 16]);
    out
}

/// Bytes of an MRC file: `mode`, byte order, `dims` = (nz, ny, nx), cell
/// length X `cell_x` (Å, over MX = nx), an IMOD stamp with `imod_flags`
/// when given, and the stored `payload` (already in the file's byte order).
#[must_use]
pub fn mrc_file(
    mode: i32,
    big: bool,
    dims: (usize, usize, usize),
    cell_x: f32,
    imod_flags: Option<i32>,
    payload: &[u8],
) -> Vec<u8> {
    let mut h = vec![0u8; 1024];
    let mut put = |i: usize, le: [u8; 4]| {
        let mut b = le;
        if big {
            b.reverse();
        }
        h[4 * i..4 * i + 4].copy_from_slice(&b);
    };
    put(0, (dims.2 as i32).to_le_bytes());
    put(1, (dims.1 as i32).to_le_bytes());
    put(2, (dims.0 as i32).to_le_bytes());
    put(3, mode.to_le_bytes());
    put(7, (dims.2 as i32).to_le_bytes());
    put(8, (dims.1 as i32).to_le_bytes());
    put(9, (dims.0 as i32).to_le_bytes());
    put(10, cell_x.to_le_bytes());
    if let Some(flags) = imod_flags {
        put(38, 1_146_047_817i32.to_le_bytes());
        put(39, flags.to_le_bytes());
    }
    h[208..212].copy_from_slice(b"MAP ");
    h[212..214].copy_from_slice(if big { &[0x11, 0x11] } else { &[0x44, 0x44] });
    h.extend_from_slice(payload);
    h
}

/// One detector image of a test Velox EMD file.
#[derive(Debug, Clone)]
pub struct VeloxImage {
    /// `BinaryResult.Detector`.
    pub detector: String,
    /// Stored shape (y, x, frame).
    pub shape: [usize; 3],
    /// The HDF5 element type.
    pub datatype: rust_hdf5::DatatypeMessage,
    /// Stored element bytes in (y, x, frame) order.
    pub raw: Vec<u8>,
    /// Chunked by frame with shuffle + deflate (as Velox writes), or contiguous.
    pub chunked: bool,
}

/// The HDF5 compound Velox uses for complex images (e.g. DPC): members
/// `realFloat` and `imagFloat`, `part` (4 or 8) bytes each, little-endian.
#[must_use]
pub fn velox_complex_type(part: u32) -> rust_hdf5::DatatypeMessage {
    use rust_hdf5::format::messages::datatype::CompoundMember;
    let f = if part == 4 {
        rust_hdf5::DatatypeMessage::f32_type()
    } else {
        rust_hdf5::DatatypeMessage::f64_type()
    };
    rust_hdf5::DatatypeMessage::compound(
        2 * part,
        vec![
            CompoundMember {
                name: "realFloat".into(),
                offset: 0,
                datatype: f.clone(),
            },
            CompoundMember {
                name: "imagFloat".into(),
                offset: part,
                datatype: f,
            },
        ],
    )
}

/// Write a Velox EMD file with `images` under `Data/Image/<k:032x>`, each
/// with a JSON `Metadata` (pixel 0.2 Å, 300 kV, 18 mrad).
///
/// # Errors
/// HDF5 write errors, as text.
pub fn velox_file(path: &std::path::Path, images: &[VeloxImage]) -> Result<(), String> {
    let e = |e: rust_hdf5::Hdf5Error| e.to_string();
    let f = rust_hdf5::H5File::create(path).map_err(e)?;
    let img = f
        .create_group("Data")
        .and_then(|g| g.create_group("Image"))
        .map_err(e)?;
    for (k, im) in images.iter().enumerate() {
        let g = img.create_group(&format!("{k:032x}")).map_err(e)?;
        let [ny, nx, nf] = im.shape;
        let b = g
            .new_dataset::<u8>()
            .datatype(im.datatype.clone())
            .shape([ny, nx, nf]);
        let b = if im.chunked {
            b.chunk(&[ny, nx, 1]).shuffle_deflate(4)
        } else {
            b
        };
        b.create("Data")
            .map_err(e)?
            .write_raw_bytes(&im.raw)
            .map_err(e)?;
        let json = format!(
            r#"{{"BinaryResult":{{"Detector":"{}","PixelSize":{{"width":"2e-11","height":"2e-11"}},"PixelUnitX":"m","PixelUnitY":"m"}},"Optics":{{"AccelerationVoltage":"300000","BeamConvergence":"0.018"}}}}"#,
            im.detector
        );
        let m: Vec<u8> = json.bytes().chain([0u8; 8]).collect();
        g.new_dataset::<u8>()
            .shape([m.len(), 1])
            .create("Metadata")
            .map_err(e)?
            .write_raw(&m)
            .map_err(e)?;
    }
    f.close().map_err(e)
}

/// The EMI metadata parser (`qdscope::io::emi_metadata`, hidden from the
/// API docs), for tests.
pub fn emi_metadata_of(bytes: &[u8]) -> std::collections::BTreeMap<String, String> {
    qdscope::io::emi_metadata(bytes)
}

/// A Berkeley EMD dimension vector `dim{k}` in group `g`: `n` values
/// `step · i`, with string attributes `attrs` (`units`, `name`, …).
pub fn berkeley_dim(g: &rust_hdf5::H5Group, k: usize, n: usize, step: f64, attrs: &[(&str, &str)]) {
    use rust_hdf5::types::VarLenUnicode;
    let d: Vec<f64> = (0..n).map(|i| step * i as f64).collect();
    let ds = g
        .new_dataset::<f64>()
        .shape([n])
        .create(&format!("dim{k}"))
        .unwrap();
    ds.write_raw(&d).unwrap();
    for (a, val) in attrs {
        ds.new_attr::<VarLenUnicode>()
            .shape(())
            .create(a)
            .unwrap()
            .write_scalar(&VarLenUnicode((*val).to_string()))
            .unwrap();
    }
}
