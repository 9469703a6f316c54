//! Readers and writers: round trips for every format and dtype, calibration,
//! bad files, atomic writes.
use std::fs;
use std::path::Path;

use ndarray::{Array2, Array3};
use qdscope::image::{Calibration, Image, Stack};
use qdscope::io;

fn ramp(f: usize, ny: usize, nx: usize) -> Array3<f32> {
    Array3::from_shape_fn((f, ny, nx), |(k, y, x)| (k * 100 + y * 10 + x) as f32)
}

/// Hand-written NPY with any descr and order.
fn npy(descr: &str, fortran: bool, shape: &[usize], payload: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let sh = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let fo = if fortran { "True" } else { "False" };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': {fo}, 'shape': {sh}, }}\n");
    while (10 + h.len()) % 64 != 0 {
        h.insert(h.len() - 1, ' ');
    }
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(h.len() as u16).to_le_bytes());
    v.extend_from_slice(h.as_bytes());
    v.extend_from_slice(payload);
    v
}

#[test]
fn npy_every_dtype_order_and_endianness() {
    let tmp = tempfile::tempdir().unwrap();
    let want = ramp(2, 3, 4);
    // Values 0..=223 fit every dtype incl. int8? No: int8 max 127 → use a small ramp for 1-byte types.
    let small = Array3::from_shape_fn((2, 3, 4), |(k, y, x)| (k * 12 + y * 4 + x) as f32);
    macro_rules! case {
        ($t:ty, $code:expr, $src:expr) => {
            for (big, endian) in [(false, '<'), (true, '>')] {
                for fortran in [false, true] {
                    let src: &Array3<f32> = $src;
                    let ordered: Vec<f32> = if fortran {
                        src.t().iter().copied().collect()
                    } else {
                        src.iter().copied().collect()
                    };
                    let bytes: Vec<u8> = ordered
                        .iter()
                        .flat_map(|v| {
                            let x = *v as $t;
                            if big {
                                x.to_be_bytes().to_vec()
                            } else {
                                x.to_le_bytes().to_vec()
                            }
                        })
                        .collect();
                    let e = if std::mem::size_of::<$t>() == 1 {
                        '|'
                    } else {
                        endian
                    };
                    let p = tmp
                        .path()
                        .join(format!("a_{}_{}_{}.npy", $code, big, fortran));
                    fs::write(
                        &p,
                        npy(&format!("{e}{}", $code), fortran, &[2, 3, 4], &bytes),
                    )
                    .unwrap();
                    let s = io::read_stack(&p).unwrap();
                    assert_eq!(&s.data, src, "{} big={big} fortran={fortran}", $code);
                    assert_eq!(s.calibration, Calibration::Uncalibrated);
                }
            }
        };
    }
    case!(i8, "i1", &small);
    case!(u8, "u1", &small);
    case!(i16, "i2", &want);
    case!(u16, "u2", &want);
    case!(i32, "i4", &want);
    case!(u32, "u4", &want);
    case!(i64, "i8", &want);
    case!(u64, "u8", &want);
    case!(f32, "f4", &want);
    case!(f64, "f8", &want);
    // float16: 1.0, -2.0, 0.5, 65504.
    let halves: Vec<u8> = [0x3c00u16, 0xc000, 0x3800, 0x7bff]
        .iter()
        .flat_map(|h| h.to_le_bytes())
        .collect();
    let p = tmp.path().join("h.npy");
    fs::write(&p, npy("<f2", false, &[2, 2], &halves)).unwrap();
    let img = io::read_image(&p).unwrap();
    assert_eq!(
        img.data,
        Array2::from_shape_vec((2, 2), vec![1.0, -2.0, 0.5, 65504.0]).unwrap()
    );
}

#[test]
fn npy_writer_round_trip_2d_and_3d() {
    let tmp = tempfile::tempdir().unwrap();
    let a = ramp(3, 5, 7);
    let p = tmp.path().join("s.npy");
    io::write_npy_3d(&p, a.view()).unwrap();
    assert_eq!(io::read_stack(&p).unwrap().data, a);
    let p2 = tmp.path().join("i.npy");
    let img = a.index_axis(ndarray::Axis(0), 1).to_owned();
    io::write_npy_2d(&p2, img.view()).unwrap();
    let back = io::read_image(&p2).unwrap();
    assert_eq!(back.data, img);
    // Header is 64-byte aligned, as numpy requires.
    let bytes = fs::read(&p2).unwrap();
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0);
    // A 3-frame file is not a single image.
    assert!(io::read_image(&p)
        .unwrap_err()
        .to_string()
        .contains("3 frames"));
}

