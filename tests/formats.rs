//! Microscope file readers (DM3/DM4, Velox and Berkeley EMD, TIA SER/EMI)
//! against files written from the format specifications
//! (`tests/support/testfiles.rs`, and rust-hdf5 for the HDF5 layouts):
//! every data type and byte order claimed, calibration and metadata,
//! the CLI (`inspect`, `convert`, `--signal`, metadata into prepare.json),
//! bad input, and a mutation test (truncations and byte flips never panic).
mod common;
use common::{fail, qdscope, s};
use std::fs;
use std::path::{Path, PathBuf};

use qdscope::io::signal::{AxisKind, Dtype};
#[path = "support/testfiles.rs"]
mod testfiles;

use qdscope::io::{read_npy, read_signals, read_tiff};
use rand::{Rng, SeedableRng};
use rust_hdf5::H5File;
use testfiles::{dm_file, emi_file, ser_file, DmImage, Tag};

/// Pixel values 0, 1, …, 96, 0, … (exact in every type).
fn ramp(n: usize) -> Vec<f64> {
    (0..n).map(|i| (i % 97) as f64).collect()
}

/// (DM DataType, array tag, expected dtype) for `n` pixels of the ramp.
fn dm_data(code: u32, n: usize) -> (Tag, Dtype) {
    let v = ramp(n);
    let b = |f: &dyn Fn(f64) -> Vec<u8>| v.iter().flat_map(|x| f(*x)).collect::<Vec<u8>>();
    match code {
        1 => (
            Tag::Array(2, b(&|x| (x as i16).to_le_bytes().to_vec())),
            Dtype::I16,
        ),
        2 => (
            Tag::Array(6, b(&|x| (x as f32).to_le_bytes().to_vec())),
            Dtype::F32,
        ),
        3 => (
            Tag::StructArray(
                vec![6, 6],
                b(&|x| [(x as f32).to_le_bytes(), 0f32.to_le_bytes()].concat()),
            ),
            Dtype::C64,
        ),
        6 => (Tag::Array(10, b(&|x| vec![x as u8])), Dtype::U8),
        7 => (
            Tag::Array(3, b(&|x| (x as i32).to_le_bytes().to_vec())),
            Dtype::I32,
        ),
        8 => (
            Tag::Array(
                5,
                b(&|x| {
                    u32::from_le_bytes([x as u8, x as u8, x as u8, 255])
                        .to_le_bytes()
                        .to_vec()
                }),
            ),
            Dtype::Rgba8,
        ),
        9 => (Tag::Array(9, b(&|x| vec![(x as i8) as u8])), Dtype::I8),
        10 => (
            Tag::Array(4, b(&|x| (x as u16).to_le_bytes().to_vec())),
            Dtype::U16,
        ),
        11 => (
            Tag::Array(5, b(&|x| (x as u32).to_le_bytes().to_vec())),
            Dtype::U32,
        ),
        12 => (Tag::Array(7, b(&|x| x.to_le_bytes().to_vec())), Dtype::F64),
        13 => (
            Tag::StructArray(
                vec![7, 7],
                b(&|x| [x.to_le_bytes(), 0f64.to_le_bytes()].concat()),
            ),
            Dtype::C128,
        ),
        14 => (Tag::Array(8, b(&|x| vec![u8::from(x > 0.0)])), Dtype::Bool),
        39 => (
            Tag::Array(11, b(&|x| (x as i64).to_le_bytes().to_vec())),
            Dtype::I64,
        ),
        40 => (
            Tag::Array(12, b(&|x| (x as u64).to_le_bytes().to_vec())),
            Dtype::U64,
        ),
        _ => unreachable!(),
    }
}

fn dm_image(code: u32, dims: &[usize]) -> DmImage {
    let n = dims.iter().product();
    DmImage {
        name: format!("HAADF {code}"),
        data_type: code,
        dims: dims.to_vec(),
        data: dm_data(code, n).0,
        scale: (0.02, "nm".into()),
        voltage_v: Some(300_000.0),
    }
}

