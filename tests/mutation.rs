//! Mutation corpus for every reader (issue 20, item 9): each format's
//! fixtures cut at many lengths, seeded byte flips, and structured attacks
//! (huge dimensions, negative counts, offsets past the end, deep nesting,
//! non-UTF-8 / non-ASCII strings). Every case must end in an error (one
//! line) or a consistent result, never a panic, and never make one
//! allocation larger than the input's size × a small factor (a counting
//! allocator records the largest request made on the reading thread).

#[path = "common/mutation.rs"]
mod harness;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use harness::{
    corpus, molog, npy, npy_bytes, patch, run, signals, tiff, xyz_frames, Reader,
    COMPRESSED_FACTOR, FACTOR,
};
#[path = "support/testfiles.rs"]
mod testfiles;

use testfiles::{
    dm_file, emi_file, mrc_file, ser_file, velox_complex_type, velox_file, DmImage, Tag, VeloxImage,
};
#[test]
fn npy_and_tiff() {
    let tmp = tempfile::tempdir().unwrap();
    let st = qdscope::image::Stack::new(
        ndarray::Array3::from_shape_fn((2, 6, 5), |(f, y, x)| (f * 30 + y * 5 + x) as f32),
        qdscope::image::Calibration::from_pixel_size(0.5).unwrap(),
    )
    .unwrap();
    let p = tmp.path().join("g.npy");
    qdscope::io::write_npy_3d(&p, st.data.view()).unwrap();
    let good = fs::read(&p).unwrap();
    let hdr = |d: &str, shape: &str| {
        format!("{{'descr': '{d}', 'fortran_order': False, 'shape': {shape}, }}")
    };
    let mut bad_utf8 = npy_bytes(&hdr("<f4", "(2, 2)"), &[0; 16]);
    bad_utf8[12] = 0xff;
    let attacks = vec![
        (
            "huge shape",
            npy_bytes(&hdr("<f4", "(4294967296, 4294967296)"), &[0; 16]),
        ),
        (
            "overflowing shape",
            npy_bytes(&hdr("<f8", "(18446744073709551615, 3)"), &[0; 16]),
        ),
        (
            "negative shape",
            npy_bytes(&hdr("<f4", "(-1, 4)"), &[0; 16]),
        ),
        (
            "non-ASCII dtype",
            npy_bytes(&hdr("\u{e9}f4", "(2, 2)"), &[0; 16]),
        ),
        (
            "non-ASCII size",
            npy_bytes(&hdr("<f\u{1f600}", "(2, 2)"), &[0; 16]),
        ),
        (
            "dtype size overflow",
            npy_bytes(&hdr("<f99999999999999999999", "(2, 2)"), &[0; 16]),
        ),
        ("non-UTF-8 header", bad_utf8),
        (
            "header length past the end",
            patch(good.clone(), 8, &[0xff, 0xff]),
        ),
    ];
    corpus(
        "NPY",
        &tmp.path().join("m.npy"),
        &good,
        npy,
        FACTOR,
        &attacks,
    );

    let p = tmp.path().join("g.tif");
    qdscope::io::write_tiff_stack_f32(&p, &st).unwrap();
    let good = fs::read(&p).unwrap();
    // A hand-made baseline TIFF: one IFD, tags given as (tag, type, count, value).
    let tiff_with = |tags: &[(u16, u16, u32, u32)]| {
        let mut b = b"II*\x00\x08\x00\x00\x00".to_vec();
        b.extend_from_slice(&(tags.len() as u16).to_le_bytes());
        for (t, ty, n, v) in tags {
            b.extend_from_slice(&t.to_le_bytes());
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(&n.to_le_bytes());
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&[7; 64]);
        b
    };
    let image = |w: u32, h: u32, bits: u32, comp: u32, off: u32, count: u32| {
        tiff_with(&[
            (256, 4, 1, w),
            (257, 4, 1, h),
            (258, 3, 1, bits),
            (259, 3, 1, comp),
            (262, 3, 1, 1),
            (273, 4, 1, off),
            (277, 3, 1, 1),
            (278, 4, 1, h),
            (279, 4, 1, count),
        ])
    };
    let attacks = vec![
        ("huge dimensions", image(1 << 20, 1 << 20, 32, 1, 130, 64)),
        ("huge compressed", image(1 << 16, 1 << 16, 16, 5, 130, 64)),
        ("strip past the end", image(4, 4, 8, 1, 1 << 30, 16)),
        ("strip count past the end", image(4, 4, 8, 1, 130, u32::MAX)),
        (
            "IFD past the end",
            patch(good.clone(), 4, &u32::MAX.to_le_bytes()),
        ),
        ("zero size", image(0, 0, 8, 1, 130, 0)),
        (
            "many strip offsets",
            tiff_with(&[(256, 4, 1, 4), (257, 4, 1, 4), (273, 4, 1 << 30, 130)]),
        ),
    ];
    corpus(
        "TIFF",
        &tmp.path().join("m.tif"),
        &good,
        tiff,
        COMPRESSED_FACTOR,
        &attacks,
    );
}

