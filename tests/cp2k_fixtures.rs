//! The phonon half on real CP2K output (fixtures/cp2k, made by
//! `fixtures/cp2k/regenerate.sh` from `qdscope build-qd` inputs: GFN1-xTB,
//! Cs19Pb8Br36, 200 NVT steps of 5 fs restarted from a 20-step
//! equilibration). Readers: step counts, MO/step alignment, velocity units
//! (kinetic energy and temperature from the velocity file against CP2K's
//! own `.ener` columns); then every `qdscope phonon` command end to end.
mod common;
use common::{fail, qdscope, s};
use std::fs;
use std::path::{Path, PathBuf};

use qdscope::io::cp2k::{read_ener, read_molog};
use qdscope::io::xyz::{VelocityUnit, XyzReader};
use qdscope::units::{AMU_A2_PER_FS2_EV, KB_EV_PER_K};

fn fx(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/cp2k")
        .join(name)
}

fn frames(name: &str) -> Vec<qdscope::io::xyz::Frame> {
    XyzReader::open(&fx(name))
        .unwrap()
        .collect::<qdscope::Result<Vec<_>>>()
        .unwrap()
}

/// CP2K's degrees of freedom from the log excerpt (`DOF| Degrees of freedom`).
fn dof() -> f64 {
    let log = fs::read_to_string(fx("cp2k-md.out.excerpt")).unwrap();
    log.lines()
        .find(|l| l.contains("DOF| Degrees of freedom"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn readers_agree_with_cp2k_on_steps_and_units() {
    let ener = read_ener(&fx("qd_n2_md-1.ener")).unwrap();
    assert_eq!(ener.len(), 200);
    assert_eq!(ener[0].step, 21, "restarted run continues the counter");
    assert!(ener.windows(2).all(|w| w[1].step == w[0].step + 1));
    let pos = frames("qd_n2_md-pos-1.xyz");
    let vel = frames("qd_n2_md-vel-1.xyz");
    assert_eq!(pos.len(), ener.len());
    assert_eq!(vel.len(), ener.len());
    for ((p, v), e) in pos.iter().zip(&vel).zip(&ener) {
        assert_eq!(p.step, Some(e.step));
        assert_eq!(v.step, Some(e.step));
        assert!((p.time_fs.unwrap() - e.time_fs).abs() < 1e-6);
    }
    // Atom order is the builder's (qd.xyz): CP2K keeps it.
    let qd = frames("qd.xyz");
    assert_eq!(pos[0].species, qd[0].species);
    assert_eq!(pos[0].species.len(), 63);
    // Velocities: bohr/a.u.t → Å/fs reproduces CP2K's kinetic energy and,
    // with its 183 = 3N − 6 degrees of freedom, the temperature column.
    assert_eq!(dof(), 183.0);
    let k = VelocityUnit::BohrPerAut.to_angstrom_per_fs();
    for (v, e) in vel.iter().zip(&ener).step_by(20) {
        let ke: f64 = v
            .species
            .iter()
            .zip(&v.xyz)
            .map(|(el, x)| {
                let m = qdscope::phonon::rigid::mass_amu(el).unwrap();
                0.5 * m * (x[0] * x[0] + x[1] * x[1] + x[2] * x[2]) * k * k * AMU_A2_PER_FS2_EV
            })
            .sum();
        assert!(
            (ke / e.kinetic_ev - 1.0).abs() < 1e-6,
            "step {}: {ke} vs {}",
            e.step,
            e.kinetic_ev
        );
        let t = 2.0 * ke / (dof() * KB_EV_PER_K);
        assert!(
            (t / e.temperature_k - 1.0).abs() < 1e-5,
            "T {t} vs {}",
            e.temperature_k
        );
    }
    // MOLog: one `AFTER SCF STEP` block skipped, then the restart point
    // (step 20) and one block per printed step.
    let mo = read_molog(&[fx("qd_n2_md-mo.MOLog").as_path()], None).unwrap();
    assert_eq!(mo.homo_index, 152, "from the MO| Sum: line (304 electrons)");
    assert_eq!(mo.homo_lumo.len(), ener.len() + 1);
    for (h, l) in &mo.homo_lumo {
        let gap = l - h;
        assert!(gap > 0.5 && gap < 1.5, "closed-shell xTB gap {gap} eV");
    }
    // The generated input the fixture ran is the one build-qd makes today.
    let tmp = tempfile::tempdir().unwrap();
    qdscope()
        .args([
            "build-qd",
            "--size",
            "2",
            "--method",
            "xtb",
            "--cell-nm",
            "3.0",
            "--equil-steps",
            "20",
            "--steps",
            "200",
            "--mo-margin",
            "5",
            "-o",
        ])
        .arg(tmp.path())
        .assert()
        .success();
    let strip = |t: String| {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for f in ["cp2k-geo.inp", "cp2k-md-equil.inp", "cp2k-md.inp", "qd.xyz"] {
        assert_eq!(
            strip(fs::read_to_string(tmp.path().join(f)).unwrap()),
            strip(fs::read_to_string(fx(f)).unwrap()),
            "{f} differs from what build-qd generates: rerun fixtures/cp2k/regenerate.sh"
        );
    }
}

#[test]
fn phonon_half_runs_on_the_real_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (pos, vel, ener, mo) = (
        fx("qd_n2_md-pos-1.xyz"),
        fx("qd_n2_md-vel-1.xyz"),
        fx("qd_n2_md-1.ener"),
        fx("qd_n2_md-mo.MOLog"),
    );
    // VDOS from velocities: ≈ 3N − 6 = 183 modes (equipartition), with one
    // 1-ps segment (shorter segments lose the soft modes to the mean removal:
    // 100 frames give 147).
    let d = tmp.path().join("dos");
    qdscope()
        .args([
            "phonon",
            "dos",
            s(&pos),
            "--velocities",
            s(&vel),
            "--temperature-k",
            "300",
        ])
        .args([
            "--segment-frames",
            "200",
            "--ener",
            s(&ener),
            "--t-norm",
            "measured",
            "-o",
            s(&d),
        ])
        .assert()
        .success();
    let j: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(d.join("dos.json")).unwrap()).unwrap();
    let modes = j["sum_modes"].as_f64().unwrap_or(f64::NAN);
    assert!((modes - 183.0).abs() / 183.0 < 0.05, "Σg = {modes}: {j}");
    assert_eq!(j["expected_modes"], 183.0);
    assert!(d.join("dos.csv").is_file() && d.join("dos.png").is_file());

    // RMSF: per element and layer.
    let r = tmp.path().join("rmsf");
    qdscope()
        .args(["phonon", "rmsf", s(&pos), "-o", s(&r)])
        .assert()
        .success();
    let el = fs::read_to_string(r.join("rmsf_elements.csv")).unwrap();
    assert!(el.starts_with("element,rmsf_mean_angstrom,rmsf_sd_angstrom,count\n"));
    for line in el.lines().skip(1) {
        let v: f64 = line.split(',').nth(1).unwrap().parse().unwrap();
        assert!(v > 0.02 && v < 1.0, "{line}");
    }
    let layers = fs::read_to_string(r.join("rmsf_layers.csv")).unwrap();
    assert!(layers.contains("Pb,0.5,"), "{layers}");

    // Gap half from the MOLog, paired with the .ener (Δt and step count).
    let c = tmp.path().join("coupling");
    let a = qdscope()
        .args([
            "phonon",
            "coupling",
            s(&mo),
            "--ener",
            s(&ener),
            "--temperature-k",
            "300",
        ])
        .args(["--bands-mev", "0:10,10:30", "-o", s(&c)])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("restart point (step 20)"), "{err}");
    let hr: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(c.join("coupling.json")).unwrap()).unwrap();
    assert!(hr.to_string().contains("\"dt_fs\":5.0"), "{hr}");
    let dp = tmp.path().join("dephasing");
    qdscope()
        .args([
            "phonon",
            "dephasing",
            s(&mo),
            "--ener",
            s(&ener),
            "--temperature-k",
            "300",
        ])
        .args(["-o", s(&dp)])
        .assert()
        .success();
    assert!(dp.join("dephasing.csv").is_file());
    let h = tmp.path().join("hist");
    qdscope()
        .args(["phonon", "histogram", s(&mo), "--dt-fs", "5", "-o", s(&h)])
        .assert()
        .success();
    assert!(h.join("histogram.csv").is_file());
}

