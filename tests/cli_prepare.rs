//! `qdscope prepare` end to end: outputs on good input, one-line errors and
//! no output on bad input.
use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use ndarray::{Array2, Array3};
use qdscope::image::{Calibration, Stack};
use qdscope::io;
use qdscope::stem::synth::{generate, SynthParams};

fn small_stack(dir: &Path) -> PathBuf {
    let p = SynthParams {
        rows: 128,
        cols: 128,
        frames: 4,
        n_cells: 6,
        ..SynthParams::default()
    };
    let (stack, _) = generate(&p).unwrap();
    let path = dir.join("stack.tif");
    io::write_tiff_stack_f32(&path, &stack).unwrap();
    path
}

fn qdscope() -> Command {
    Command::cargo_bin("qdscope").unwrap()
}

#[test]
fn prepare_writes_every_output() {
    let tmp = tempfile::tempdir().unwrap();
    let input = small_stack(tmp.path());
    let before = fs::read(&input).unwrap();
    let out = tmp.path().join("out");
    qdscope()
        .args([
            "prepare",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .assert()
        .success();
    for f in [
        "averaged.npy",
        "background.npy",
        "denoised.npy",
        "deconvolved.npy",
        "psf_initial.npy",
        "psf_final.npy",
        "prepared.npy",
        "shifts.csv",
        "prepare.json",
        "prepared.png",
        "stages.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let csv = fs::read_to_string(out.join("shifts.csv")).unwrap();
    assert!(csv.starts_with("frame,dy_px,dx_px,score\n"));
    assert_eq!(csv.lines().count(), 5);
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("prepare.json")).unwrap()).unwrap();
    assert_eq!(json["calibration"]["pixel_size_angstrom"], 0.25);
    assert_eq!(json["calibration_source"], "file");
    // Default radius 2a = 11.74 Å at 0.25 Å/px → 47 px.
    assert_eq!(json["background_radius_px"], 47);
    assert!(json["qdscope_version"].is_string());
    assert_eq!(
        json["stages"],
        serde_json::json!(["register+average", "background", "denoise", "deconvolve"])
    );
    assert_eq!(json["parameters"]["microscope"]["high_tension_kv"], 300.0);
    // PSF from 300 kV, 18 mrad at 0.25 Å/px: h = round(3·0.667/0.25) = 8 → 17×17, sum 1.
    let psf = io::read_image(&out.join("psf_initial.npy")).unwrap();
    assert_eq!(psf.data.dim(), (17, 17));
    assert!((psf.data.sum() - 1.0).abs() < 1e-5);
    // The final image is the deconvolved one.
    assert_eq!(
        io::read_image(&out.join("prepared.npy")).unwrap().data,
        io::read_image(&out.join("deconvolved.npy")).unwrap().data
    );
    let img = io::read_image(&out.join("prepared.npy")).unwrap();
    assert!(img.data.nrows() > 100 && img.data.ncols() > 100);
    // The input was not modified; no temp files left behind.
    assert_eq!(fs::read(&input).unwrap(), before);
    for e in fs::read_dir(&out).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(!name.contains("tmp"), "left-over {name}");
    }
}

#[test]
fn two_d_input_skips_registration_and_flags_override() {
    let tmp = tempfile::tempdir().unwrap();
    let p = SynthParams {
        rows: 96,
        cols: 96,
        frames: 1,
        n_cells: 4,
        ..SynthParams::default()
    };
    let (stack, _) = generate(&p).unwrap();
    let npy = tmp.path().join("img.npy");
    io::write_npy_2d(&npy, stack.frame(0)).unwrap();
    let out = tmp.path().join("o");
    qdscope()
        .args([
            "prepare",
            npy.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .args(["--pixel-size-angstrom", "0.5", "--quiet"])
        .assert()
        .success();
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("prepare.json")).unwrap()).unwrap();
    assert_eq!(json["registered"], false);
    assert_eq!(json["calibration_source"], "user");
    assert_eq!(json["background_radius_px"], 23); // 11.74 Å / 0.5 = 23.48 → 23
}

