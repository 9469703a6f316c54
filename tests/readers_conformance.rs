//! Structures found by comparing qdscope with RosettaSciIO on public
//! microscope files (examples/conformance_rsciio.sh; issue 20), rebuilt
//! here as small fixtures: Velox chunks never written, Velox image titles
//! from displays and operations, Berkeley EMD written by HyperSpy (axes
//! reversed), TIFF in the stored dtype with DigitalMicrograph and FEI
//! calibration tags, palette TIFF refused in words. (TIA and DM cases are
//! in tests/readers.rs.)

mod common;
#[path = "support/testfiles.rs"]
mod testfiles;

use std::fs;
use std::path::Path;

use common::{fail, s};
use qdscope::io::read_signals;
use qdscope::io::signal::{AxisKind, Dtype};
use rust_hdf5::{H5File, H5Group};
use tiff::encoder::{colortype, TiffEncoder};
use tiff::tags::Tag;

/// One Velox image group `Data/Image/<id>` of u16 (y, x, 1) with its
/// Metadata JSON naming `detector`; `chunk` = chunk (y, x) size, and
/// `written` = which chunks hold data (the others are never written).
fn velox_image(
    img: &H5Group,
    id: &str,
    detector: &str,
    (ny, nx): (usize, usize),
    chunk: (usize, usize),
    written: &[usize],
) {
    let g = img.create_group(id).unwrap();
    let ds = g
        .new_dataset::<u16>()
        .shape([ny, nx, 1])
        .chunk(&[chunk.0, chunk.1, 1])
        .create("Data")
        .unwrap();
    for c in written {
        let v: Vec<u8> = (0..chunk.0 * chunk.1)
            .flat_map(|k| (k as u16 + 1).to_le_bytes())
            .collect();
        ds.write_chunk(*c, &v).unwrap();
    }
    let json = format!(
        r#"{{"BinaryResult":{{"Detector":"{detector}","PixelSize":{{"width":"1e-10","height":"1e-10"}},"PixelUnitX":"m","PixelUnitY":"m"}}}}"#
    );
    let m: Vec<u8> = json.bytes().chain([0u8; 4]).collect();
    g.new_dataset::<u8>()
        .shape([m.len(), 1])
        .create("Metadata")
        .unwrap()
        .write_raw(&m)
        .unwrap();
}

fn velox_skeleton(path: &Path) -> (H5File, H5Group) {
    let f = H5File::create(path).unwrap();
    let img = f
        .create_group("Data")
        .unwrap()
        .create_group("Image")
        .unwrap();
    (f, img)
}

/// A Velox camera image whose chunks were never written (a "1532 Camera
/// Ceta.emd" has none): it reads as the fill value, zeros, instead of
/// failing ("chunk at coordinates [0, 0, 0] has not been written").
#[test]
fn velox_chunks_never_written_read_as_zeros() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("ceta.emd");
    let (f, img) = velox_skeleton(&p);
    velox_image(&img, "a0", "BM-Ceta", (4, 4), (2, 2), &[]);
    // Chunk grid (2, 2, 1): linear index 2 = chunk (1, 0, 0).
    velox_image(&img, "b1", "HAADF", (4, 4), (2, 2), &[2]);
    f.close().unwrap();
    let raw = H5File::open(&p).unwrap();
    assert!(raw
        .dataset("Data/Image/a0/Data")
        .unwrap()
        .read_chunk_raw_at(&[0, 0, 0])
        .is_err());
    let fs_ = read_signals(&p).unwrap();
    let (a, b) = (&fs_.signals[0], &fs_.signals[1]);
    assert!(a.unreadable.is_none(), "{:?}", a.unreadable);
    assert_eq!((a.dtype, a.shape.clone()), (Dtype::U16, vec![4, 4]));
    assert_eq!(a.to_f32(), vec![0.0; 16]);
    // Only the lower-left chunk (rows 2-3, columns 0-1) was written.
    let v = b.to_f32();
    assert_eq!(&v[..8], &[0.0; 8]);
    assert_eq!(&v[8..12], &[1.0, 2.0, 0.0, 0.0]);
    assert_eq!(&v[12..], &[3.0, 4.0, 0.0, 0.0]);
}

