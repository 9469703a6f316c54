//! `qdscope phonon …` end to end on generated CP2K-format files: outputs,
//! units in the headers, and one-line errors on bad input.
mod common;
use common::{fail, qdscope, s};
use std::fs;

use qdscope::phonon::synth::{gap_series, write_cluster, write_gap, Grid, SPEC_GRID};

#[test]
fn coupling_dephasing_histogram() {
    let tmp = tempfile::tempdir().unwrap();
    let g = SPEC_GRID;
    let gap = gap_series(&g, 2400.0, &[(5.0, 20.0), (40.0, 0.5)], 1);
    let f = tmp.path().join("gap.dat");
    write_gap(&f, &g, &gap).unwrap();
    let out = tmp.path().join("c");
    qdscope()
        .args([
            "phonon",
            "coupling",
            s(&f),
            "-o",
            s(&out),
            "--temperature-k",
            "10",
        ])
        .assert()
        .success();
    let bands = fs::read_to_string(out.join("bands.csv")).unwrap();
    assert!(bands.starts_with("lo_mev,hi_mev,centre_mev,s_band,lambda_share_mev\n"));
    // T3: S₂ = 20.678338, S₇ = 0, S₁₇ = 0.4865491.
    let s2: f64 = bands
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert!((s2 - 20.678338).abs() < 1e-5, "{s2}");
    assert!(fs::read_to_string(out.join("huang_rhys.csv"))
        .unwrap()
        .starts_with(
        "energy_mev,frequency_thz,wavenumber_cm1,power_mev2,s,s_per_mev,cumulative_lambda_mev\n"
    ));
    assert!(fs::read_to_string(out.join("gamma.csv"))
        .unwrap()
        .starts_with("temperature_k,sigma_mev,gamma_mev\n"));
    let j: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("coupling.json")).unwrap()).unwrap();
    assert!(
        (j["lambda_mev"].as_f64().unwrap() - (20.678338 * 2.0 + 0.4865491 * 17.0)).abs() < 1e-4
    );
    assert!(out.join("huang_rhys.png").is_file());
    let d = tmp.path().join("d");
    qdscope()
        .args([
            "phonon",
            "dephasing",
            s(&f),
            "-o",
            s(&d),
            "--temperature-k",
            "10",
        ])
        .assert()
        .success();
    for name in [
        "dephasing.csv",
        "acf.csv",
        "dephasing.json",
        "dephasing.png",
    ] {
        assert!(d.join(name).is_file(), "{name}");
    }
    let h = tmp.path().join("h");
    let f2 = tmp.path().join("gap2.dat");
    write_gap(&f2, &g, &gap_series(&g, 2500.0, &[(5.0, 2.0)], 2)).unwrap();
    qdscope()
        .args([
            "phonon",
            "histogram",
            s(&f),
            s(&f2),
            "--labels",
            "full,frozen",
            "-o",
            s(&h),
        ])
        .assert()
        .success();
    assert!(fs::read_to_string(h.join("histogram.csv"))
        .unwrap()
        .starts_with("run,gap_mev,count\n"));
    // Bad input.
    fail(
        &[
            "phonon",
            "coupling",
            s(&f),
            "-o",
            s(&out),
            "--temperature-k",
            "0",
        ],
        "--temperature-k",
    );
    fail(
        &[
            "phonon",
            "coupling",
            s(&f),
            "-o",
            s(&out),
            "--temperature-k",
            "10",
            "--bands-mev",
            "0:4,300:400",
        ],
        "Nyquist",
    );
    fail(
        &[
            "phonon",
            "coupling",
            s(&f),
            "-o",
            s(&out),
            "--temperature-k",
            "10",
            "--bands-mev",
            "0:4,3:10",
        ],
        "overlap",
    );
    let short = tmp.path().join("short.dat");
    fs::write(&short, "0 2.4\n10 2.41\n20 2.42\n").unwrap();
    fail(
        &[
            "phonon",
            "coupling",
            s(&short),
            "-o",
            s(&tmp.path().join("x")),
            "--temperature-k",
            "10",
        ],
        "at least 4",
    );
    fail(
        &[
            "phonon",
            "dephasing",
            s(&short),
            "-o",
            s(&tmp.path().join("x")),
            "--temperature-k",
            "10",
        ],
        "too short",
    );
    let nan = tmp.path().join("nan.dat");
    fs::write(&nan, "0 2.4\n10 nan\n20 2.42\n30 2.4\n").unwrap();
    fail(
        &[
            "phonon",
            "coupling",
            s(&nan),
            "-o",
            s(&tmp.path().join("x")),
            "--temperature-k",
            "10",
        ],
        "line 2",
    );
    assert!(!tmp.path().join("x").exists(), "no partial output");
}

