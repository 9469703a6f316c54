//! Sizes derived from flags or calibrations are bounded before use: each
//! case that used to panic ("capacity overflow"), allocate gigabytes or
//! never return is a one-line error naming the value and the limit, exit 1.
//! A panic still keeps the one-line contract (`qdscope: internal error:`).
mod common;
use common::{fail, qdscope, s};

use ndarray::Array2;
use qdscope::image::{Calibration, Stack};
use qdscope::io;

/// A small calibrated two-frame stack with some structure (the commands
/// never get far with it), and its first frame as a single image.
fn image(dir: &std::path::Path) -> std::path::PathBuf {
    let frame = |d: f32| {
        Array2::from_shape_fn((96, 96), |(y, x)| {
            (((x as f32 + d) * 0.7).sin() * (y as f32 * 0.5).cos()).abs() + 1.0
        })
    };
    let path = dir.join("img.tif");
    let cal = Calibration::from_pixel_size(0.25).unwrap();
    let stack = Stack::from_frames(&[frame(0.0), frame(0.5)], cal).unwrap();
    io::write_tiff_stack_f32(&path, &stack).unwrap();
    let one = Stack::from_frames(&[frame(0.0)], cal).unwrap();
    io::write_tiff_stack_f32(&dir.join("one.tif"), &one).unwrap();
    path
}

#[test]
fn columns_lengths_in_px_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    image(tmp.path());
    let img = tmp.path().join("one.tif");
    let o = tmp.path().join("o");
    let run = |flag: &str, v: &str, needle: &str| {
        fail(&["columns", s(&img), "-o", s(&o), flag, v], needle);
    };
    run("--pixel-size-angstrom", "1e-300", "limit of 48 px");
    run(
        "--pixel-size-angstrom",
        "1e-7",
        "58700000 px, above the limit",
    );
    run("--lattice-angstrom", "1e300", "1e300 Å");
    run("--pixel-size-angstrom", "1e300", "below the limit of 4 px");
    assert!(!o.exists());
}

#[test]
fn prepare_kernels_and_upsampling_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let img = image(tmp.path());
    let o = tmp.path().join("o");
    let run = |flag: &str, v: &str, needle: &str| {
        fail(
            &["prepare", s(&img), "-o", s(&o), "--no-deconvolve", flag, v],
            needle,
        );
    };
    run(
        "--background-sigma-factor",
        "1e300",
        "above the limit of 360 px",
    );
    run(
        "--upsample",
        "1000000000",
        "--upsample: 1.000e9 is above the limit of 1000",
    );
    run(
        "--pixel-size-angstrom",
        "1e-300",
        "1.174e301 px is larger than the image",
    );
    assert!(!o.exists());
}

#[test]
fn simulate_grid_and_scan_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let o = tmp.path().join("o");
    let run = |flag: &str, v: &str, needle: &str| {
        fail(
            &["simulate", "--thickness-uc", "1..2", "-o", s(&o), flag, v],
            needle,
        );
    };
    run(
        "--sampling-angstrom",
        "1e-300",
        "above the limit of 16384 px",
    );
    run(
        "--probe-per-cell",
        "1000000000",
        "above the limit of 192 positions",
    );
    run(
        "--supercell-uc",
        "1000000000",
        "above the limit of 16384 px",
    );
    // A high tension far from any microscope hung the scan-step check.
    run(
        "--kv",
        "1e-9",
        "--kv: high tension must be 1 … 3000 kV, got 1e-9",
    );
    run(
        "--phonons",
        "1000000000",
        "above the limit of 10000 configurations",
    );
    assert!(!o.exists());
}

/// Counts a typo makes: an error before any work, not hours of iterations
/// or a failed multi-terabyte allocation.
#[test]
fn iteration_and_demo_counts_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let img = image(tmp.path());
    let o = tmp.path().join("o");
    for (flag, needle) in [
        (
            "--denoise-iterations",
            "--denoise-iterations: 1.000e9 iterations is above the limit of 10000",
        ),
        (
            "--deconv-iterations",
            "--deconv-iterations: 1.000e9 iterations is above the limit of 10000",
        ),
    ] {
        fail(
            &["prepare", s(&img), "-o", s(&o), flag, "1000000000"],
            needle,
        );
    }
    for (flag, needle) in [
        ("--frames", "frames is above the limit of 4096 frames"),
        ("--size-px", "above the limit of 16384 px"),
        ("--qds-per-group", "must be 1 … 100, got 100000000"),
    ] {
        fail(&["demo", "-o", s(&o), "-q", flag, "100000000"], needle);
    }
    assert!(!o.exists());
}

#[test]
fn a_panic_is_one_line_and_exit_1() {
    let a = qdscope()
        .env("QDSCOPE_TEST_PANIC", "1")
        .env_remove("RUST_BACKTRACE")
        .args(["inspect", "nothing"])
        .assert()
        .failure()
        .code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert_eq!(
        err,
        "qdscope: internal error: test panic requested by QDSCOPE_TEST_PANIC second line\n"
    );
    let a = qdscope()
        .env("QDSCOPE_TEST_PANIC", "1")
        .env("RUST_BACKTRACE", "1")
        .args(["inspect", "nothing"])
        .assert()
        .failure()
        .code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(
        err.lines().count() > 2 && err.contains("src/main.rs"),
        "{err}"
    );
}