fn dm_image(code: u32, dims: &[usize]) -> DmImage {
    let n: usize = dims.iter().product();
    let size = match code {
        6 | 9 => 1,
        1 | 10 => 2,
        12 | 3 => 8,
        13 => 16,
        _ => 4,
    };
    DmImage {
        name: "Détecteur ☃".into(),
        data_type: code,
        dims: dims.to_vec(),
        data: Tag::Array(6, (0..n * size).map(|i| i as u8).collect()),
        scale: (0.02, "nm".into()),
        voltage_v: Some(300_000.0),
    }
}

/// A tag group nested `depth` deep in DM3 (big-endian lengths, as the writer).
fn dm_deep(depth: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for _ in 0..depth {
        body.extend_from_slice(&[1, 0, 0, 0, 0, 1, 20, 0, 1, b'g']);
    }
    let mut b = 3u32.to_be_bytes().to_vec();
    b.extend_from_slice(&(body.len() as u32).to_be_bytes());
    b.extend_from_slice(&1u32.to_be_bytes());
    b.extend(body);
    b
}

#[test]
fn dm3_and_dm4() {
    let tmp = tempfile::tempdir().unwrap();
    for (version, le) in [(3u32, true), (4, false)] {
        let images = [dm_image(2, &[6, 5]), dm_image(3, &[4, 3, 2]), {
            let mut im = dm_image(2, &[4, 4]);
            im.data_type = 5;
            im
        }];
        let good = dm_file(version, le, &images);
        let at = good.windows(4).position(|w| w == b"%%%%").unwrap();
        let w = if version == 4 { 8 } else { 4 };
        let big_len = |v: u64| -> Vec<u8> {
            if version == 4 {
                v.to_be_bytes().to_vec()
            } else {
                (v as u32).to_be_bytes().to_vec()
            }
        };
        let mut huge_dims = dm_image(2, &[4, 4]);
        huge_dims.dims = vec![999_999_999, 999_999_999, 999_999_999, 999_999_999];
        let mut label = good.clone();
        if let Some(i) = label.windows(9).position(|w| w == b"ImageList") {
            label[i..i + 3].copy_from_slice(&[0xff, 0xfe, 0xc3]);
        }
        let attacks = vec![
            (
                "array count u64::MAX",
                patch(good.clone(), at + 4 + 3 * w, &big_len(u64::MAX)),
            ),
            (
                "type definition length huge",
                patch(good.clone(), at + 4, &big_len(1 << 40)),
            ),
            (
                "tag count huge",
                patch(good.clone(), 4 + w + 4 + 2, &big_len(u64::MAX / 2)),
            ),
            ("dimensions overflow", dm_file(version, le, &[huge_dims])),
            ("non-UTF-8 label", label),
            ("deep nesting", dm_deep(10_000)),
        ];
        let name = format!("DM{version}");
        let target = tmp.path().join(format!("m.dm{version}"));
        corpus(&name, &target, &good, signals, FACTOR, &attacks);
    }
}