/// Velox names images in its displays and operations, not in
/// `BinaryResult.Detector` (every image of a DPC acquisition says `DF4`):
/// display label first, then the detector segment of a STEM input, then
/// the operation (a difference of two segments), unfiltered iDPC, and
/// `%XX` escapes decoded. Selecting by title then works.
#[test]
fn velox_titles_from_displays_and_operations() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("dpc.emd");
    let (f, img) = velox_skeleton(&p);
    for id in ["i0", "i1", "i2", "i3", "i4", "i5", "i6"] {
        velox_image(&img, id, "DF4", (2, 2), (2, 2), &[0]);
    }
    let disp = f
        .create_group("Presentation")
        .unwrap()
        .create_group("Displays")
        .unwrap()
        .create_group("ImageDisplay")
        .unwrap();
    let display = |n: &str, label: &str, id: &str| {
        let json =
            format!(r#"{{"display":{{"label":"{label}"}},"dataPath":"\/Data\/Image\/{id}"}}"#);
        disp.write_vlen_strings(n, &[json.as_str()]).unwrap();
    };
    display("d0", "DPC", "i0");
    display("d1", "iDPC", "i5");
    display("d2", "FFT%231%28Ceta%29", "i6");
    let ops = f.create_group("Operations").unwrap();
    let stem = ops.create_group("StemInputOperation").unwrap();
    for (n, seg, id) in [("s0", "DF4-A", "i1"), ("s1", "DF4-C", "i2")] {
        let json = format!(
            r#"{{"dataPath":"\/Data\/Image\/{id}","detector":"{seg}","outputs":[{{"operation":"\/Operations\/MathematicsOperation\/m0","inputIndex":"{}"}}]}}"#,
            if seg == "DF4-A" { 0 } else { 1 }
        );
        stem.write_vlen_strings(n, &[json.as_str()]).unwrap();
    }
    ops.create_group("MathematicsOperation")
        .unwrap()
        .write_vlen_strings(
            "m0",
            &[r#"{"mathematicsMode":"Subtraction","dataPath":"\/Data\/Image\/i3"}"#],
        )
        .unwrap();
    ops.create_group("SurfaceReconstructionOperation")
        .unwrap()
        .write_vlen_strings(
            "r0",
            &[r#"{"dataPath":"\/Data\/Image\/i5","unfilteredDataPath":"\/Data\/Image\/i4"}"#],
        )
        .unwrap();
    f.close().unwrap();
    let fs_ = read_signals(&p).unwrap();
    let titles: Vec<&str> = fs_.signals.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "DPC",
            "DF4-A",
            "DF4-C",
            "DF4-A - DF4-C",
            "iDPC (unfiltered)",
            "iDPC",
            "FFT#1(Ceta)"
        ]
    );
}

