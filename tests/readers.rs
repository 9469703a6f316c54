//! Microscope files as users have them (issue 20, items 1–3): Velox complex
//! (compound) images and unreadable signals, TIA opened by its `.emi`, MRC
//! in the stored dtype.

mod common;

use std::fs;
use std::path::Path;

use common::{fail, qdscope, s};
use qdscope::io::signal::AxisKind;
use qdscope::io::signal::{Dtype, FileSignals};
#[path = "support/testfiles.rs"]
mod testfiles;

use qdscope::io::{load_stack, read_npy, read_signals, read_stack};
use rust_hdf5::format::messages::datatype::CompoundMember;
use rust_hdf5::DatatypeMessage;
use testfiles::{
    dm_file, emi_file, mrc_file, ser_file, ser_series_file, velox_complex_type, velox_file,
    DmImage, SerDim, Tag, VeloxImage,
};

fn le_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn unreadable_line(fs_: &FileSignals, i: usize) -> String {
    fs_.signals[i].unreadable.clone().unwrap_or_default()
}

/// (y, x) = (3, 4), one frame: HAADF u16, DPC complex64 (Velox compound),
/// DPC64 complex128 chunked, a swapped compound (imag first), and a
/// 3-member compound nobody reads.
fn velox_with_complex(path: &Path) {
    let (ny, nx) = (3, 4);
    let n = ny * nx;
    let u16s: Vec<u8> = (0..n as u16).flat_map(|v| (v * 10).to_le_bytes()).collect();
    let c64: Vec<f32> = (0..n).flat_map(|i| [i as f32, -(i as f32) / 2.0]).collect();
    let c128: Vec<u8> = (0..n)
        .flat_map(|i| [3.0f64 * i as f64, 4.0 * i as f64])
        .flat_map(f64::to_le_bytes)
        .collect();
    let f32t = DatatypeMessage::f32_type();
    let member = |name: &str, offset: u32| CompoundMember {
        name: name.into(),
        offset,
        datatype: f32t.clone(),
    };
    let swapped =
        DatatypeMessage::compound(8, vec![member("imagFloat", 0), member("realFloat", 4)]);
    let triple =
        DatatypeMessage::compound(12, vec![member("x", 0), member("y", 4), member("z", 8)]);
    let im = |detector: &str, datatype: DatatypeMessage, raw: Vec<u8>, chunked: bool| VeloxImage {
        detector: detector.into(),
        shape: [ny, nx, 1],
        datatype,
        raw,
        chunked,
    };
    velox_file(
        path,
        &[
            im("HAADF", DatatypeMessage::u16_type(), u16s, true),
            im("DPC", velox_complex_type(4), le_f32(&c64), false),
            im("DPC64", velox_complex_type(8), c128, true),
            // Stored (imag, real): imag = −i, real = 2i.
            im(
                "Swapped",
                swapped,
                le_f32(
                    &(0..n)
                        .flat_map(|i| [-(i as f32), 2.0 * i as f32])
                        .collect::<Vec<_>>(),
                ),
                false,
            ),
            im("Vector", triple, vec![0u8; 12 * n], false),
        ],
    )
    .unwrap();
}