#[test]
fn dm3_and_dm4_every_type_both_byte_orders() {
    let tmp = tempfile::tempdir().unwrap();
    let codes = [1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 39, 40];
    for version in [3, 4] {
        for le in [true, false] {
            for &code in &codes {
                let (nx, ny) = (7, 5);
                let p = tmp.path().join(format!("t{version}{le}{code}.dm{version}"));
                fs::write(&p, dm_file(version, le, &[dm_image(code, &[nx, ny])])).unwrap();
                let fs_ = read_signals(&p).unwrap_or_else(|e| panic!("{version} {le} {code}: {e}"));
                assert_eq!(fs_.format, format!("DM{version}"));
                assert_eq!(fs_.signals.len(), 1, "thumbnail skipped");
                assert!(fs_.warnings.0[0].contains("thumbnail"));
                let s = &fs_.signals[0];
                assert_eq!(s.dtype, dm_data(code, 1).1, "code {code}");
                assert_eq!(s.shape, vec![ny, nx]);
                let want: Vec<f32> = ramp(nx * ny)
                    .iter()
                    .map(|&x| match code {
                        14 => f32::from(u8::from(x > 0.0)),
                        _ => x as f32,
                    })
                    .collect();
                let got = s.to_f32();
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() < 1e-3,
                        "DM{version} le={le} code {code}: {g} vs {w}"
                    );
                }
                assert!((s.pixel_size_angstrom().unwrap() - 0.2).abs() < 1e-6);
                assert_eq!(s.acquisition.high_tension_kv, Some(300.0));
                assert_eq!(s.acquisition.convergence_mrad, Some(18.0));
                assert_eq!(s.acquisition.magnification, Some(2.55e6));
                assert_eq!(s.acquisition.date.as_deref(), Some("11/24/2026 10:42:00"));
                assert_eq!(s.title, format!("HAADF {code}"));
                assert_eq!(s.metadata["Types.i64"], "-1000000000000");
                assert_eq!(s.metadata["Types.ulong"], "4000000000");
                assert_eq!(s.metadata["Types.char"], "-5");
                assert_eq!(s.metadata["Types.struct"], "[1.5, -2.25]");
            }
            // A 3-D stack: DM (x, y, z) → NumPy (z, y, x).
            let p = tmp.path().join(format!("stack{version}{le}.dm{version}"));
            fs::write(&p, dm_file(version, le, &[dm_image(10, &[6, 4, 3])])).unwrap();
            let s = &read_signals(&p).unwrap().signals[0];
            assert_eq!(s.shape, vec![3, 4, 6]);
            let st = s.to_stack(&p).unwrap();
            assert_eq!(st.data.dim(), (3, 4, 6));
            assert_eq!(st.data[[1, 0, 0]], 24.0);
        }
    }
}