/// Berkeley EMD groups HyperSpy wrote (`record_by`) hold the array with
/// its axes reversed; read back in HyperSpy's order with the dims
/// following their axes (before: transposed values).
#[test]
fn berkeley_emd_written_by_hyperspy_reads_transposed() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("hs.emd");
    let f = H5File::create(&p).unwrap();
    let g = f
        .create_group("signals")
        .unwrap()
        .create_group("img")
        .unwrap();
    g.set_attr_numeric("emd_group_type", &1i32).unwrap();
    g.set_attr_string("record_by", "image").unwrap();
    let v: Vec<i32> = (0..6).collect();
    g.new_dataset::<i32>()
        .shape([2, 3])
        .create("data")
        .unwrap()
        .write_raw(&v)
        .unwrap();
    for (k, n, unit) in [(1, 2usize, "nm"), (2, 3, "s")] {
        testfiles::berkeley_dim(&g, k, n, 0.5, &[("units", unit)]);
    }
    f.close().unwrap();
    let s_ = &read_signals(&p).unwrap().signals[0];
    assert_eq!((s_.dtype, s_.shape.clone()), (Dtype::I32, vec![3, 2]));
    assert_eq!(s_.to_f32(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_eq!(
        (s_.axes[0].unit.as_str(), s_.axes[1].kind),
        ("s", AxisKind::Length)
    );
    assert!((s_.axes[1].scale - 5.0).abs() < 1e-12);
}

/// A 16-bit TIFF keeps its dtype in `read_signals`/`convert` (before:
/// float32), and the calibration tags of DigitalMicrograph exports
/// (x and y may differ) and of FEI SEMs are read.
#[test]
fn tiff_stored_dtype_and_vendor_calibration_tags() {
    let tmp = tempfile::tempdir().unwrap();
    let v: Vec<u16> = (0..12).map(|i| 1000 + i).collect();
    type Dir<'a> = tiff::encoder::DirectoryEncoder<'a, fs::File, tiff::encoder::TiffKindStandard>;
    let write = |name: &str, tags: &dyn Fn(&mut Dir<'_>)| {
        let p = tmp.path().join(name);
        let mut enc = TiffEncoder::new(fs::File::create(&p).unwrap()).unwrap();
        let mut img = enc.new_image::<colortype::Gray16>(4, 3).unwrap();
        tags(img.encoder());
        img.write_data(&v).unwrap();
        p
    };
    let dm = write("dm.tif", &|e| {
        e.write_tag(Tag::Unknown(65012), "micrometer").unwrap();
        e.write_tag(Tag::Unknown(65013), "micrometer").unwrap();
        e.write_tag(Tag::Unknown(65009), 0.002f64).unwrap();
        e.write_tag(Tag::Unknown(65010), 0.004f64).unwrap();
    });
    let s_ = &read_signals(&dm).unwrap().signals[0];
    assert_eq!((s_.dtype, s_.shape.clone()), (Dtype::U16, vec![3, 4]));
    assert_eq!(s_.to_f32()[11], 1011.0);
    assert!((s_.axes[1].scale - 20.0).abs() < 1e-9 && (s_.axes[0].scale - 40.0).abs() < 1e-9);
    // x ≠ y: no single pixel size for the pipeline.
    assert_eq!(s_.pixel_size_angstrom(), None);

    let fei = write("fei.tif", &|e| {
        e.write_tag(
            Tag::Unknown(34682),
            "[User]\r\nDate=1\r\n[Scan]\r\nPixelWidth=3.5e-10\r\nPixelHeight=3.5e-10\r\n",
        )
        .unwrap();
    });
    let s_ = &read_signals(&fei).unwrap().signals[0];
    assert!((s_.pixel_size_angstrom().unwrap() - 3.5).abs() < 1e-9);
    assert!(
        (qdscope::io::read_tiff(&fei)
            .unwrap()
            .calibration
            .pixel_size_angstrom()
            .unwrap()
            - 3.5)
            .abs()
            < 1e-9
    );
}

/// Minimal little-endian palette TIFF (PhotometricInterpretation 3, a grey
/// ColorMap), 2 × 2 pixels of 8 bits.
fn palette_tiff() -> Vec<u8> {
    let entries: [(u16, u16, u32, u32); 10] = [
        (256, 3, 1, 2),
        (257, 3, 1, 2),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 3),
        (273, 4, 1, 0), // strip offset, patched below
        (277, 3, 1, 1),
        (278, 3, 1, 2),
        (279, 4, 1, 4),
        (320, 3, 768, 0), // colour map offset, patched below
    ];
    let ifd_len = 2 + entries.len() * 12 + 4;
    let strip = 8 + ifd_len as u32;
    let cmap = strip + 4;
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, ty, count, value) in entries {
        let value = match tag {
            273 => strip,
            320 => cmap,
            _ => value,
        };
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&[0, 85, 170, 255]);
    for _ in 0..3 {
        for i in 0..256u16 {
            out.extend_from_slice(&(i * 257).to_le_bytes());
        }
    }
    out
}

/// A palette TIFF (Zeiss SEM, AxioVision) is refused in words, one line,
/// no decoder Debug text.
#[test]
fn palette_tiff_is_refused_in_words() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("pal.tif");
    fs::write(&p, palette_tiff()).unwrap();
    let e = read_signals(&p).unwrap_err().to_string();
    assert!(e.contains("palette-colour TIFF") && !e.contains('`'), "{e}");
    fail(&["inspect", s(&p)], "palette-colour TIFF");
}