#[test]
fn velox_compound_complex_and_one_unreadable_signal() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("dpc.emd");
    velox_with_complex(&p);
    let fs_ = read_signals(&p).unwrap();
    let titles: Vec<&str> = fs_.signals.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(titles, ["HAADF", "DPC", "DPC64", "Swapped", "Vector"]);
    assert_eq!(fs_.signals[0].dtype, Dtype::U16);
    assert_eq!(fs_.signals[0].to_f32()[5], 50.0);
    let dpc = &fs_.signals[1];
    assert_eq!((dpc.dtype, dpc.shape.clone()), (Dtype::C64, vec![3, 4]));
    assert_eq!(&dpc.bytes[8 * 5..8 * 6], &le_f32(&[5.0, -2.5])[..]);
    assert!((dpc.pixel_size_angstrom().unwrap() - 0.2).abs() < 1e-9);
    let d64 = &fs_.signals[2];
    assert_eq!(d64.dtype, Dtype::C128);
    assert_eq!(d64.to_f32()[2], 10.0, "|3·2 + 4·2 i| = 10");
    let sw = &fs_.signals[3];
    assert_eq!(&sw.bytes[8 * 3..8 * 4], &le_f32(&[6.0, -3.0])[..]);
    // The 3-member compound: listed, one line, in words.
    let r = unreadable_line(&fs_, 4);
    assert!(
        r.contains("compound of 3 member(s)") && r.contains("4-byte float"),
        "{r}"
    );
    assert!(!r.contains('\n') && !r.contains("Compound {") && !r.contains("FloatingPoint"));
    assert!(fs_.signals[4].bytes.is_empty() && fs_.signals[4].shape == [0]);

    // Complex into the pipeline: the modulus, with a warning naming it.
    let l = load_stack(&p, Some("DPC")).unwrap();
    assert_eq!(l.stack.data[[0, 0, 2]], (4.0f32 + 1.0).sqrt());
    assert!(l
        .warnings
        .0
        .iter()
        .any(|w| w.contains("complex64") && w.contains("modulus")));
    let e = load_stack(&p, Some("4")).unwrap_err().to_string();
    assert!(
        e.contains("signal 4 'Vector' is unreadable") && !e.contains('\n'),
        "{e}"
    );

    // CLI: inspect lists all five, convert keeps complex64, the unreadable one is a one-line error.
    let out = qdscope().args(["inspect", s(&p)]).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("5 signal(s)") && text.contains("[4] Vector  unreadable: "),
        "{text}"
    );
    assert!(text.contains("[1] DPC  shape [3, 4]  C64"), "{text}");
    let out = qdscope()
        .args(["inspect", "--json", s(&p)])
        .assert()
        .success();
    let j: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(j["signals"][1]["dtype"], "c64");
    assert!(j["signals"][4]["unreadable"].is_string());
    assert!(j["signals"][0].get("unreadable").is_none());
    let npy = tmp.path().join("dpc.npy");
    qdscope()
        .args(["convert", s(&p), "--signal", "DPC", "-o", s(&npy)])
        .assert()
        .success();
    let raw = fs::read(&npy).unwrap();
    assert!(String::from_utf8_lossy(&raw[..80]).contains("'descr': '<c8'"));
    assert_eq!(&raw[raw.len() - 8..], &le_f32(&[11.0, -5.5])[..]);
    fail(
        &["convert", s(&p), "--signal", "Vector", "-o", s(&npy)],
        "unreadable: image data of HDF5 type compound of 3 member(s)",
    );
}

#[test]
fn velox_with_every_signal_unreadable_is_one_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.emd");
    velox_file(
        &p,
        &[VeloxImage {
            detector: "Text".into(),
            shape: [2, 2, 1],
            datatype: DatatypeMessage::FixedString {
                size: 4,
                padding: 0,
                charset: 0,
            },
            raw: vec![b'a'; 16],
            chunked: false,
        }],
    )
    .unwrap();
    fail(
        &["inspect", s(&p)],
        "signal 0 'Text' is unreadable: image data of HDF5 type string",
    );
}

fn u16_frame(nx: usize, ny: usize, base: u16) -> Vec<u8> {
    (0..(nx * ny) as u16)
        .flat_map(|i| (i + base).to_le_bytes())
        .collect()
}

