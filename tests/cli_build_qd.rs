//! `qdscope build-qd` end to end: the files, composition.json, and the
//! generated CP2K inputs parsed back (a small parser of CP2K's section
//! syntax) into the settings of docs/methods/structure.md; bad input.
mod common;
use common::{qdscope, s};

fn fail(args: &[&str], out: &Path, needle: &str) {
    common::fail(&[&["build-qd"], args, &["-o", s(out)]].concat(), needle);
    assert!(!out.join("qd.xyz").exists(), "no partial output");
}
use std::fs;
use std::path::Path;

/// A parsed CP2K input section.
#[derive(Debug, Default)]
struct Sec {
    name: String,
    param: String,
    kws: Vec<(String, String)>,
    subs: Vec<Sec>,
}

impl Sec {
    fn sec(&self, path: &str) -> Option<&Sec> {
        let mut cur = self;
        for part in path.split('/') {
            let (name, param) = part.split_once(':').unwrap_or((part, ""));
            cur = cur
                .subs
                .iter()
                .find(|s| s.name == name && (param.is_empty() || s.param == param))?;
        }
        Some(cur)
    }
    /// `SEC/SUB/KEYWORD` → value (first occurrence).
    fn kw(&self, path: &str) -> Option<&str> {
        let (secs, key) = path.rsplit_once('/').unwrap_or(("", path));
        let s = if secs.is_empty() {
            self
        } else {
            self.sec(secs)?
        };
        s.kws
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parse CP2K input syntax: `&NAME [param]`, `KEYWORD values`, `&END [NAME]`,
/// `#`/`!` comments. Panics (test failure) on unbalanced sections.
fn parse(text: &str) -> Sec {
    let mut stack = vec![Sec::default()];
    for raw in text.lines() {
        let line = raw.split(['#', '!']).next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('&') {
            let (head, param) = rest.split_once(' ').unwrap_or((rest, ""));
            if head.eq_ignore_ascii_case("END") {
                let s = stack.pop().expect("balanced");
                assert!(
                    param.is_empty() || param.trim().eq_ignore_ascii_case(&s.name),
                    "&END {param} closes {}",
                    s.name
                );
                stack.last_mut().expect("parent").subs.push(s);
            } else {
                stack.push(Sec {
                    name: head.to_uppercase(),
                    param: param.trim().to_string(),
                    ..Sec::default()
                });
            }
        } else {
            let (k, v) = line.split_once(' ').unwrap_or((line, ""));
            stack
                .last_mut()
                .expect("section")
                .kws
                .push((k.to_uppercase(), v.trim().to_string()));
        }
    }
    assert_eq!(stack.len(), 1, "unclosed sections");
    stack.pop().unwrap_or_default()
}

fn build(dir: &Path, args: &[&str]) -> serde_json::Value {
    qdscope()
        .arg("build-qd")
        .args(args)
        .arg("-o")
        .arg(dir)
        .assert()
        .success();
    let j = fs::read_to_string(dir.join("composition.json")).unwrap();
    serde_json::from_str(&j).unwrap()
}

fn input(dir: &Path, name: &str) -> Sec {
    parse(&fs::read_to_string(dir.join(name)).unwrap())
}

#[test]
fn dft_inputs_of_the_3nm_dot_parse_back() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("n5");
    let c = build(&d, &["--size", "5"]);
    assert_eq!(c["atoms"], 783);
    assert_eq!(c["cp2k_charge"], 8);
    assert_eq!(c["electrons_gth"]["count"], 5514);
    assert_eq!(c["homo_index"], 2757);
    assert_eq!(c["closed_shell"], true);
    for f in [
        "qd.xyz",
        "qd.extxyz",
        "qd.png",
        "run-cp2k.sh",
        "cp2k-md-equil.inp",
    ] {
        assert!(d.join(f).is_file(), "{f}");
    }
    // The xyz is what CP2K reads: count line, then 783 atoms in layer order.
    let xyz = fs::read_to_string(d.join("qd.xyz")).unwrap();
    assert_eq!(xyz.lines().next(), Some("783"));
    assert_eq!(xyz.lines().count(), 785);
    // Both files read back with the project's own trajectory reader.
    let read = |f: &str| {
        qdscope::io::xyz::XyzReader::open(&d.join(f))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
    };
    let (a, b) = (read("qd.xyz"), read("qd.extxyz"));
    assert_eq!(a.species, b.species);
    assert_eq!(b.lattice.map(|l| l[0][0]), Some(70.0));
    for (p, q) in a.xyz.iter().zip(&b.xyz) {
        for k in 0..3 {
            assert!((p[k] - q[k]).abs() < 1e-7);
        }
    }
    let ext = fs::read_to_string(d.join("qd.extxyz")).unwrap();
    assert!(ext
        .lines()
        .nth(1)
        .unwrap()
        .contains("Properties=species:S:1:pos:R:3:layer:R:1:frozen:L:1 pbc=\"F F F\""));

    let geo = input(&d, "cp2k-geo.inp");
    assert_eq!(geo.kw("GLOBAL/RUN_TYPE"), Some("GEO_OPT"));
    assert_eq!(geo.kw("GLOBAL/PROJECT"), Some("qd_n5_geo"));
    let f: f64 = geo.kw("MOTION/GEO_OPT/MAX_FORCE").unwrap().parse().unwrap();
    // 24 meV/Å in Ha/bohr (1 Ha/bohr = 51.42207 eV/Å).
    assert!((f - 0.024 / 51.42207).abs() / f < 1e-4, "{f}");
    assert_eq!(geo.kw("MOTION/GEO_OPT/OPTIMIZER"), Some("BFGS"));
    let dft = geo.sec("FORCE_EVAL/DFT").unwrap();
    assert_eq!(dft.kw("CHARGE"), Some("8"));
    assert_eq!(dft.kw("MGRID/CUTOFF"), Some("300"));
    assert!(dft.sec("XC/XC_FUNCTIONAL:PBE").is_some());
    assert_eq!(dft.kw("POISSON/PERIODIC"), Some("NONE"));
    assert_eq!(dft.kw("SCF/EPS_SCF"), Some("1.0E-8"));
    assert!(dft.sec("SCF/SMEAR").is_none(), "closed shell: no smearing");
    assert_eq!(dft.kw("SCF/ADDED_MOS"), Some("3"));
    assert_eq!(dft.kw("PRINT/MO/MO_INDEX_RANGE"), Some("2755 2760"));
    assert_eq!(dft.kw("PRINT/MO/EACH/GEO_OPT"), Some("1"));
    assert_eq!(dft.kw("PRINT/MO/EACH/QS_SCF"), Some("0"));
    assert_eq!(dft.kw("PRINT/MO/COMMON_ITERATION_LEVELS"), Some("3"));
    let sub = geo.sec("FORCE_EVAL/SUBSYS").unwrap();
    assert_eq!(
        sub.kw("CELL/ABC"),
        Some("[angstrom] 70.0000 70.0000 70.0000")
    );
    assert_eq!(sub.kw("CELL/PERIODIC"), Some("NONE"));
    assert_eq!(sub.kw("KIND:Cs/POTENTIAL"), Some("GTH-PBE-q9"));
    assert_eq!(sub.kw("KIND:Pb/POTENTIAL"), Some("GTH-PBE-q4"));
    assert_eq!(sub.kw("KIND:Br/POTENTIAL"), Some("GTH-PBE-q7"));
    assert_eq!(sub.kw("KIND:Br/BASIS_SET"), Some("DZVP-MOLOPT-SR-GTH"));
    assert!(sub.sec("KIND:Ca").is_none());
    assert_eq!(sub.kw("TOPOLOGY/COORD_FILE_NAME"), Some("qd.xyz"));

    let eq = input(&d, "cp2k-md-equil.inp");
    assert_eq!(
        eq.kw("EXT_RESTART/RESTART_FILE_NAME"),
        Some("qd_n5_geo-1.restart")
    );
    assert_eq!(eq.kw("EXT_RESTART/RESTART_POS"), Some("T"));
    assert_eq!(eq.kw("MOTION/MD/ENSEMBLE"), Some("NVT"));
    assert_eq!(eq.kw("MOTION/MD/STEPS"), Some("300"));
    assert_eq!(eq.kw("MOTION/MD/TIMESTEP"), Some("[fs] 10"));
    assert_eq!(eq.kw("MOTION/MD/ANGVEL_ZERO"), Some("T"));
    assert_eq!(eq.kw("MOTION/MD/THERMOSTAT/TYPE"), Some("CSVR"));
    assert_eq!(eq.kw("MOTION/MD/THERMOSTAT/CSVR/TIMECON"), Some("[fs] 15"));
    let md = input(&d, "cp2k-md.inp");
    assert_eq!(md.kw("GLOBAL/PROJECT"), Some("qd_n5_md"));
    assert_eq!(
        md.kw("EXT_RESTART/RESTART_FILE_NAME"),
        Some("qd_n5_equil-1.restart")
    );
    assert_eq!(md.kw("EXT_RESTART/RESTART_DEFAULT"), Some("T"));
    assert_eq!(md.kw("MOTION/MD/STEPS"), Some("1000"));
    assert_eq!(md.kw("MOTION/MD/TEMPERATURE"), Some("[K] 300"));
    assert_eq!(
        md.kw("MOTION/MD/THERMOSTAT/CSVR/TIMECON"),
        Some("[fs] 1000")
    );
    assert_eq!(md.kw("MOTION/MD/ANGVEL_ZERO"), None, "continued run");
    assert_eq!(md.kw("MOTION/PRINT/VELOCITIES/EACH/MD"), Some("1"));
    assert_eq!(md.kw("MOTION/PRINT/TRAJECTORY/EACH/MD"), Some("1"));
    assert_eq!(md.kw("FORCE_EVAL/DFT/PRINT/MO/EACH/MD"), Some("1"));
    assert!(md.sec("MOTION/CONSTRAINT").is_none());
}

#[test]
fn frozen_shell_core_and_xtb_variants() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("fs");
    let c = build(
        &d,
        &[
            "--size",
            "5",
            "--frozen-shell-uc",
            "0.5",
            "--temperature-k",
            "10",
        ],
    );
    assert_eq!(c["frozen"]["frozen"], 294);
    assert_eq!(c["frozen"]["free"], 489);
    let md = input(&d, "cp2k-md.inp");
    assert_eq!(md.kw("MOTION/CONSTRAINT/FIXED_ATOMS/LIST"), Some("1..294"));
    assert_eq!(
        md.kw("MOTION/CONSTRAINT/FIXED_ATOMS/COMPONENTS_TO_FIX"),
        Some("XYZ")
    );
    assert_eq!(md.kw("MOTION/MD/TEMPERATURE"), Some("[K] 10"));
    let eq = input(&d, "cp2k-md-equil.inp");
    assert_eq!(
        eq.kw("MOTION/MD/ANGVEL_ZERO"),
        None,
        "frozen runs keep no rigid DOF"
    );
    let ext = fs::read_to_string(d.join("qd.extxyz")).unwrap();
    let frozen = ext.lines().skip(2).filter(|l| l.ends_with(" T")).count();
    assert_eq!(frozen, 294);