/// DM packed complex (DataType 5): the transform of a real 8 × 8 image,
/// packed in the layout of Boothroyd's notes, unpacks to the full centred
/// DFT (computed directly here) within 1e-4 of its largest value; both
/// byte orders and DM3/DM4. A non-square packed image is a clear error.
#[test]
fn dm_packed_complex_unpacks_to_the_centred_dft() {
    let m = 8;
    let n = m / 2;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let img: Vec<f64> = (0..m * m).map(|_| rng.gen_range(-1.0..3.0)).collect();
    // Centred DFT: row r ↔ k_y = r − N, column c ↔ k_x = c − N.
    let mut full = vec![(0.0f64, 0.0f64); m * m];
    for r in 0..m {
        for c in 0..m {
            let (ky, kx) = (r as f64 - n as f64, c as f64 - n as f64);
            let mut acc = (0.0, 0.0);
            for y in 0..m {
                for x in 0..m {
                    let ph =
                        -2.0 * std::f64::consts::PI * (kx * x as f64 + ky * y as f64) / m as f64;
                    acc.0 += img[y * m + x] * ph.cos();
                    acc.1 += img[y * m + x] * ph.sin();
                }
            }
            full[r * m + c] = acc;
        }
    }
    let f = |r: usize, c: usize| full[r * m + c];
    let mut packed = vec![0f32; m * m];
    {
        let mut pk = |r: usize, s: usize, v: f64| packed[r * m + s] = v as f32;
        pk(0, 0, f(n, 0).0);
        pk(0, 1, f(0, 0).0);
        pk(n, 0, f(n, n).0);
        pk(n, 1, f(0, n).0);
        for r in 0..m {
            for k in 1..n {
                pk(r, 2 * k, f(r, n + k).0);
                pk(r, 2 * k + 1, f(r, n + k).1);
            }
        }
        for j in 1..n {
            pk(j, 0, f(n + j, 0).0);
            pk(j, 1, f(n + j, 0).1);
            pk(n + j, 0, f(n + j, n).0);
            pk(n + j, 1, f(n + j, n).1);
        }
    }
    let bytes: Vec<u8> = packed.iter().flat_map(|v| v.to_le_bytes()).collect();
    let peak = full.iter().map(|v| v.0.hypot(v.1)).fold(0.0, f64::max);
    let tmp = tempfile::tempdir().unwrap();
    for version in [3, 4] {
        for le in [true, false] {
            let mut im = dm_image(2, &[m, m]);
            im.data_type = 5;
            im.data = Tag::Array(6, bytes.clone());
            let p = tmp.path().join(format!("fft{version}{le}.dm{version}"));
            fs::write(&p, dm_file(version, le, &[im])).unwrap();
            let s = &read_signals(&p).unwrap().signals[0];
            assert_eq!(s.dtype, Dtype::C64);
            assert_eq!(s.shape, vec![m, m]);
            for (i, w) in full.iter().enumerate() {
                let o = 8 * i;
                let re = f32::from_le_bytes(s.bytes[o..o + 4].try_into().unwrap());
                let im = f32::from_le_bytes(s.bytes[o + 4..o + 8].try_into().unwrap());
                let err = (f64::from(re) - w.0).hypot(f64::from(im) - w.1);
                assert!(
                    err < 1e-4 * peak,
                    "DM{version} le={le} pixel {i}: ({re}, {im}) vs {w:?}"
                );
            }
        }
    }
    let mut im = dm_image(2, &[8, 6]);
    im.data_type = 5;
    im.data = Tag::Array(6, vec![0u8; 4 * 48]);
    let p = tmp.path().join("rect.dm4");
    fs::write(&p, dm_file(4, true, &[im])).unwrap();
    fail(&["inspect", s(&p)], "square image of even size");
}

fn velox(path: &Path, nf: usize) {
    let (ny, nx) = (16, 20);
    let f = H5File::create(path).unwrap();
    let img = f
        .create_group("Data")
        .unwrap()
        .create_group("Image")
        .unwrap();
    for (k, det) in ["HAADF", "DF4-A"].iter().enumerate() {
        let g = img.create_group(&format!("{k:032x}")).unwrap();
        // (y, x, frame): value = 1000·frame + 20·y + x + k.
        let mut v = Vec::new();
        for y in 0..ny {
            for x in 0..nx {
                for fr in 0..nf {
                    v.push((1000 * fr + 20 * y + x + k) as u16);
                }
            }
        }
        let ds = g
            .new_dataset::<u16>()
            .shape([ny, nx, nf])
            .chunk(&[ny, nx, 1])
            .shuffle_deflate(4)
            .create("Data")
            .unwrap();
        ds.write_raw(&v).unwrap();
        let json = format!(
            r#"{{"BinaryResult":{{"Detector":"{det}","PixelSize":{{"width":"2e-11","height":"2e-11"}},"PixelUnitX":"m","PixelUnitY":"m"}},"Optics":{{"AccelerationVoltage":"300000","BeamConvergence":"0.018"}},"Scan":{{"DwellTime":"2e-6"}},"Detectors":{{"Detector-0":{{"DetectorName":"HAADF","CollectionAngleRange":{{"begin":"0.035","end":"0.19"}}}},"Detector-1":{{"DetectorName":"DF4-A","CollectionAngleRange":{{"begin":"0.01","end":"0.03"}}}}}},"Acquisition":{{"AcquisitionStartDatetime":{{"DateTime":"1795000000"}}}}}}"#
        );
        let len = json.len() + 20;
        let mut m = vec![0u8; len * nf];
        for fr in 0..nf {
            for (i, c) in json.bytes().enumerate() {
                m[i * nf + fr] = c;
            }
        }
        let md = g
            .new_dataset::<u8>()
            .shape([len, nf])
            .create("Metadata")
            .unwrap();
        md.write_raw(&m).unwrap();
    }
    f.close().unwrap();
}