#[test]
fn tia_emi_reads_every_sibling_ser() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fs::write(
        d.join("scan_1.ser"),
        ser_file(2, 4, 3, &[u16_frame(4, 3, 0)], 2e-11, true),
    )
    .unwrap();
    let f32s: Vec<u8> = (0..6)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    fs::write(
        d.join("scan_2.ser"),
        ser_file(7, 3, 2, &[f32s.clone(), f32s], 1e-10, false),
    )
    .unwrap();
    let mut cut = ser_file(2, 4, 3, &[u16_frame(4, 3, 0)], 2e-11, true);
    cut.truncate(cut.len() - 20);
    fs::write(d.join("scan_3.ser"), cut).unwrap();
    fs::write(
        d.join("scan_10.ser"),
        ser_file(1, 2, 2, &[vec![1, 2, 3, 4]], 2e-11, true),
    )
    .unwrap();
    // Not siblings: another stem, a non-numeric suffix.
    fs::write(
        d.join("other_1.ser"),
        ser_file(1, 2, 2, &[vec![0; 4]], 1e-10, true),
    )
    .unwrap();
    fs::write(d.join("scan_a.ser"), b"junk").unwrap();
    let emi = d.join("scan.emi");
    fs::write(&emi, emi_file(300_000.0, 2.55e6)).unwrap();

    let fs_ = read_signals(&emi).unwrap();
    assert_eq!(fs_.format, "TIA EMI");
    let titles: Vec<&str> = fs_.signals.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(titles, ["scan_1", "scan_2", "scan_3", "scan_10"]);
    let s1 = &fs_.signals[0];
    assert_eq!((s1.dtype, s1.shape.clone()), (Dtype::U16, vec![3, 4]));
    assert_eq!(s1.to_f32()[7], 7.0);
    assert!((s1.pixel_size_angstrom().unwrap() - 0.2).abs() < 1e-9);
    assert_eq!(s1.acquisition.high_tension_kv, Some(300.0));
    assert_eq!(s1.acquisition.magnification, Some(2.55e6));
    let s2 = &fs_.signals[1];
    assert_eq!((s2.dtype, s2.shape.clone()), (Dtype::F32, vec![2, 2, 3]));
    assert_eq!(s2.acquisition.high_tension_kv, Some(300.0));
    let r = unreadable_line(&fs_, 2);
    assert!(
        r.contains("scan_3.ser") && r.contains("past the end") && !r.contains('\n'),
        "{r}"
    );
    // Rows come top row first (the file stores them bottom-up).
    assert_eq!(fs_.signals[3].to_f32(), vec![3.0, 4.0, 1.0, 2.0]);

    // The pipeline and the CLI take the .emi.
    let l = load_stack(&emi, Some("scan_2")).unwrap();
    assert_eq!(l.stack.data.dim(), (2, 2, 3));
    assert_eq!(l.acquisition.high_tension_kv, Some(300.0));
    let out = qdscope().args(["inspect", s(&emi)]).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("TIA EMI, 4 signal(s)") && text.contains("[2] scan_3  unreadable:"),
        "{text}"
    );
    // A .ser alone still reads, with the EMI's metadata.
    let one = read_signals(&d.join("scan_1.ser")).unwrap();
    assert_eq!((one.format.as_str(), one.signals.len()), ("TIA SER", 1));
    assert_eq!(one.signals[0].title, "HAADF");
    // An EMI without its .ser files.
    let lone = d.join("lonely.emi");
    fs::write(&lone, emi_file(200_000.0, 1e6)).unwrap();
    fail(&["inspect", s(&lone)], "no lonely_1.ser next to it");
}

#[test]
fn emi_metadata_leaves_and_labelled_values() {
    let xml = b"\x00\x01junk<ObjectInfo><ExperimentalDescription><Root>\
<DataItem><Label>High tension</Label><Value>200</Value><Unit>kV</Unit></DataItem>\
<DataItem><Label>Magnification</Label><Value>910000</Value><Unit>x</Unit></DataItem>\
<DataItem><Label>Mode</Label><Value>STEM nP SA Zoom Diffraction</Value><Unit></Unit></DataItem>\
</Root></ExperimentalDescription><Unclosed><Bad>x</Wrong><DetectorName>BF</DetectorName>\
\xff\xfe</ObjectInfo>\x00";
    let m = testfiles::emi_metadata_of(xml);
    assert_eq!(m.get("High tension").map(String::as_str), Some("200"));
    assert_eq!(m.get("High tension unit").map(String::as_str), Some("kV"));
    assert_eq!(m.get("Magnification").map(String::as_str), Some("910000"));
    assert_eq!(
        m.get("Mode").map(String::as_str),
        Some("STEM nP SA Zoom Diffraction")
    );
    assert_eq!(m.get("DetectorName").map(String::as_str), Some("BF"));
    assert!(!m.contains_key("Bad") && !m.contains_key("Unclosed"));
    // A labelled high tension becomes the acquisition's kV.
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("a.emi"), xml).unwrap();
    fs::write(
        tmp.path().join("a_1.ser"),
        ser_file(1, 2, 2, &[vec![0; 4]], 1e-10, true),
    )
    .unwrap();
    let fs_ = read_signals(&tmp.path().join("a.emi")).unwrap();
    assert_eq!(fs_.signals[0].acquisition.high_tension_kv, Some(200.0));
    assert_eq!(fs_.signals[0].acquisition.magnification, Some(910_000.0));
    // Adversarial text: linear, bounded.
    let mut soup = b"<ObjectInfo>".to_vec();
    soup.extend(std::iter::repeat_n(b"<a>".as_slice(), 200_000).flatten());
    assert!(testfiles::emi_metadata_of(&soup).is_empty());
}

