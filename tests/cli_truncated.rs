//! `--allow-truncated`: a CP2K trajectory or MOLog cut by a killed job
//! (last frame / MO block incomplete). Without the flag: one line naming
//! the file, the line and the flag. With it: the complete frames / blocks
//! are used, the drop is a warning and a JSON key.
mod common;
use common::{fail, qdscope, s};

use std::fs;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/cp2k")
        .join(name)
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(p).unwrap()).unwrap()
}

/// `name` copied into `dir` with its last `cut` bytes removed.
fn cut_copy(dir: &Path, name: &str, cut: usize) -> PathBuf {
    let bytes = fs::read(fixture(name)).unwrap();
    let p = dir.join(name);
    fs::write(&p, &bytes[..bytes.len() - cut]).unwrap();
    p
}

fn run_ok(args: &[&str]) -> String {
    let a = qdscope().args(args).assert().success();
    String::from_utf8_lossy(&a.get_output().stderr).to_string()
}

#[test]
fn trajectory_cut_mid_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let pos = cut_copy(tmp.path(), "qd_n2_md-pos-1.xyz", 100); // mid-line
    let vel_full = fixture("qd_n2_md-vel-1.xyz");
    let o = tmp.path().join("o");
    let dos = |pos: &Path, vel: &Path, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["phonon", "dos", s(pos), "--velocities", s(vel)]
            .iter()
            .map(|x| x.to_string())
            .collect();
        v.extend(
            [
                "--temperature-k",
                "300",
                "--segment-frames",
                "100",
                "-o",
                s(&o),
            ]
            .iter()
            .map(|x| x.to_string()),
        );
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let args = dos(&pos, &vel_full, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fail(&args, "truncated frame");
    fail(&args, "--allow-truncated");
    assert!(!o.exists());
    let args = dos(&pos, &vel_full, &["--allow-truncated"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = run_ok(&args);
    assert!(err.contains("1 frame(s) dropped"), "{err}");
    let j = json(&o.join("dos.json"));
    assert_eq!(j["frames_dropped_truncated"], 1, "{j}");
    let full_frames = fs::read_to_string(fixture("qd_n2_md-pos-1.xyz"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("i ="))
        .count() as u64;
    assert_eq!(j["n_frames"].as_u64().unwrap(), full_frames - 1, "{j}");
    // The velocities cut instead: the positions' last frame has none.
    let vel = cut_copy(tmp.path(), "qd_n2_md-vel-1.xyz", 1000);
    let args = dos(&fixture("qd_n2_md-pos-1.xyz"), &vel, &["--allow-truncated"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&args);
    assert_eq!(json(&o.join("dos.json"))["frames_dropped_truncated"], 1);
    // RMSF reads positions only; a file that is one cut frame has nothing.
    let r = tmp.path().join("r");
    run_ok(&["phonon", "rmsf", s(&pos), "--allow-truncated", "-o", s(&r)]);
    assert_eq!(json(&r.join("rmsf.json"))["frames_dropped_truncated"], 1);
    let one = tmp.path().join("one.xyz");
    fs::write(&one, "3\n i = 0, time = 0.0\nCs 0 0 0\n").unwrap();
    fail(
        &["phonon", "rmsf", s(&one), "--allow-truncated", "-o", s(&r)],
        "no complete one before it",
    );
}

#[test]
fn molog_cut_mid_block() {
    let tmp = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(fixture("qd_n2_md-mo.MOLog")).unwrap();
    let cut = text.rfind(" MO| Sum:").unwrap();
    let mo = tmp.path().join("cut-mo.MOLog");
    fs::write(&mo, &text[..cut - 20]).unwrap();
    let o = tmp.path().join("o");
    let base = [
        "phonon",
        "coupling",
        s(&mo),
        "--dt-fs",
        "5",
        "--temperature-k",
        "300",
        "--bands-mev",
        "0:10,10:30",
        "-o",
        s(&o),
    ];
    fail(&base, "truncated MO block");
    fail(&base, "--allow-truncated");
    let err = run_ok(&[&base[..], &["--allow-truncated"]].concat());
    assert!(err.contains("1 cut-off MO block(s) dropped"), "{err}");
    let j = json(&o.join("coupling.json"));
    assert_eq!(j["metadata"]["blocks_dropped_truncated"], 1, "{j}");
    let h = tmp.path().join("h");
    run_ok(&[
        "phonon",
        "histogram",
        s(&mo),
        "--dt-fs",
        "5",
        "--allow-truncated",
        "-o",
        s(&h),
    ]);
    assert_eq!(
        json(&h.join("histogram.json"))["runs"][0]["blocks_dropped_truncated"],
        1
    );
}
