//! All-or-nothing outputs: with one output file blocked (a directory of its
//! name exists), a command exits 1 with one line naming it and leaves the
//! output directory exactly as it was — no new file, old files unchanged,
//! other content untouched, no staging directory left beside it.
mod common;
use common::{clean_scene_192, qdscope, s};

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use qdscope::image::Stack;
use qdscope::phonon::synth::{gap_series, write_gap, SPEC_GRID};

/// Every file and directory under `dir` with the files' contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if p.is_dir() {
                stack.push(p);
                out.insert(rel, None);
            } else {
                out.insert(rel, Some(fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// An output directory with earlier content and `blocked` made a directory;
/// run `args` (output `-o <root>/out` appended) and check nothing changed.
fn blocked_run_changes_nothing(root: &Path, args: &[&str], blocked: &str) {
    let out = root.join("out");
    if !out.join(blocked).exists() {
        fs::create_dir_all(out.join(blocked)).unwrap();
    }
    fs::write(out.join("notes.txt"), "mine").unwrap();
    fs::create_dir_all(out.join("sub")).unwrap();
    fs::write(out.join("sub/keep.dat"), "keep").unwrap();
    let before = snapshot(root);
    let a = qdscope()
        .args(args)
        .args(["-o", s(&out)])
        .assert()
        .failure()
        .code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    let errs: Vec<&str> = err.lines().filter(|l| !l.contains("warning")).collect();
    assert_eq!(errs.len(), 1, "{err}");
    assert!(
        errs[0].starts_with("qdscope: error: ") && errs[0].contains(blocked),
        "{err}"
    );
    assert_eq!(snapshot(root), before, "{args:?}");
}

#[test]
fn phonon_coupling_with_a_blocked_file_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    let g = SPEC_GRID;
    let gap = inputs.path().join("gap.dat");
    write_gap(&gap, &g, &gap_series(&g, 2400.0, &[(5.0, 2.0)], 1)).unwrap();
    // An earlier run's file must survive unchanged too.
    fs::create_dir_all(tmp.path().join("out")).unwrap();
    fs::write(tmp.path().join("out/bands.csv"), "old").unwrap();
    let args = ["phonon", "coupling", s(&gap), "--temperature-k", "10"];
    blocked_run_changes_nothing(tmp.path(), &args, "coupling.json");
    // Unblocked, the same run replaces bands.csv and keeps the rest.
    fs::remove_dir(tmp.path().join("out/coupling.json")).unwrap();
    let out = tmp.path().join("out");
    qdscope()
        .args(args)
        .args(["-o", s(&out)])
        .assert()
        .success();
    assert!(fs::read_to_string(out.join("bands.csv"))
        .unwrap()
        .starts_with("lo_mev"));
    assert_eq!(fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no staging left"
    );
}

#[test]
fn columns_with_a_blocked_file_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    let path = inputs.path().join("clean.tif");
    let stack = Stack::from_image(clean_scene_192()).unwrap();
    qdscope::io::write_tiff_stack_f32(&path, &stack).unwrap();
    blocked_run_changes_nothing(tmp.path(), &["columns", s(&path)], "summary.json");
}

#[test]
fn simulate_with_a_blocked_file_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "simulate",
        "--thickness-uc",
        "1..1",
        "--supercell-uc",
        "1",
        "--phonons",
        "1",
        "--defocus-nodes",
        "1",
        "--no-symmetry",
        "-q",
    ];
    blocked_run_changes_nothing(tmp.path(), &args, "simulate.json");
    // A blocked sub-directory (a file where `images/` goes) as well.
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("out")).unwrap();
    fs::write(tmp.path().join("out/images"), "a file").unwrap();
    blocked_run_changes_nothing(tmp.path(), &args, "images");
}

/// `demo` is one output set too (five commands' outputs plus its own): a
/// blocked `demo.json` leaves the directory as it was; unblocked, the paths
/// recorded inside its outputs are relative to the output directory.
#[test]
fn demo_with_a_blocked_file_leaves_no_file_and_records_relative_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "demo",
        "-q",
        "--size-px",
        "192",
        "--frames",
        "2",
        "--qds-per-group",
        "1",
    ];
    blocked_run_changes_nothing(tmp.path(), &args, "demo.json");
    fs::remove_dir(tmp.path().join("out/demo.json")).unwrap();
    let out = tmp.path().join("out");
    // The QDs of a 192-px field may be refused (exit 1); the set is written
    // either way.
    let _ = qdscope().args(args).args(["-o", s(&out)]).output().unwrap();
    let demo: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("demo.json")).unwrap()).unwrap();
    assert_eq!(demo["qds"][0]["stack"], "stacks/core-1.tif");
    assert_eq!(demo["simulate"], "simulate/series.csv");
    assert!(out.join("stacks/core-1.tif").is_file());
    assert!(out.join("simulate/series.csv").is_file());
    assert_eq!(fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no staging left"
    );
}