#[test]
fn tiff_every_dtype_multipage_and_calibration() {
    use tiff::encoder::{colortype, TiffEncoder};
    let tmp = tempfile::tempdir().unwrap();
    let src = ramp(2, 6, 5);
    macro_rules! case {
        ($ct:ty, $t:ty, $name:expr) => {{
            let p = tmp.path().join(format!("{}.tif", $name));
            {
                let f = fs::File::create(&p).unwrap();
                let mut enc = TiffEncoder::new(f).unwrap();
                for k in 0..2 {
                    let d: Vec<$t> = src
                        .index_axis(ndarray::Axis(0), k)
                        .iter()
                        .map(|v| *v as $t)
                        .collect();
                    enc.write_image::<$ct>(5, 6, &d).unwrap();
                }
            }
            let s = io::read_stack(&p).unwrap();
            assert_eq!(s.data, src, $name);
        }};
    }
    case!(colortype::Gray8, u8, "u8");
    case!(colortype::Gray16, u16, "u16");
    case!(colortype::Gray32, u32, "u32");
    case!(colortype::GrayI16, i16, "i16");
    case!(colortype::GrayI32, i32, "i32");
    case!(colortype::Gray32Float, f32, "f32");
    case!(colortype::Gray64Float, f64, "f64");
    // Our writer: calibration survives, single and multi-page.
    let cal = Calibration::from_pixel_size(0.1234).unwrap();
    let stack = Stack::new(src.clone(), cal).unwrap();
    let p = tmp.path().join("cal.tif");
    io::write_tiff_stack_f32(&p, &stack).unwrap();
    let back = io::read_stack(&p).unwrap();
    assert_eq!(back.data, src);
    let got = back.calibration.pixel_size_angstrom().unwrap();
    assert!((got / 0.1234 - 1.0).abs() < 1e-6, "{got}");
    let p = tmp.path().join("one.tif");
    let img = Image::new(
        src.index_axis(ndarray::Axis(0), 0).to_owned(),
        Calibration::Uncalibrated,
    );
    io::write_tiff_f32(&p, &img).unwrap();
    let back = io::read_image(&p).unwrap();
    assert_eq!(back, img);
}

#[test]
fn tiff_imagej_and_resolution_unit_calibration() {
    use tiff::encoder::{colortype, Rational, TiffEncoder};
    use tiff::tags::{ResolutionUnit, Tag};
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, desc: Option<&str>, xres: Rational, unit: ResolutionUnit| {
        let p = tmp.path().join(name);
        let f = fs::File::create(&p).unwrap();
        let mut enc = TiffEncoder::new(f).unwrap();
        let mut img = enc.new_image::<colortype::Gray16>(4, 4).unwrap();
        if let Some(d) = desc {
            img.encoder().write_tag(Tag::ImageDescription, d).unwrap();
        }
        img.x_resolution(xres);
        img.resolution_unit(unit);
        img.write_data(&[7u16; 16]).unwrap();
        p
    };
    // ImageJ, micron: 20 px/µm → 500 Å/px.
    let p = write(
        "ij.tif",
        Some("ImageJ=1.53t\nunit=micron\n"),
        Rational { n: 20, d: 1 },
        ResolutionUnit::None,
    );
    assert_eq!(
        io::read_image(&p)
            .unwrap()
            .calibration
            .pixel_size_angstrom(),
        Some(500.0)
    );
    // Centimetre resolution tag: 1e8 px/cm → 1 Å/px.
    let p = write(
        "cm.tif",
        None,
        Rational {
            n: 100_000_000,
            d: 1,
        },
        ResolutionUnit::Centimeter,
    );
    assert_eq!(
        io::read_image(&p)
            .unwrap()
            .calibration
            .pixel_size_angstrom(),
        Some(1.0)
    );
    // 72 dpi is a print resolution, not a calibration.
    let p = write(
        "dpi.tif",
        None,
        Rational { n: 72, d: 1 },
        ResolutionUnit::Inch,
    );
    assert_eq!(
        io::read_image(&p).unwrap().calibration,
        Calibration::Uncalibrated
    );
}