#[test]
fn mrc() {
    let tmp = tempfile::tempdir().unwrap();
    let payload: Vec<u8> = (0..2 * 3 * 4 * 4).map(|i| i as u8).collect();
    let good = mrc_file(2, false, (2, 3, 4), 6.0, None, &payload);
    let word = |b: &[u8], i: usize, v: i32| patch(b.to_vec(), 4 * i, &v.to_le_bytes());
    let attacks = vec![
        (
            "huge dimensions",
            word(&word(&word(&good, 0, i32::MAX), 1, i32::MAX), 2, i32::MAX),
        ),
        ("negative nz", word(&good, 2, -3)),
        ("negative nx", word(&good, 0, i32::MIN)),
        ("extended header past the end", word(&good, 23, i32::MAX)),
        ("negative extended header", word(&good, 23, -1024)),
        ("complex int16 huge", word(&word(&good, 3, 3), 1, 1 << 30)),
        (
            "mode 4 odd size",
            mrc_file(4, false, (1, 1, 3), 1.0, None, &[0; 20]),
        ),
        (
            "non-finite cell",
            word(&good, 10, f32::NAN.to_bits() as i32),
        ),
        (
            "big-endian stamp, little data",
            patch(good.clone(), 212, &[0x11, 0x11]),
        ),
        (
            "IMOD flags all set",
            mrc_file(0, false, (1, 2, 2), 1.0, Some(-1), &[1, 2, 3, 4]),
        ),
    ];
    corpus(
        "MRC",
        &tmp.path().join("m.mrc"),
        &good,
        signals,
        FACTOR,
        &attacks,
    );
}

fn velox_fixture(path: &Path) {
    let (ny, nx, nf) = (6, 5, 2);
    let n = ny * nx * nf;
    velox_file(
        path,
        &[
            VeloxImage {
                detector: "HAADF ☃".into(),
                shape: [ny, nx, nf],
                datatype: rust_hdf5::DatatypeMessage::u16_type(),
                raw: (0..n as u16).flat_map(u16::to_le_bytes).collect(),
                chunked: true,
            },
            VeloxImage {
                detector: "DPC".into(),
                shape: [ny, nx, 1],
                datatype: velox_complex_type(4),
                raw: (0..ny * nx * 2)
                    .flat_map(|i| (i as f32).to_le_bytes())
                    .collect(),
                chunked: false,
            },
        ],
    )
    .unwrap();
}

/// A Berkeley EMD whose groups nest `depth` deep, or whose one dataset
/// claims a huge chunked shape it never stores.
fn berkeley_attack(path: &Path, depth: usize, huge: bool) {
    let f = rust_hdf5::H5File::create(path).unwrap();
    let mut g = f.create_group("data").unwrap();
    for k in 0..depth {
        g = g.create_group(&format!("n{k}")).unwrap();
    }
    g.set_attr_numeric("emd_group_type", &1i32).unwrap();
    let b = g.new_dataset::<f32>();
    let ds = if huge {
        b.shape([1 << 20, 1 << 20])
            .chunk(&[1024, 1024])
            .create("data")
    } else {
        b.shape([2, 2]).create("data")
    };
    let ds = ds.unwrap();
    if !huge {
        ds.write_raw(&[1f32, 2.0, 3.0, 4.0]).unwrap();
    }
    f.close().unwrap();
}

#[test]
fn emd() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("v.emd");
    velox_fixture(&p);
    let good = fs::read(&p).unwrap();
    let attack = |name: &str, depth: usize, huge: bool| -> Vec<u8> {
        let q = tmp.path().join(format!("{name}.emd"));
        berkeley_attack(&q, depth, huge);
        fs::read(&q).unwrap()
    };
    let attacks = vec![
        ("deep nesting", attack("deep", 40, false)),
        ("huge chunked shape", attack("huge", 0, true)),
    ];
    let target = tmp.path().join("m.emd");
    corpus("EMD", &target, &good, signals, COMPRESSED_FACTOR, &attacks);
}