fn berkeley(path: &Path) {
    let f = H5File::create(path).unwrap();
    f.set_attr_numeric("version_major", &0i32).unwrap();
    let g = f.create_group("data").unwrap().create_group("sim").unwrap();
    g.set_attr_numeric("emd_group_type", &1i32).unwrap();
    let (ny, nx) = (8, 10);
    let v: Vec<f32> = (0..ny * nx).map(|i| i as f32).collect();
    g.new_dataset::<f32>()
        .shape([ny, nx])
        .create("data")
        .unwrap()
        .write_raw(&v)
        .unwrap();
    for (k, n) in [(1, ny), (2, nx)] {
        let name = if k == 1 { "y" } else { "x" };
        testfiles::berkeley_dim(&g, k, n, 0.05, &[("name", name), ("units", "nm")]);
    }
    f.close().unwrap();
}

#[test]
fn velox_and_berkeley_emd() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("v.emd");
    velox(&p, 3);
    let fs_ = read_signals(&p).unwrap();
    assert_eq!(fs_.format, "Velox EMD");
    let titles: Vec<&str> = fs_.signals.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(titles, ["HAADF", "DF4-A"]);
    let s = &fs_.signals[0];
    assert_eq!((s.dtype, s.shape.clone()), (Dtype::U16, vec![3, 16, 20]));
    let st = s.to_stack(&p).unwrap();
    assert_eq!(st.data[[2, 5, 7]], (2000 + 100 + 7) as f32);
    assert!((s.pixel_size_angstrom().unwrap() - 0.2).abs() < 1e-9);
    let q = &s.acquisition;
    assert_eq!(q.high_tension_kv, Some(300.0));
    assert!((q.convergence_mrad.unwrap() - 18.0).abs() < 1e-9);
    let (lo, hi) = q.collection_mrad.unwrap();
    assert!((lo - 35.0).abs() < 1e-9 && (hi - 190.0).abs() < 1e-9);
    assert!((q.dwell_time_us.unwrap() - 2.0).abs() < 1e-9);
    let (lo, _) = fs_.signals[1].acquisition.collection_mrad.unwrap();
    assert!((lo - 10.0).abs() < 1e-9, "DF4-A's own collection angles");
    assert_eq!(fs_.signals[1].to_stack(&p).unwrap().data[[0, 0, 0]], 1.0);

    let b = tmp.path().join("b.emd");
    berkeley(&b);
    let fs_ = read_signals(&b).unwrap();
    assert_eq!(fs_.format, "Berkeley EMD");
    let s = &fs_.signals[0];
    assert_eq!(
        (s.title.as_str(), s.shape.clone(), s.dtype),
        ("sim", vec![8, 10], Dtype::F32)
    );
    assert_eq!(s.axes[1].kind, AxisKind::Length);
    assert!((s.pixel_size_angstrom().unwrap() - 0.5).abs() < 1e-9);
    assert_eq!(s.to_f32()[13], 13.0);
}