/// An EMI with one `<ObjectInfo>` per data object: `NAME_N.ser` takes the
/// N-th (its detector, its high tension), by the EMI and alone; a SER whose
/// number has no block takes the first. Axis offsets are those of the
/// top-left pixel of the returned (top-row-first) image.
#[test]
fn emi_blocks_belong_to_their_ser_and_offsets_are_top_left() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let block = |det: &str, kv: u32| {
        format!(
            "<ObjectInfo><DetectorName>{det}</DetectorName><ExperimentalDescription><Root>\
<DataItem><Label>High tension</Label><Value>{kv}</Value><Unit>kV</Unit></DataItem>\
</Root></ExperimentalDescription></ObjectInfo>"
        )
    };
    let mut emi = vec![0x49u8, 0x49, 0, 0];
    emi.extend(block("HAADF", 300).as_bytes());
    emi.extend([0u8, 7, 9]);
    emi.extend(block("BF", 200).as_bytes());
    fs::write(d.join("acq.emi"), &emi).unwrap();
    for n in [1, 2, 3] {
        fs::write(
            d.join(format!("acq_{n}.ser")),
            ser_file(2, 3, 2, &[u16_frame(3, 2, 0)], 2e-11, n == 2),
        )
        .unwrap();
    }
    let fs_ = read_signals(&d.join("acq.emi")).unwrap();
    let got: Vec<(Option<&str>, Option<f64>)> = fs_
        .signals
        .iter()
        .map(|s| {
            (
                s.metadata.get("DetectorName").map(String::as_str),
                s.acquisition.high_tension_kv,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (Some("HAADF"), Some(300.0)),
            (Some("BF"), Some(200.0)),
            (Some("HAADF"), Some(300.0)),
        ]
    );
    let alone = read_signals(&d.join("acq_2.ser")).unwrap();
    assert_eq!(alone.signals[0].title, "BF");
    assert_eq!(alone.signals[0].acquisition.high_tension_kv, Some(200.0));
    // Offsets: the file's element calibration is 0 at its first stored
    // (bottom) row; the returned top row is one row (0.2 Å) above it, on a
    // y axis that points down.
    let s_ = &alone.signals[0];
    let (y, x) = (&s_.axes[0], &s_.axes[1]);
    assert!((x.offset - 0.0).abs() < 1e-12, "{}", x.offset);
    assert!((y.offset + 0.2).abs() < 1e-9, "{}", y.offset);
    assert!((y.scale - 0.2).abs() < 1e-9 && (x.scale - 0.2).abs() < 1e-9);
}

/// Stored little-endian bytes of `vals` for MRC `mode` (values chosen
/// exact in every type).
fn mrc_payload(mode: i32, vals: &[f32], big: bool) -> (Vec<u8>, Vec<u8>) {
    let parts: Vec<Vec<u8>> = vals
        .iter()
        .map(|&v| match mode {
            0 => vec![v as i8 as u8],
            1 => (v as i16).to_le_bytes().to_vec(),
            2 => v.to_le_bytes().to_vec(),
            3 => [(v as i16).to_le_bytes(), (-(v as i16)).to_le_bytes()].concat(),
            4 => [v.to_le_bytes(), (2.0 * v).to_le_bytes()].concat(),
            6 => (v as u16).to_le_bytes().to_vec(),
            _ => half(v).to_le_bytes().to_vec(),
        })
        .collect();
    let le: Vec<u8> = parts.concat();
    let comp = match mode {
        0 => 1,
        2 | 4 => 4,
        _ => 2,
    };
    let stored = if big {
        parts
            .iter()
            .flat_map(|p| {
                p.chunks(comp)
                    .flat_map(|c| c.iter().rev().copied())
                    .collect::<Vec<_>>()
            })
            .collect()
    } else {
        le.clone()
    };
    (stored, le)
}

/// Small non-negative integers as binary16.
fn half(v: f32) -> u16 {
    if v == 0.0 {
        return 0;
    }
    let e = v.log2().floor() as i32;
    let frac = ((v / 2f32.powi(e) - 1.0) * 1024.0).round() as u16;
    (((e + 15) as u16) << 10) | frac
}