/// Hand-written MRC with mode, endianness and an extended header.
fn mrc(
    mode: i32,
    big: bool,
    nsymbt: usize,
    dims: (usize, usize, usize),
    cell_x: f32,
    payload: &[u8],
) -> Vec<u8> {
    let mut h = vec![0u8; 1024];
    let put = |h: &mut Vec<u8>, i: usize, b: [u8; 4]| h[4 * i..4 * i + 4].copy_from_slice(&b);
    let i32b = |v: i32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let f32b = |v: f32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    put(&mut h, 0, i32b(dims.2 as i32));
    put(&mut h, 1, i32b(dims.1 as i32));
    put(&mut h, 2, i32b(dims.0 as i32));
    put(&mut h, 3, i32b(mode));
    put(&mut h, 7, i32b(dims.2 as i32));
    put(&mut h, 10, f32b(cell_x));
    put(&mut h, 23, i32b(nsymbt as i32));
    put(&mut h, 52, *b"MAP ");
    put(
        &mut h,
        53,
        if big {
            [0x11, 0x11, 0, 0]
        } else {
            [0x44, 0x44, 0, 0]
        },
    );
    h.extend(std::iter::repeat_n(0xAB, nsymbt));
    h.extend_from_slice(payload);
    h
}

#[test]
fn mrc_every_mode_and_calibration() {
    let tmp = tempfile::tempdir().unwrap();
    let small = Array3::from_shape_fn((2, 3, 4), |(k, y, x)| (k * 12 + y * 4 + x) as f32 - 5.0);
    for big in [false, true] {
        for (mode, size) in [(0, 1usize), (1, 2), (2, 4), (6, 2), (12, 2)] {
            let bytes: Vec<u8> = small
                .iter()
                .flat_map(|v| -> Vec<u8> {
                    let v = if mode == 6 { v + 5.0 } else { *v };
                    match mode {
                        0 => vec![v as i8 as u8],
                        1 => {
                            if big {
                                (v as i16).to_be_bytes().to_vec()
                            } else {
                                (v as i16).to_le_bytes().to_vec()
                            }
                        }
                        6 => {
                            if big {
                                (v as u16).to_be_bytes().to_vec()
                            } else {
                                (v as u16).to_le_bytes().to_vec()
                            }
                        }
                        12 => {
                            // Small integers are exact in binary16: build by hand.
                            let h = f32_to_half(v);
                            if big {
                                h.to_be_bytes().to_vec()
                            } else {
                                h.to_le_bytes().to_vec()
                            }
                        }
                        _ => {
                            if big {
                                v.to_be_bytes().to_vec()
                            } else {
                                v.to_le_bytes().to_vec()
                            }
                        }
                    }
                })
                .collect();
            assert_eq!(bytes.len(), small.len() * size);
            let p = tmp.path().join(format!("m{mode}_{big}.mrcs"));
            fs::write(&p, mrc(mode, big, 96, (2, 3, 4), 4.0 * 1.5, &bytes)).unwrap();
            let s = io::read_stack(&p).unwrap();
            let want = if mode == 6 {
                small.mapv(|v| v + 5.0)
            } else {
                small.clone()
            };
            assert_eq!(s.data, want, "mode {mode} big {big}");
            assert_eq!(s.calibration.pixel_size_angstrom(), Some(1.5));
        }
    }
    // Writer round trip with calibration.
    let st = Stack::new(ramp(3, 4, 5), Calibration::from_pixel_size(0.75).unwrap()).unwrap();
    let p = tmp.path().join("w.mrc");
    io::write_mrc_f32(&p, &st).unwrap();
    assert_eq!(io::read_stack(&p).unwrap(), st);
    // Unsupported mode (modes 3 and 4, complex, are read: tests/readers.rs).
    let p = tmp.path().join("m7.mrc");
    fs::write(&p, mrc(7, false, 0, (1, 2, 2), 0.0, &[0u8; 32])).unwrap();
    assert!(io::read_stack(&p)
        .unwrap_err()
        .to_string()
        .contains("unsupported MRC mode 7"));
}

fn f32_to_half(v: f32) -> u16 {
    if v == 0.0 {
        return 0;
    }
    let sign = if v < 0.0 { 0x8000u16 } else { 0 };
    let a = v.abs();
    let e = a.log2().floor() as i32;
    let frac = ((a / 2f32.powi(e) - 1.0) * 1024.0).round() as u16;
    sign | (((e + 15) as u16) << 10) | frac
}