#[test]
fn tia_ser_with_and_without_emi() {
    let tmp = tempfile::tempdir().unwrap();
    let frames: Vec<Vec<u8>> = (0..3u16)
        .map(|f| {
            (0..12u16 * 9)
                .flat_map(|i| (i + 100 * f).to_le_bytes())
                .collect()
        })
        .collect();
    for wide in [true, false] {
        let d = tmp.path().join(format!("w{wide}"));
        fs::create_dir_all(&d).unwrap();
        let ser = d.join("scan_1.ser");
        fs::write(&ser, ser_file(2, 12, 9, &frames, 2e-11, wide)).unwrap();
        let fs_ = read_signals(&ser).unwrap();
        assert!(fs_.warnings.0[0].contains("scan.emi"), "{:?}", fs_.warnings);
        let s = &fs_.signals[0];
        assert_eq!((s.dtype, s.shape.clone()), (Dtype::U16, vec![3, 9, 12]));
        // Frame 1, top row, column 5 = the file's last row (rows bottom-up).
        assert_eq!(s.to_f32()[108 + 5], 100.0 + (8 * 12 + 5) as f32);
        assert!((s.pixel_size_angstrom().unwrap() - 0.2).abs() < 1e-9);
        assert_eq!(s.acquisition.high_tension_kv, None);
        fs::write(d.join("scan.emi"), emi_file(300_000.0, 2.55e6)).unwrap();
        let fs_ = read_signals(&ser).unwrap();
        assert!(fs_.warnings.is_empty());
        let s = &fs_.signals[0];
        assert_eq!(s.acquisition.high_tension_kv, Some(300.0));
        assert_eq!(s.acquisition.magnification, Some(2.55e6));
        assert_eq!(s.title, "HAADF");
    }
    // Every SER data type.
    for (code, size, dt) in [
        (1u16, 1, Dtype::U8),
        (3, 4, Dtype::U32),
        (4, 1, Dtype::I8),
        (5, 2, Dtype::I16),
        (6, 4, Dtype::I32),
        (7, 4, Dtype::F32),
        (8, 8, Dtype::F64),
        (9, 8, Dtype::C64),
        (10, 16, Dtype::C128),
    ] {
        let p = tmp.path().join(format!("c{code}.ser"));
        fs::write(
            &p,
            ser_file(code, 4, 2, &[vec![0u8; 8 * size]], 1e-10, true),
        )
        .unwrap();
        let s = &read_signals(&p).unwrap().signals[0];
        assert_eq!((s.dtype, s.shape.clone()), (dt, vec![2, 4]));
    }
}