#[test]
fn ser_and_emi() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("ser");
    fs::create_dir_all(&d).unwrap();
    let good = ser_file(7, 5, 4, &[vec![1u8; 80], vec![2u8; 80]], 1e-10, true);
    let header_u32 = |at: usize, v: u32| patch(good.clone(), at, &v.to_le_bytes());
    // Version 0x0210: counts at 14 and 18, offset-array position at 22,
    // dimension count at 30; the first element header at its offset.
    let first = u64::from_le_bytes(good[good.len() - 32..good.len() - 24].try_into().unwrap());
    let f = first as usize;
    let mut same = good.clone();
    let n = same.len();
    let second = n - 24;
    same[second..second + 8].copy_from_slice(&first.to_le_bytes());
    let attacks = vec![
        ("counts u32::MAX", header_u32(18, u32::MAX)),
        ("valid above total", header_u32(18, 3)),
        (
            "offset array past the end",
            patch(good.clone(), 22, &u64::MAX.to_le_bytes()),
        ),
        ("dimensions huge", header_u32(30, u32::MAX)),
        (
            "element past the end",
            patch(good.clone(), n - 32, &(1u64 << 40).to_le_bytes()),
        ),
        (
            "element nx × ny huge",
            patch(
                patch(good.clone(), f + 42, &u32::MAX.to_le_bytes()),
                f + 46,
                &u32::MAX.to_le_bytes(),
            ),
        ),
        ("two elements share data", same),
        ("text length huge", header_u32(34 + 4 + 16 + 4, u32::MAX)),
    ];
    corpus("SER", &d.join("m_1.ser"), &good, signals, FACTOR, &attacks);

    // The EMI entry point: the EMI mutated, its SER sibling intact.
    fs::write(d.join("m_1.ser"), &good).unwrap();
    let emi = emi_file(300_000.0, 1e6);
    let mut soup = b"<ObjectInfo>".to_vec();
    soup.extend(std::iter::repeat_n(b"<a>x".as_slice(), 50_000).flatten());
    let mut non_utf8 = emi.clone();
    non_utf8
        .extend_from_slice(b"<ObjectInfo><\xff\xfe>\xc3</\xff\xfe><T\xc3\xa9>\xe2\x98</T\xc3\xa9>");
    let attacks = vec![("tag soup", soup), ("non-UTF-8 tags", non_utf8)];
    corpus("EMI", &d.join("m.emi"), &emi, signals, FACTOR, &attacks);
}

fn text_fixtures() -> (String, String, String) {
    let mut ener = String::from("#     Step Nr.          Time[fs]        Kin.[a.u.]          Temp[K]            Pot.[a.u.]        Cons Qty[a.u.]        UsedTime[s]\n");
    for i in 0..20 {
        ener += &format!(
            "{i:>10} {:>20.6} {:>20.9} {:>20.9} {:>20.9} {:>20.9} {:>20.9}\n",
            i as f64 * 0.5,
            0.01,
            300.0 + i as f64,
            -100.0,
            -99.99,
            1.2
        );
    }
    let mut mo = String::new();
    for k in 0..4 {
        mo += " MO| EIGENVALUES AND OCCUPATION NUMBERS\n MO| Index      Eigenvalue [a.u.]        Eigenvalue [eV]             Occupation\n";
        for (i, e, o) in [
            (1, -0.3, 2.0),
            (2, -0.25 + 0.001 * k as f64, 2.0),
            (3, -0.2, 0.0),
        ] {
            mo += &format!(" MO|{i:7}{e:22.8}{:22.8}{o:22.8}\n", e * 27.211386);
        }
        mo += " MO| Sum:                                      4.00000000\n\n";
    }
    let mut x = String::new();
    for i in 0..5 {
        x += &format!("       3\n i = {i}, time = {}.0, E = -1.0\n  Cs 0.0 0.0 {i}.0\n  Pb 1.0 1.0 1.0\n  Br 2.0 2.0 2.0\n", i * 5);
    }
    (ener, mo, x)
}

