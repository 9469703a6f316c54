//! `qdscope columns`, `analyze` and `compare` end to end: outputs, the CSV
//! contract, and one-line errors (never a panic) on bad input.
use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use ndarray::Array2;
use qdscope::image::{Calibration, Image, Stack};
use qdscope::io;
use qdscope::stem::synth::{generate, render_scene, SynthParams};

fn qdscope() -> Command {
    Command::cargo_bin("qdscope").unwrap()
}

fn scene(ratio: f64) -> SynthParams {
    SynthParams {
        rows: 192,
        cols: 192,
        frames: 4,
        n_cells: 6,
        ratio_cs_pbbr: ratio,
        ..SynthParams::default()
    }
}

/// A noise-free calibrated image (TIFF) of a 6-cell QD without background.
fn clean_image(dir: &Path, ratio: f64) -> PathBuf {
    let p = SynthParams {
        pedestal: 0.0,
        support_level: 0.0,
        support_variation: 0.0,
        ..scene(ratio)
    };
    let (img, _) = render_scene(&p).unwrap();
    let cal = Calibration::from_pixel_size(0.25).unwrap();
    let path = dir.join(format!("clean-{ratio}.tif"));
    let stack = Stack::from_image(Image::new(img.mapv(|v| v as f32), cal)).unwrap();
    io::write_tiff_stack_f32(&path, &stack).unwrap();
    path
}

fn noisy_stack(dir: &Path, name: &str, ratio: f64, seed: u64) -> PathBuf {
    let (stack, _) = generate(&SynthParams {
        seed,
        ..scene(ratio)
    })
    .unwrap();
    let path = dir.join(name);
    io::write_tiff_stack_f32(&path, &stack).unwrap();
    path
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn columns_writes_the_contract_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let input = clean_image(tmp.path(), 0.35);
    let before = fs::read(&input).unwrap();
    let out = tmp.path().join("cols");
    qdscope()
        .args([
            "columns",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .assert()
        .success();
    assert_eq!(fs::read(&input).unwrap(), before, "input modified");
    for f in [
        "columns.csv",
        "fits.csv",
        "lattice.csv",
        "summary.json",
        "overlay.png",
        "spacing.png",
        "spacing_map.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let csv = fs::read_to_string(out.join("columns.csv")).unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "id,sublattice,x_px,y_px,x_angstrom,y_angstrom,height,volume,sigma_x_angstrom,sigma_y_angstrom,rotation_rad,baseline,residual,converged,flag"
    );
    // 7×7 Cs + 6×6 Pb/Br columns.
    assert_eq!(csv.lines().count(), 1 + 49 + 36);
    let s = json(&out.join("summary.json"));
    for k in [
        "ratio_volume_mean",
        "ratio_volume_sd",
        "ratio_height_mean",
        "ratio_height_sd",
        "ci95",
        "n_cs",
        "n_pbbr",
        "n_br",
        "n_failed",
        "lattice_spacing_angstrom",
        "lattice_spacing_sd_angstrom",
    ] {
        assert!(!s[k].is_null(), "{k} missing or null");
    }
    assert!(
        (s["ratio_volume_mean"].as_f64().unwrap() - 0.35).abs() < 1e-3,
        "{s}"
    );
    assert!((s["lattice_spacing_angstrom"].as_f64().unwrap() - 5.87).abs() < 0.01);
    assert_eq!(s["n_cs"], 49);
    assert_eq!(s["n_failed"], 0);
}

#[test]
fn columns_bad_inputs_fail_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cal = Calibration::from_pixel_size(0.25).unwrap();
    let write = |name: &str, a: Array2<f32>| {
        let p = tmp.path().join(name);
        io::write_tiff_f32(&p, &Image::new(a, cal)).unwrap();
        p
    };
    let flat = write("flat.tif", Array2::from_elem((64, 64), 1.0));
    let mut s = 7u64;
    let noise = write(
        "noise.tif",
        Array2::from_shape_fn((128, 128), |_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 40) as f32
        }),
    );
    let mut nan = Array2::from_elem((64, 64), 1.0f32);
    nan[[3, 4]] = f32::NAN;
    let nan = write("nan.tif", nan);
    let uncal = tmp.path().join("uncal.npy");
    io::write_npy_2d(&uncal, Array2::from_elem((64, 64), 1.0f32).view()).unwrap();
    let corrupt = tmp.path().join("corrupt.tif");
    fs::write(&corrupt, b"II*\0garbage").unwrap();
    for (path, needle) in [
        (&flat, "no crystal lattice"),
        (&noise, "lattice"),
        (&nan, "non-finite"),
        (&uncal, "uncalibrated"),
        (&corrupt, "corrupt.tif"),
    ] {
        let out = tmp.path().join(format!(
            "out-{}",
            path.file_stem().unwrap().to_string_lossy()
        ));
        let a = qdscope()
            .args([
                "columns",
                path.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ])
            .assert()
            .failure()
            .code(1);
        let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("qdscope: error: "), "{err}");
        assert!(err.contains(needle), "{path:?}: {err}");
        assert!(!out.join("columns.csv").exists());
    }
    // All fits failing: a fit disk too small to hold 7 pixels (the disk is
    // the single-column fit's; the joint fit has none).
    let good = clean_image(tmp.path(), 0.35);
    let a = qdscope()
        .args([
            "columns",
            good.to_str().unwrap(),
            "-o",
            tmp.path().join("tiny").to_str().unwrap(),
            "--neighbours",
            "single",
            "--fit-radius-angstrom",
            "0.2",
        ])
        .assert()
        .failure()
        .code(1);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("column fits failed"));
}