#[test]
fn bad_files_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let msg = |p: &Path| io::read_stack(p).unwrap_err().to_string();
    let p = d.join("missing.npy");
    assert!(msg(&p).starts_with(&p.display().to_string()));
    let p = d.join("x.dat");
    fs::write(&p, b"abc").unwrap();
    assert!(msg(&p).contains("unknown or unsupported file format"));
    let p = d.join("t.npy");
    fs::write(&p, npy("<f4", false, &[4, 4], &[0u8; 20])).unwrap();
    assert!(
        msg(&p).contains("truncated: expected 64 bytes"),
        "{}",
        msg(&p)
    );
    let p = d.join("one.npy");
    fs::write(&p, npy("<f4", false, &[4], &[0u8; 16])).unwrap();
    assert!(msg(&p).contains("got shape [4] (1-D)"), "{}", msg(&p));
    let p = d.join("four.npy");
    fs::write(&p, npy("<f4", false, &[1, 1, 2, 2], &[0u8; 16])).unwrap();
    assert!(msg(&p).contains("4-D"));
    let p = d.join("empty.npy");
    fs::write(&p, npy("<f4", false, &[0, 4, 4], &[])).unwrap();
    assert!(msg(&p).contains("no pixels"));
    let p = d.join("c.npy");
    fs::write(&p, npy("<c8", false, &[2, 2], &[0u8; 32])).unwrap();
    assert!(msg(&p).contains("unsupported NPY dtype"));
    let p = d.join("bad.npy");
    fs::write(&p, b"\x93NUMPY\x01\x00\xff\xff{").unwrap();
    assert!(msg(&p).contains("truncated NPY header"));
    // TIFF: truncated and garbage after the magic.
    let good = d.join("g.tif");
    let st = Stack::new(ramp(2, 16, 16), Calibration::Uncalibrated).unwrap();
    io::write_tiff_stack_f32(&good, &st).unwrap();
    let b = fs::read(&good).unwrap();
    let p = d.join("tt.tif");
    fs::write(&p, &b[..b.len() / 2]).unwrap();
    assert!(msg(&p).starts_with(&p.display().to_string()));
    let p = d.join("junk.tif");
    let mut junk = b"II*\x00\xff\xff\x00\x00".to_vec();
    junk.extend((0..64u8).map(|i| i.wrapping_mul(37)));
    fs::write(&p, junk).unwrap();
    assert!(msg(&p).starts_with(&p.display().to_string()));
    // MRC: short header and truncated data.
    let p = d.join("short.mrc");
    fs::write(&p, [0u8; 100]).unwrap();
    assert!(msg(&p).contains("header needs 1024 bytes"));
    let p = d.join("td.mrc");
    fs::write(&p, mrc(2, false, 0, (2, 4, 4), 0.0, &[0u8; 40])).unwrap();
    assert!(msg(&p).contains("truncated: expected 128 bytes"));
}

#[test]
fn nan_values_pass_through_readers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = Array2::<f32>::zeros((4, 4));
    a[[1, 2]] = f32::NAN;
    let p = tmp.path().join("n.npy");
    io::write_npy_2d(&p, a.view()).unwrap();
    assert!(io::read_image(&p).unwrap().data[[1, 2]].is_nan());
}

#[test]
fn atomic_write_never_leaves_half_files() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("out.txt");
    io::write_text(&p, "first").unwrap();
    let r = io::atomic_write(&p, |w| {
        use std::io::Write;
        w.write_all(b"partial")?;
        Err(std::io::Error::other("simulated crash"))
    });
    assert!(r.unwrap_err().to_string().contains("simulated crash"));
    assert_eq!(fs::read_to_string(&p).unwrap(), "first");
    let names: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "temp file left behind: {names:?}");
    // Unwritable directory → error naming the file.
    let bad = tmp.path().join("no/such/dir/x.npy");
    let e = io::write_npy_2d(&bad, Array2::<f32>::zeros((2, 2)).view()).unwrap_err();
    assert!(e.to_string().starts_with(&bad.display().to_string()));
}

#[test]
fn png_preview_is_a_valid_png() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Array2::from_shape_fn((20, 30), |(y, x)| (x + y) as f32);
    let p = tmp.path().join("p.png");
    io::write_png_preview(&p, a.view(), 0.5, 99.5).unwrap();
    let dec = png::Decoder::new(fs::File::open(&p).unwrap());
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (30, 20));
    assert_eq!(buf[0], 0);
    assert_eq!(buf[20 * 30 - 1], 255);
    // Constant image → mid-grey, no division by zero.
    io::write_png_preview(&p, Array2::<f32>::ones((4, 4)).view(), 0.5, 99.5).unwrap();
    assert!(io::write_png_preview(&p, a.view(), 50.0, 10.0).is_err());
}