#[test]
fn mrc_keeps_the_stored_dtype() {
    let tmp = tempfile::tempdir().unwrap();
    let vals: Vec<f32> = (0..12).map(|i| i as f32 * 10.0).collect();
    for big in [false, true] {
        for (mode, flags, dt) in [
            (0, None, Dtype::I8),
            (0, Some(0), Dtype::U8),
            (0, Some(1), Dtype::I8),
            (1, None, Dtype::I16),
            (2, None, Dtype::F32),
            (3, None, Dtype::Ci16),
            (4, None, Dtype::C64),
            (6, None, Dtype::U16),
            (12, None, Dtype::F16),
        ] {
            let (stored, le) = mrc_payload(mode, &vals, big);
            let p = tmp.path().join(format!("m{mode}_{flags:?}_{big}.mrc"));
            fs::write(&p, mrc_file(mode, big, (1, 3, 4), 6.0, flags, &stored)).unwrap();
            let fs_ = read_signals(&p).unwrap();
            let sg = &fs_.signals[0];
            assert_eq!(
                (sg.dtype, sg.shape.clone()),
                (dt, vec![3, 4]),
                "mode {mode}"
            );
            assert_eq!(sg.bytes, le, "mode {mode} big {big}");
            assert_eq!(sg.pixel_size_angstrom(), Some(1.5));
            let st = read_stack(&p).unwrap();
            let want = match mode {
                3 => 50f32.sqrt() * 10.0,
                4 => 5f32.sqrt() * 50.0,
                _ => 50.0,
            };
            assert!((st.data[[0, 1, 1]] - want).abs() < 1e-3, "mode {mode}");
        }
    }
    // uint8 vs int8 from the IMOD flag: 200 stays 200 unsigned.
    let p = tmp.path().join("u8.mrc");
    fs::write(&p, mrc_file(0, false, (1, 1, 2), 0.0, Some(0), &[200, 7])).unwrap();
    assert_eq!(read_stack(&p).unwrap().data[[0, 0, 0]], 200.0);
    let p = tmp.path().join("i8.mrc");
    fs::write(&p, mrc_file(0, false, (1, 1, 2), 0.0, None, &[200, 7])).unwrap();
    assert_eq!(read_stack(&p).unwrap().data[[0, 0, 0]], -56.0);
}

#[test]
fn mrc_convert_writes_the_stored_dtype_and_negative_cell_is_uncalibrated() {
    let tmp = tempfile::tempdir().unwrap();
    let vals: Vec<f32> = (0..24).map(|i| 1000.0 + i as f32).collect();
    for (mode, descr) in [
        (6, "'<u2'"),
        (1, "'<i2'"),
        (12, "'<f2'"),
        (4, "'<c8'"),
        (3, "[('real', '<i2'), ('imag', '<i2')]"),
    ] {
        let (stored, le) = mrc_payload(mode, &vals, false);
        let p = tmp.path().join(format!("c{mode}.mrcs"));
        fs::write(&p, mrc_file(mode, false, (2, 3, 4), 4.0, None, &stored)).unwrap();
        let out = tmp.path().join(format!("c{mode}.npy"));
        qdscope()
            .args(["convert", s(&p), "-o", s(&out)])
            .assert()
            .success();
        let raw = fs::read(&out).unwrap();
        let head = String::from_utf8_lossy(&raw[..120]).to_string();
        assert!(
            head.contains(&format!("'descr': {descr}")) && head.contains("(2, 3, 4)"),
            "{head}"
        );
        assert_eq!(&raw[raw.len() - le.len()..], &le[..], "mode {mode}");
        if mode == 6 {
            let back = read_npy(&out).unwrap();
            assert_eq!(back.data[[1, 2, 3]], 1023.0);
        }
    }
    // Negative cell length: uncalibrated, with a warning that says so.
    let p = tmp.path().join("neg.mrc");
    fs::write(
        &p,
        mrc_file(2, false, (1, 2, 2), -8.0, None, &le_f32(&[1.0; 4])),
    )
    .unwrap();
    let fs_ = read_signals(&p).unwrap();
    assert_eq!(fs_.signals[0].pixel_size_angstrom(), None);
    assert!(fs_
        .warnings
        .0
        .iter()
        .any(|w| w.contains("-8") && w.contains("uncalibrated")));
    let l = load_stack(&p, None).unwrap();
    assert_eq!(l.stack.calibration.pixel_size_angstrom(), None);
    assert_eq!(l.warnings, fs_.warnings);
    let out = qdscope().args(["inspect", s(&p)]).assert().success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("warning") && err.contains("uncalibrated"),
        "{err}"
    );
}