#[test]
fn dos_and_rmsf_on_a_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let g = Grid {
        frames: 300,
        dt_fs: 5.0,
        temperature_k: 300.0,
    };
    write_cluster(
        tmp.path(),
        "qd",
        3,
        &g,
        &|el| if el == "Pb" { 3.0 } else { 6.0 },
        5,
    )
    .unwrap();
    let (pos, vel) = (
        tmp.path().join("qd-pos-1.xyz"),
        tmp.path().join("qd-vel-1.xyz"),
    );
    let out = tmp.path().join("dos");
    qdscope()
        .args([
            "phonon",
            "dos",
            s(&pos),
            "--velocities",
            s(&vel),
            "-o",
            s(&out),
            "--temperature-k",
            "300",
        ])
        .assert()
        .success();
    let csv = fs::read_to_string(out.join("dos.csv")).unwrap();
    assert!(csv.starts_with("energy_mev,frequency_thz,wavenumber_cm1,total_modes_per_bin,total_modes_per_mev,eq1_total_modes_per_mev,unweighted_a2_per_fs2_per_bin,Br_modes_per_bin,Cs_modes_per_bin,Pb_modes_per_bin\n"), "{}", &csv[..200]);
    let j: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("dos.json")).unwrap()).unwrap();
    assert_eq!(j["expected_modes"], 75.0);
    assert!(
        (j["sum_modes"].as_f64().unwrap() / 75.0 - 1.0).abs() < 0.05,
        "{j}"
    );
    // Measured normalisation temperature from a .ener file (mean 340 K:
    // Σg scales by 300/340, and the > 10 % mismatch is reported).
    let ener = tmp.path().join("qd-1.ener");
    let mut text = String::from("# Step Time Kin Temp Pot Cons Used\n");
    for i in 0..300 {
        text += &format!("{i} {} 0.01 340.0 -1.0 -0.99 0.0\n", i as f64 * 5.0);
    }
    fs::write(&ener, text).unwrap();
    let out2 = tmp.path().join("dos2");
    let a = qdscope()
        .args([
            "phonon",
            "dos",
            s(&pos),
            "--velocities",
            s(&vel),
            "-o",
            s(&out2),
            "--temperature-k",
            "300",
            "--ener",
            s(&ener),
            "--t-norm",
            "measured",
        ])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("more than 10 %"));
    let j2: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out2.join("dos.json")).unwrap()).unwrap();
    let ratio = j2["sum_modes"].as_f64().unwrap() / j["sum_modes"].as_f64().unwrap();
    assert!((ratio - 300.0 / 340.0).abs() < 1e-9, "{ratio}");
    fail(
        &[
            "phonon",
            "dos",
            s(&pos),
            "--velocities",
            s(&vel),
            "-o",
            s(&tmp.path().join("z")),
            "--temperature-k",
            "300",
            "--t-norm",
            "measured",
        ],
        "--ener",
    );
    let r = tmp.path().join("rmsf");
    qdscope()
        .args(["phonon", "rmsf", s(&pos), "-o", s(&r)])
        .assert()
        .success();
    for name in [
        "rmsf_atoms.csv",
        "rmsf_elements.csv",
        "rmsf_layers.csv",
        "rmsf.json",
        "rmsf.png",
    ] {
        assert!(r.join(name).is_file(), "{name}");
    }
    // Truncated last frame: error naming the file and line.
    let text = fs::read_to_string(&pos).unwrap();
    let cut = tmp.path().join("cut-pos-1.xyz");
    fs::write(&cut, &text[..text.len() - 60]).unwrap();
    fail(
        &["phonon", "rmsf", s(&cut), "-o", s(&tmp.path().join("y"))],
        "truncated",
    );
    // Velocity route without velocities.
    fail(
        &[
            "phonon",
            "dos",
            s(&pos),
            "-o",
            s(&tmp.path().join("y")),
            "--temperature-k",
            "300",
        ],
        "velocit",
    );
    assert!(!tmp.path().join("y").exists());
}