#[test]
fn analyze_skips_a_bad_input_and_compare_reports_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let a1 = noisy_stack(tmp.path(), "core-a.tif", 0.33, 1);
    let a2 = noisy_stack(tmp.path(), "core-b.tif", 0.33, 2);
    let b1 = noisy_stack(tmp.path(), "shell-a.tif", 0.37, 3);
    let bad = tmp.path().join("broken.tif");
    fs::write(&bad, b"not a tiff at all").unwrap();
    let out = tmp.path().join("an");
    let a = qdscope()
        .args([
            "analyze",
            a1.to_str().unwrap(),
            bad.to_str().unwrap(),
            a2.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .assert()
        .failure()
        .code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(
        err.contains("broken.tif") && err.contains("1 of 3 inputs failed"),
        "{err}"
    );
    let csv = fs::read_to_string(out.join("summary.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0]
        .starts_with("input,status,error,output_dir,n_cs,n_pbbr,n_br,n_failed,ratio_volume_mean"));
    assert!(lines[2].contains(",failed,"));
    assert!(lines[1].contains(",ok,") && lines[3].contains(",ok,"));
    for stem in ["core-a", "core-b"] {
        assert!(out.join(stem).join("prepared.npy").is_file());
        assert!(out.join(stem).join("columns.csv").is_file());
    }
    // compare: the analyze dir as one group, a single QD as the other.
    let out_b = tmp.path().join("shell");
    qdscope()
        .args([
            "analyze",
            b1.to_str().unwrap(),
            "-o",
            out_b.to_str().unwrap(),
        ])
        .assert()
        .success();
    let cmp = tmp.path().join("cmp");
    let a = qdscope()
        .args([
            "compare",
            "--group",
            "core",
            out.to_str().unwrap(),
            "--group",
            "coreshell",
            out_b.join("shell-a").to_str().unwrap(),
            "-o",
            cmp.to_str().unwrap(),
        ])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("no s.d. and no t-test"), "{err}");
    let c = json(&cmp.join("comparison.json"));
    assert_eq!(c["groups"][0]["n"], 2);
    assert_eq!(c["groups"][1]["n"], 1);
    assert!(c["groups"][1]["ratio_volume_sd"].is_null());
    assert!(c["tests"][0]["volume"].is_null());
    assert!(c["tests"][0]["note"]
        .as_str()
        .unwrap()
        .contains("at least 2"));
    assert!(cmp.join("comparison.png").is_file());
    // Mismatched groups: the same directory in both; a directory without results.
    for (g1, g2, needle) in [
        (out.to_str().unwrap(), out.join("core-a"), "more than once"),
        (
            out.to_str().unwrap(),
            tmp.path().to_path_buf(),
            "no summary.json",
        ),
    ] {
        let a = qdscope()
            .args([
                "compare",
                "--group",
                "x",
                g1,
                "--group",
                "y",
                g2.to_str().unwrap(),
                "-o",
                tmp.path().join("cmp2").to_str().unwrap(),
            ])
            .assert()
            .failure()
            .code(1);
        let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
        assert!(err.contains(needle), "{err}");
        // The library names the field (`groups`); the CLI prints the flag.
        assert!(err.contains("--group"), "{err}");
        assert_eq!(err.lines().count(), 1);
    }
}

/// The joint volumes are measured on the registered average: `columns`
/// takes `averaged.npy` next to a `prepared.npy` (or `--linear-image`),
/// warns when it has none, and refuses an average of another size.
#[test]
fn columns_takes_the_linear_image_next_to_a_prepared_image() {
    let tmp = tempfile::tempdir().unwrap();
    let p = SynthParams {
        pedestal: 0.0,
        support_level: 0.0,
        support_variation: 0.0,
        ..scene(0.35)
    };
    let (img, _) = render_scene(&p).unwrap();
    let img = img.mapv(|v| v as f32);
    let dir = tmp.path().join("prep");
    fs::create_dir_all(&dir).unwrap();
    io::write_npy_2d(&dir.join("prepared.npy"), img.view()).unwrap();
    io::write_npy_2d(&dir.join("averaged.npy"), img.view()).unwrap();
    let run = |image: &Path, extra: &[&str], out: &str| {
        let mut args = vec![
            "columns".to_string(),
            image.display().to_string(),
            "-o".into(),
            tmp.path().join(out).display().to_string(),
            "--pixel-size-angstrom".into(),
            "0.25".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        qdscope().args(&args).assert()
    };
    let warning = "measured on this image itself";
    let a = run(&dir.join("prepared.npy"), &[], "with-average").success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(!err.contains(warning), "{err}");
    // The same image elsewhere, without its average: measured on itself.
    let alone = tmp.path().join("alone.npy");
    fs::copy(dir.join("prepared.npy"), &alone).unwrap();
    let a = run(&alone, &[], "alone").success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains(warning), "{err}");
    // An average of another size: one line naming it, exit 1, no output.
    let small = tmp.path().join("small.npy");
    io::write_npy_2d(&small, img.slice(ndarray::s![..100, ..100])).unwrap();
    let a = run(&alone, &["--linear-image", small.to_str().unwrap()], "bad")
        .failure()
        .code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("linear image"), "{err}");
    assert!(!tmp.path().join("bad").join("columns.csv").exists());
}