#[test]
fn cp2k_and_xyz_text() {
    let tmp = tempfile::tempdir().unwrap();
    let (ener, mo, x) = text_fixtures();
    let t = |name: &str| -> PathBuf { tmp.path().join(name) };
    let attacks = vec![
        ("non-UTF-8", b"# Step\n1 0.5 \xff\xfe 300 1 1 1\n".to_vec()),
        (
            "non-ASCII numbers",
            "1 ０.5 0.01 300 1 1 1\n2 1.0 0.01 300 1 1 1\n"
                .as_bytes()
                .to_vec(),
        ),
        (
            "NaN and infinities",
            b"1 NaN 0.01 inf 1 1 1\n2 -inf 0.01 300 1 1 1\n".to_vec(),
        ),
        (
            "huge step",
            b"99999999999999999999999 0.5 0.01 300 1 1 1\n".to_vec(),
        ),
    ];
    corpus(
        "CP2K ener",
        &t("m.ener"),
        ener.as_bytes(),
        ener_reader(),
        FACTOR,
        &attacks,
    );
    let attacks = vec![
        (
            "huge index",
            mo.replace("      2", "99999999999999").into_bytes(),
        ),
        (
            "negative index",
            mo.replace("      3", "     -3").into_bytes(),
        ),
        ("non-UTF-8", [mo.as_bytes(), b"\xff MO| \xc3\n"].concat()),
        (
            "huge occupation sum",
            mo.replace("4.00000000", "1e300").into_bytes(),
        ),
    ];
    corpus(
        "CP2K MOLog",
        &t("m.MOLog"),
        mo.as_bytes(),
        molog,
        FACTOR,
        &attacks,
    );
    let attacks = vec![
        (
            "huge atom count",
            b"999999999999\ncomment\nCs 0 0 0\n".to_vec(),
        ),
        ("negative atom count", b"-5\ncomment\nCs 0 0 0\n".to_vec()),
        (
            "count overflow",
            b"99999999999999999999999999\nc\n".to_vec(),
        ),
        ("non-ASCII species", "1\nc\n☃ 0 0 0\n".as_bytes().to_vec()),
        ("non-UTF-8", b"1\n\xff\xfe\nCs \xc3 0 0\n".to_vec()),
    ];
    corpus(
        "XYZ",
        &t("m.xyz"),
        x.as_bytes(),
        xyz_frames,
        FACTOR,
        &attacks,
    );
}

fn ener_reader() -> Reader {
    harness::ener
}

fn err_of(b: &[u8], name: &str, read: Reader) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join(name);
    fs::write(&p, b).unwrap();
    read(&p).unwrap_err()
}

/// Sizes from headers are refused before allocation, by an error naming
/// the field and the limit; the counting allocator does see big requests.
#[test]
fn header_sizes_are_bounded_by_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let q = tmp.path().join("huge.emd");
    berkeley_attack(&q, 0, true);
    let e = signals(&q).unwrap_err();
    assert!(
        e.contains("data: 1048576 × 1048576 elements of 4 bytes exceed the limit"),
        "{e}"
    );
    let mut t = b"II*\x00\x08\x00\x00\x00\x06\x00".to_vec();
    for (tag, ty, v) in [
        (256u16, 4u16, 1u32 << 20),
        (257, 4, 1 << 20),
        (258, 3, 32),
        (262, 3, 1),
        (273, 4, 8),
        (279, 4, 64),
    ] {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&ty.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&v.to_le_bytes());
    }
    t.extend_from_slice(&[0; 4]);
    let e = err_of(&t, "h.tif", tiff);
    assert!(
        e.contains("page 0: 1048576x1048576 pixels of 32 bits exceed the limit of"),
        "{e}"
    );
    // One 4000-byte element, then an offset array of 10 entries all
    // pointing at it: 40 000 bytes of elements from a ~4 kB file.
    let mut same = ser_file(7, 1000, 1, &[vec![0u8; 4000]], 1e-10, true);
    let n = same.len();
    let first: [u8; 8] = same[n - 16..n - 8].try_into().unwrap();
    same[14..18].copy_from_slice(&10u32.to_le_bytes());
    same[18..22].copy_from_slice(&10u32.to_le_bytes());
    same[22..30].copy_from_slice(&(n as u64).to_le_bytes());
    for _ in 0..10 {
        same.extend_from_slice(&first);
    }
    same.extend_from_slice(&[0u8; 80]);
    let e = err_of(&same, "s_1.ser", signals);
    assert!(e.contains("SER elements together"), "{e}");
    // The allocator check itself: a reader asking for 64 MiB on 10 bytes fails.
    let greedy: Reader = |_| {
        std::hint::black_box(vec![1u8; 64 << 20]);
        Ok(())
    };
    let p = tmp.path().join("g.bin");
    let caught = catch_unwind(AssertUnwindSafe(|| {
        run("greedy", &p, &[0; 10], greedy, FACTOR)
    }));
    assert!(
        caught.is_err(),
        "the allocation bound must catch a 64 MiB request"
    );
}