#[test]
fn inspect_convert_and_metadata_into_prepare() {
    let tmp = tempfile::tempdir().unwrap();
    let dm = tmp.path().join("stack.dm4");
    // A 4-frame 64² u16 stack of a Gaussian lattice, so prepare has work.
    let (nx, ny, nf) = (64usize, 64, 4);
    let mut b = Vec::new();
    for _ in 0..nf {
        for y in 0..ny {
            for x in 0..nx {
                let (u, v) = ((x % 8) as f64 - 4.0, (y % 8) as f64 - 4.0);
                b.extend_from_slice(
                    &((100.0 + 900.0 * (-(u * u + v * v) / 4.0).exp()) as u16).to_le_bytes(),
                );
            }
        }
    }
    let img = DmImage {
        name: "HAADF".into(),
        data_type: 10,
        dims: vec![nx, ny, nf],
        data: Tag::Array(4, b),
        scale: (0.05, "nm".into()),
        voltage_v: Some(200_000.0),
    };
    fs::write(&dm, dm_file(4, true, &[img])).unwrap();
    let out = qdscope().args(["inspect", s(&dm)]).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("DM4, 1 signal(s)")
            && text.contains("[4, 64, 64]")
            && text.contains("200 kV"),
        "{text}"
    );
    let out = qdscope()
        .args(["inspect", s(&dm), "--json"])
        .assert()
        .success();
    let j: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(j["signals"][0]["dtype"], "u16");
    assert_eq!(
        j["signals"][0]["metadata"]["Microscope Info.Voltage"],
        "200000"
    );

    let npy = tmp.path().join("c/out.npy");
    qdscope()
        .args(["convert", s(&dm), "-o", s(&npy)])
        .assert()
        .success();
    let raw = fs::read(&npy).unwrap();
    assert!(String::from_utf8_lossy(&raw[..80]).contains("'descr': '<u2'"));
    assert_eq!(read_npy(&npy).unwrap().data.dim(), (4, 64, 64));
    let tif = tmp.path().join("c/out.tif");
    qdscope()
        .args(["convert", s(&dm), "-o", s(&tif)])
        .assert()
        .success();
    let t = read_tiff(&tif).unwrap();
    assert!((t.calibration.pixel_size_angstrom().unwrap() - 0.5).abs() < 1e-4);

    let pd = tmp.path().join("prep");
    qdscope()
        .args([
            "prepare",
            s(&dm),
            "-o",
            s(&pd),
            "--no-denoise",
            "--background-radius-px",
            "6",
        ])
        .assert()
        .success();
    let pj: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(pd.join("prepare.json")).unwrap()).unwrap();
    let src = &pj["parameter_sources"];
    assert_eq!(src["high_tension_kv"], "file");
    assert_eq!(src["convergence_mrad"], "file");
    assert_eq!(src["pixel_size_angstrom"], "file");
    assert_eq!(pj["parameters"]["microscope"]["high_tension_kv"], 200.0);
    let pd2 = tmp.path().join("prep2");
    qdscope()
        .args([
            "prepare",
            s(&dm),
            "-o",
            s(&pd2),
            "--no-denoise",
            "--background-radius-px",
            "6",
        ])
        .args(["--kv", "300", "--pixel-size-angstrom", "0.4"])
        .assert()
        .success();
    let pj: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(pd2.join("prepare.json")).unwrap()).unwrap();
    assert_eq!(pj["parameter_sources"]["high_tension_kv"], "flag");
    assert_eq!(pj["parameter_sources"]["pixel_size_angstrom"], "flag");
    assert_eq!(pj["parameters"]["microscope"]["high_tension_kv"], 300.0);

    // --signal on a two-detector Velox file.
    let v = tmp.path().join("v.emd");
    velox(&v, 2);
    fail(
        &["convert", s(&v), "-o", s(&tmp.path().join("x.npy"))],
        "several signals (0: HAADF, 1: DF4-A)",
    );
    fail(
        &[
            "convert",
            s(&v),
            "--signal",
            "BF",
            "-o",
            s(&tmp.path().join("x.npy")),
        ],
        "no signal 'BF'",
    );
    let x = tmp.path().join("df.npy");
    qdscope()
        .args(["convert", s(&v), "--signal", "df4-a", "-o", s(&x)])
        .assert()
        .success();
    assert_eq!(read_npy(&x).unwrap().data[[0, 0, 0]], 1.0);
    let x1 = tmp.path().join("df1.npy");
    qdscope()
        .args(["convert", s(&v), "--signal", "1", "-o", s(&x1)])
        .assert()
        .success();
    assert_eq!(fs::read(&x).unwrap(), fs::read(&x1).unwrap());
}