    let d = tmp.path().join("fc");
    build(&d, &["--size", "5", "--frozen-core-uc", "0.5"]);
    let geo = input(&d, "cp2k-geo.inp");
    assert_eq!(
        geo.kw("MOTION/CONSTRAINT/FIXED_ATOMS/LIST"),
        Some("295..783")
    );

    let d = tmp.path().join("xtb");
    let c = build(
        &d,
        &[
            "--size",
            "2",
            "--method",
            "xtb",
            "--equil-steps",
            "0",
            "--steps",
            "50",
            "--mo-margin",
            "5",
        ],
    );
    assert_eq!(c["cp2k_charge"], -1);
    assert_eq!(c["homo_index"], 152);
    assert!(!d.join("cp2k-md-equil.inp").exists());
    let md = input(&d, "cp2k-md.inp");
    assert_eq!(md.kw("FORCE_EVAL/DFT/QS/METHOD"), Some("XTB"));
    assert_eq!(md.kw("FORCE_EVAL/DFT/QS/XTB/DO_EWALD"), Some("F"));
    assert_eq!(
        md.kw("FORCE_EVAL/DFT/SCF/SMEAR:ON/METHOD"),
        Some("FERMI_DIRAC")
    );
    assert_eq!(md.kw("FORCE_EVAL/DFT/SCF/MIXING/ALPHA"), Some("0.1"));
    assert_eq!(md.kw("FORCE_EVAL/DFT/SCF/ADDED_MOS"), Some("20"));
    assert_eq!(
        md.kw("FORCE_EVAL/DFT/PRINT/MO/MO_INDEX_RANGE"),
        Some("147 158")
    );
    assert_eq!(md.kw("MOTION/MD/TIMESTEP"), Some("[fs] 5"));
    assert_eq!(md.kw("MOTION/MD/THERMOSTAT/CSVR/TIMECON"), Some("[fs] 100"));
    assert_eq!(
        md.kw("EXT_RESTART/RESTART_FILE_NAME"),
        Some("qd_n2_geo-1.restart")
    );
    assert_eq!(md.kw("MOTION/MD/ANGVEL_ZERO"), Some("T"));
    assert!(md.sec("FORCE_EVAL/SUBSYS/KIND").is_none());