/// TIA as instruments write it (issue 20, found on public files): series
/// version 0x0210 has 32-bit offsets, rows are stored bottom-up, a scan of
/// camera images keeps its two scan axes, an acquisition stopped early
/// holds fewer valid elements than announced, diffraction patterns are
/// calibrated in 1/m.
#[test]
fn tia_ser_versions_rows_scan_axes_partial_and_diffraction() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // Version 0x0210, 32-bit offsets; 2 rows of 3, stored bottom-up.
    let old = ser_file(2, 3, 2, &[u16_frame(3, 2, 0)], 2e-11, false);
    assert_eq!(old[4..6], [0x10, 0x02]);
    fs::write(d.join("old_1.ser"), old).unwrap();
    let s_ = &read_signals(&d.join("old_1.ser")).unwrap().signals[0];
    assert_eq!(s_.shape, vec![2, 3]);
    assert_eq!(s_.to_f32(), vec![3.0, 4.0, 5.0, 0.0, 1.0, 2.0]);

    // A 3 × 2 scan (x fastest) of 4 × 4 diffraction patterns.
    let pos = |size, delta| SerDim {
        size,
        delta,
        description: "Position".into(),
        units: "meters".into(),
    };
    let frames: Vec<Vec<u8>> = (0..6u16).map(|k| u16_frame(4, 4, 100 * k)).collect();
    let scan = ser_series_file(
        2,
        (4, 4),
        &frames,
        1.7e8,
        true,
        &[pos(3, 2e-9), pos(2, -2e-9)],
        6,
    );
    fs::write(d.join("scan_1.ser"), scan).unwrap();
    let s_ = &read_signals(&d.join("scan_1.ser")).unwrap().signals[0];
    assert_eq!(s_.shape, vec![2, 3, 4, 4]);
    let (y, x) = (&s_.axes[0], &s_.axes[1]);
    assert_eq!((y.kind, x.kind), (AxisKind::Length, AxisKind::Length));
    assert!((y.scale + 20.0).abs() < 1e-9 && (x.scale - 20.0).abs() < 1e-9);
    let k = &s_.axes[3];
    assert_eq!((k.kind, k.unit.as_str()), (AxisKind::Reciprocal, "1/Å"));
    assert!((k.scale - 0.017).abs() < 1e-12, "{}", k.scale);
    // Element (1, 2) = the sixth written; its top row is its last stored.
    assert_eq!(s_.to_f32()[5 * 16], 500.0 + 12.0);

    // Stopped after 3 of 10 frames.
    let frames: Vec<Vec<u8>> = (0..3u16).map(|k| u16_frame(2, 2, 10 * k)).collect();
    let number = SerDim {
        size: 10,
        delta: 1.0,
        description: "Number".into(),
        units: String::new(),
    };
    let cut = ser_series_file(2, (2, 2), &frames, 2e-11, false, &[number], 10);
    fs::write(d.join("cut_1.ser"), cut).unwrap();
    let s_ = &read_signals(&d.join("cut_1.ser")).unwrap().signals[0];
    assert_eq!(s_.shape, vec![3, 2, 2]);
    assert!((s_.pixel_size_angstrom().unwrap() - 0.2).abs() < 1e-9);
}

/// A DM file whose image is RGB(A) (DataType 23, like its thumbnail): the
/// thumbnail (first entry) is skipped, the image reads (before: "no image
/// besides the thumbnail").
#[test]
fn dm_rgba_image_after_the_thumbnail_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let px: Vec<u8> = (0..4u8).flat_map(|k| [10 * k, 1, 2, 255]).collect();
    let img = DmImage {
        name: "colour".into(),
        data_type: 23,
        dims: vec![2, 2],
        data: Tag::Array(5, px.clone()),
        scale: (0.02, "nm".into()),
        voltage_v: None,
    };
    for version in [3, 4] {
        let p = tmp.path().join(format!("rgb.dm{version}"));
        fs::write(&p, dm_file(version, true, std::slice::from_ref(&img))).unwrap();
        let fs_ = read_signals(&p).unwrap();
        assert_eq!(fs_.signals.len(), 1);
        assert!(fs_.warnings.0[0].contains("thumbnail"));
        let s_ = &fs_.signals[0];
        assert_eq!((s_.dtype, s_.shape.clone()), (Dtype::Rgba8, vec![2, 2]));
        assert_eq!(s_.bytes, px);
    }
}