#[test]
fn truncated_and_mismatched_cp2k_files_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let text = fs::read_to_string(fx("qd_n2_md-mo.MOLog")).unwrap();
    // Cut inside the last block (after its HOMO row, before `MO| Sum:`).
    let cut = text.rfind("MO| Sum:").unwrap() - 200;
    let trunc = tmp.path().join("trunc.MOLog");
    fs::write(&trunc, &text[..cut]).unwrap();
    fail(
        &[
            "phonon",
            "coupling",
            s(&trunc),
            "--dt-fs",
            "5",
            "--temperature-k",
            "300",
            "-o",
            s(&out),
        ],
        "truncated MO block",
    );
    // An .ener with 10 steps fewer than the MO blocks.
    let ener = fs::read_to_string(fx("qd_n2_md-1.ener")).unwrap();
    let short = tmp.path().join("short.ener");
    let keep: Vec<&str> = ener.lines().take(ener.lines().count() - 10).collect();
    fs::write(&short, keep.join("\n")).unwrap();
    fail(
        &[
            "phonon",
            "coupling",
            s(&fx("qd_n2_md-mo.MOLog")),
            "--ener",
            s(&short),
        ]
        .into_iter()
        .chain(["--temperature-k", "300", "-o", s(&out)])
        .collect::<Vec<_>>(),
        "201 MO blocks (after --mo-offset 0) but 190 printed steps",
    );
    // A position file cut mid-frame.
    let pos = fs::read_to_string(fx("qd_n2_md-pos-1.xyz")).unwrap();
    let cutpos = tmp.path().join("cut-pos.xyz");
    fs::write(&cutpos, &pos[..pos.len() - 500]).unwrap();
    fail(
        &["phonon", "rmsf", s(&cutpos), "-o", s(&out)],
        "cut-pos.xyz",
    );
    assert!(!out.exists(), "no partial output");
}