    // Core/shell and the charge override (warned: not closed shell).
    let d = tmp.path().join("cs");
    let a = qdscope()
        .args([
            "build-qd", "--size", "6", "--shell", "1", "--charge", "-11", "-o",
        ])
        .arg(&d)
        .assert()
        .success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(
        err.contains("warning") && err.contains("22 extra electron(s)"),
        "{err}"
    );
    let c: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(d.join("composition.json")).unwrap()).unwrap();
    assert_eq!(c["formula"], "Cs335Pb64Ca152Br756");
    assert_eq!(c["closed_shell"], false);
    let geo = input(&d, "cp2k-geo.inp");
    assert_eq!(
        geo.kw("FORCE_EVAL/SUBSYS/KIND:Ca/POTENTIAL"),
        Some("GTH-PBE-q10")
    );
    assert_eq!(geo.kw("FORCE_EVAL/DFT/CHARGE"), Some("-11"));
}

#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    fail(&["--size", "1"], &out, "--size");
    fail(&["--size", "4", "--shell", "2"], &out, "--shell");
    fail(
        &["--size", "4", "--lattice-angstrom", "-5.87"],
        &out,
        "--lattice-angstrom",
    );
    fail(&["--size", "2", "--balance", "remove-cs"], &out, "q = -1");
    fail(
        &["--size", "5", "--frozen-shell-uc", "0.3"],
        &out,
        "--frozen-shell-uc",
    );
    fail(
        &["--size", "5", "--temperature-k", "0"],
        &out,
        "--temperature-k",
    );
    fail(
        &["--size", "3", "--remove-cs-list", "191"],
        &out,
        "--remove-cs-list",
    );
    // Unwritable output: a path below a regular file.
    let file = tmp.path().join("file");
    fs::write(&file, "x").unwrap();
    fail(&["--size", "3"], &file.join("sub"), "file");
    assert!(!out.exists());
}