#[test]
fn config_file_sets_parameters_and_flags_win() {
    let tmp = tempfile::tempdir().unwrap();
    let input = small_stack(tmp.path());
    let cfg = tmp.path().join("p.toml");
    fs::write(
        &cfg,
        "[background]\nradius = { px = 20.0 }\nsigma_factor = 0.5\n[register]\nupsample = 10\n",
    )
    .unwrap();
    let out = tmp.path().join("o");
    qdscope()
        .args([
            "prepare",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .args(["--config", cfg.to_str().unwrap(), "--upsample", "50"])
        .assert()
        .success();
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("prepare.json")).unwrap()).unwrap();
    assert_eq!(json["background_radius_px"], 20);
    assert_eq!(json["background_sigma_px"], 10.0);
    assert_eq!(json["parameters"]["register"]["upsample"], 50);
}

/// Run prepare on `input` with `extra` flags; expect exit 1, one stderr line
/// that names `names` and contains `needle`, and no output directory content.
fn fails(input: &Path, extra: &[&str], needle: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let a = qdscope()
        .args([
            "prepare",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .args(extra)
        .assert()
        .code(1);
    let err = String::from_utf8(a.get_output().stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("qdscope: error: "), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
    let n = if out.exists() {
        fs::read_dir(&out).unwrap().count()
    } else {
        0
    };
    assert_eq!(n, 0, "partial output written");
}

fn npy_bytes(shape: &str, payload: &[u8]) -> Vec<u8> {
    let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(h.len() as u16).to_le_bytes());
    v.extend_from_slice(h.as_bytes());
    v.extend_from_slice(payload);
    v
}

#[test]
fn bad_inputs_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let good = small_stack(d);
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_string();

    // Missing file.
    let missing = d.join("nope.tif");
    fails(&missing, &[], "nope.tif");
    // Unknown format.
    let txt = d.join("notes.txt");
    fs::write(&txt, "hello").unwrap();
    fails(&txt, &[], &name(&txt));
    // Truncated NPY, TIFF and MRC.
    let npy = d.join("trunc.npy");
    fs::write(&npy, npy_bytes("(8, 8)", &[0u8; 100])).unwrap();
    fails(&npy, &[], "trunc.npy");
    let bytes = fs::read(&good).unwrap();
    let ttif = d.join("trunc.tif");
    fs::write(&ttif, &bytes[..bytes.len() / 2]).unwrap();
    fails(&ttif, &[], "trunc.tif");
    let mrc = d.join("trunc.mrc");
    let stack = Stack::new(Array3::<f32>::ones((2, 16, 16)), Calibration::Uncalibrated).unwrap();
    io::write_mrc_f32(&mrc, &stack).unwrap();
    let b = fs::read(&mrc).unwrap();
    fs::write(&mrc, &b[..1024 + 100]).unwrap();
    fails(&mrc, &[], "trunc.mrc");
    // Corrupt TIFF: magic then garbage.
    let ctif = d.join("corrupt.tif");
    let mut junk = b"II*\x00".to_vec();
    junk.extend((0..200u32).map(|i| (i * 37 % 251) as u8));
    fs::write(&ctif, junk).unwrap();
    fails(&ctif, &[], "corrupt.tif");
    // 1-D array.
    let one_d = d.join("line.npy");
    fs::write(&one_d, npy_bytes("(4,)", &[0u8; 16])).unwrap();
    fails(&one_d, &[], "line.npy");
    // Empty stack (0 frames).
    let empty = d.join("empty.npy");
    fs::write(&empty, npy_bytes("(0, 8, 8)", &[])).unwrap();
    fails(&empty, &[], "empty.npy");
    // NaN pixels.
    let mut a = Array2::<f32>::from_shape_fn((64, 64), |(y, x)| ((x * 7 + y * 3) % 11) as f32);
    a[[5, 9]] = f32::NAN;
    let nan = d.join("nan.npy");
    io::write_npy_2d(&nan, a.view()).unwrap();
    fails(&nan, &["--background-radius-px", "5"], "y=5, x=9");
    // Radius ≤ 0, larger than the image, in Å without calibration.
    fails(
        &good,
        &["--background-radius-px", "0"],
        "--background-radius-px",
    );
    fails(
        &good,
        &["--background-radius-angstrom=-3"],
        "--background-radius-angstrom",
    );
    fails(
        &good,
        &["--background-radius-px", "5000"],
        "larger than the image",
    );
    let uncal = d.join("uncal.npy");
    a[[5, 9]] = 1.0;
    io::write_npy_2d(&uncal, a.view()).unwrap();
    fails(&uncal, &[], "uncalibrated");
    // Constant image.
    let flat = d.join("flat.npy");
    io::write_npy_2d(&flat, Array2::<f32>::ones((32, 32)).view()).unwrap();
    fails(
        &flat,
        &["--background-radius-px", "4", "--no-deconvolve"],
        "constant",
    );
    // Bad config file.
    let cfg = d.join("bad.toml");
    fs::write(&cfg, "[background\nradius=").unwrap();
    fails(&good, &["--config", cfg.to_str().unwrap()], "bad.toml");
}

#[test]
fn frames_of_different_shapes_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("mixed.tif");
    // Two pages of different size, written with the tiff encoder directly.
    {
        let f = fs::File::create(&path).unwrap();
        let mut enc = tiff::encoder::TiffEncoder::new(f).unwrap();
        enc.write_image::<tiff::encoder::colortype::Gray32Float>(8, 8, &[1.0f32; 64])
            .unwrap();
        enc.write_image::<tiff::encoder::colortype::Gray32Float>(8, 6, &[1.0f32; 48])
            .unwrap();
    }
    fails(&path, &[], "mixed.tif");
}