#[test]
fn bad_input_is_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.npy");
    // A text file named .dm4, an HDF5 file without an image group.
    let txt = tmp.path().join("notes.dm4");
    fs::write(&txt, "hello, not a DM file").unwrap();
    fail(&["inspect", s(&txt)], "not a DM4 file");
    let h = tmp.path().join("other.emd");
    {
        let f = H5File::create(&h).unwrap();
        f.create_group("Calibration").unwrap();
        f.close().unwrap();
    }
    fail(&["inspect", s(&h)], "without an EMD image group");
    // DM: a tag count pointing past the end, an unknown data type.
    let good = dm_file(3, true, &[dm_image(10, &[4, 4])]);
    let mut bad = good.clone();
    let n = bad.len();
    bad.truncate(n - 40);
    let p = tmp.path().join("trunc.dm3");
    fs::write(&p, &bad).unwrap();
    fail(&["convert", s(&p), "-o", s(&out)], "trunc.dm3");
    let mut bad = good.clone();
    // The first `%%%%` is followed by ninfo and the ApplicationBounds array type 20, elem 3.
    let at = good.windows(4).position(|w| w == b"%%%%").unwrap();
    bad[at + 8..at + 12].copy_from_slice(&99u32.to_be_bytes());
    let p = tmp.path().join("type.dm3");
    fs::write(&p, &bad).unwrap();
    fail(&["inspect", s(&p)], "unknown DM data type");
    let mut bad = good.clone();
    bad[at + 16..at + 20].copy_from_slice(&u32::MAX.to_be_bytes());
    let p = tmp.path().join("count.dm3");
    fs::write(&p, &bad).unwrap();
    fail(&["inspect", s(&p)], "exceed");
    // SER: offsets past the end.
    let mut ser = ser_file(2, 4, 4, &[vec![0u8; 32]], 1e-10, true);
    let n = ser.len();
    ser.truncate(n - 9);
    let p = tmp.path().join("cut_1.ser");
    fs::write(&p, &ser).unwrap();
    fail(&["inspect", s(&p)], "cut_1.ser");
    assert!(!out.exists());
}

fn fixtures(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for (version, le) in [(3, true), (4, false)] {
        let p = dir.join(format!("f{version}.dm{version}"));
        fs::write(
            &p,
            dm_file(
                version,
                le,
                &[dm_image(2, &[6, 5]), dm_image(3, &[4, 3, 2]), {
                    let mut im = dm_image(2, &[4, 4]);
                    im.data_type = 5;
                    im
                }],
            ),
        )
        .unwrap();
        v.push(p);
    }
    let p = dir.join("f_1.ser");
    fs::write(
        &p,
        ser_file(7, 5, 4, &[vec![1u8; 80], vec![2u8; 80]], 1e-10, true),
    )
    .unwrap();
    v.push(p);
    let p = dir.join("v.emd");
    velox(&p, 2);
    v.push(p);
    let p = dir.join("b.emd");
    berkeley(&p);
    v.push(p);
    v
}

/// Truncations at every byte boundary and random byte
/// flips: every reader returns an error or a valid image, never panics.
#[test]
fn truncations_and_byte_flips_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut outcomes = (0usize, 0usize);
    for f in fixtures(tmp.path()) {
        let bytes = fs::read(&f).unwrap();
        let ext = f.extension().unwrap().to_string_lossy().to_string();
        let target = tmp.path().join(format!("m.{ext}"));
        // Every byte boundary (so every section boundary) of the small
        // files (the DM and SER fixtures); about 2000 cuts of the larger
        // HDF5 ones (each cut opens the whole file: every byte would take
        // minutes, and tests/mutation.rs attacks their structure).
        let step = (bytes.len() / 2000).max(1);
        let mut cases: Vec<Vec<u8>> = (0..bytes.len())
            .step_by(step)
            .map(|n| bytes[..n].to_vec())
            .collect();
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..rng.gen_range(1..4) {
                let i = rng.gen_range(0..b.len());
                b[i] = rng.gen();
            }
            cases.push(b);
        }
        for c in cases {
            fs::write(&target, &c).unwrap();
            match read_signals(&target) {
                Ok(fs_) => {
                    for s in &fs_.signals {
                        let n: usize = s.shape.iter().product();
                        assert_eq!(
                            s.bytes.len(),
                            n * s.dtype.size(),
                            "{}: inconsistent signal",
                            f.display()
                        );
                    }
                    outcomes.0 += 1;
                }
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    outcomes.1 += 1;
                }
            }
        }
    }
    assert!(outcomes.1 > 0 && outcomes.0 > 0, "{outcomes:?}");
}