/// CP2K end to end (needs `cp2k` on PATH with xTB; `cargo test -- --ignored`):
/// build the n = 2 xTB model, optimise a few steps, run 4 MD steps, read
/// the outputs with the phonon half's readers.
#[test]
#[ignore = "runs CP2K (Debian package cp2k); ~1 min"]
fn cp2k_runs_the_generated_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    build(
        d,
        &[
            "--size",
            "2",
            "--method",
            "xtb",
            "--cell-nm",
            "3",
            "--equil-steps",
            "0",
            "--steps",
            "4",
        ],
    );
    for inp in ["cp2k-geo.inp", "cp2k-md.inp"] {
        let st = std::process::Command::new("cp2k")
            .args(["-i", inp, "-o", &format!("{inp}.out")])
            .current_dir(d)
            .env("OMP_NUM_THREADS", "1")
            .status()
            .expect("cp2k on PATH");
        assert!(st.success(), "{inp}");
    }
    let ener = qdscope::io::cp2k::read_ener(&d.join("qd_n2_md-1.ener")).unwrap();
    assert_eq!(ener.len(), 5);
    let mo = d.join("qd_n2_md-mo.MOLog");
    let s = qdscope::io::cp2k::read_molog(&[mo.as_path()], Some(152)).unwrap();
    assert_eq!(s.homo_lumo.len(), 5);
    assert!(
        s.homo_lumo.iter().all(|(h, l)| l - h > 0.3),
        "closed shell gap"
    );
}