#[test]
fn usage_errors_exit_2() {
    qdscope().args(["prepare"]).assert().code(2);
    qdscope()
        .args(["prepare", "x.tif", "-o", "o", "--background-radius-px", "3"])
        .args(["--background-radius-angstrom", "3"])
        .assert()
        .code(2);
}

#[test]
fn deconvolution_inputs_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let good = small_stack(d);
    // PSF files: wrong rank, negative, all zero, larger than the image, NaN.
    let stack3 = Stack::new(Array3::<f32>::ones((2, 5, 5)), Calibration::Uncalibrated).unwrap();
    let rank3 = d.join("psf3.npy");
    io::write_npy_3d(&rank3, stack3.data.view()).unwrap();
    fails(&good, &["--psf", rank3.to_str().unwrap()], "--psf");
    for (name, psf, needle) in [
        (
            "neg.npy",
            Array2::<f32>::from_elem((5, 5), -1.0),
            "negative",
        ),
        ("zero.npy", Array2::<f32>::zeros((5, 5)), "all zero"),
        (
            "big.npy",
            Array2::<f32>::ones((300, 300)),
            "larger than the image",
        ),
        (
            "nanpsf.npy",
            Array2::<f32>::from_elem((5, 5), f32::NAN),
            "non-finite",
        ),
    ] {
        let p = d.join(name);
        io::write_npy_2d(&p, psf.view()).unwrap();
        fails(&good, &["--psf", p.to_str().unwrap()], needle);
    }
    // Microscope and iteration counts.
    fails(&good, &["--kv=0"], "--kv");
    fails(&good, &["--convergence-mrad=-2"], "--convergence-mrad");
    fails(&good, &["--convergence-mrad", "150"], "--convergence-mrad");
    fails(&good, &["--deconv-iterations", "0"], "--deconv-iterations");
    fails(&good, &["--psf-half-width-px", "0"], "--psf-half-width-px");
    // A pixel size too coarse for the probe: say so and by how much.
    fails(&good, &["--pixel-size-angstrom", "2"], "too coarse");
    // A good PSF file works.
    let ok = d.join("ok.npy");
    let mut g = Array2::<f32>::zeros((7, 7));
    g[[3, 3]] = 2.0;
    g[[3, 4]] = 1.0;
    io::write_npy_2d(&ok, g.view()).unwrap();
    let out = d.join("o");
    qdscope()
        .args([
            "prepare",
            good.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--psf",
            ok.to_str().unwrap(),
        ])
        .args(["--denoise-iterations", "5"])
        .assert()
        .success();
    assert_eq!(
        io::read_image(&out.join("psf_initial.npy"))
            .unwrap()
            .data
            .dim(),
        (7, 7)
    );
}
