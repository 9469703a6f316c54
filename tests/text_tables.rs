//! Gap series and other text tables as scripts write them: an optional
//! header naming the columns, `#` comments, comma / tab / whitespace
//! separators; a bad line is a one-line error naming the file and line.
mod common;
use common::{fail, qdscope, s};

use qdscope::io::cp2k::read_gap_series;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn headers_comments_and_separators() {
    let tmp = tempfile::tempdir().unwrap();
    let expect = |p: &std::path::Path, dt: f64, g1_mev: f64| {
        let g = read_gap_series(p, None, None).unwrap();
        assert_eq!(g.dt_fs, dt, "{p:?}");
        assert_eq!(g.gap_mev.len(), 3, "{p:?}");
        assert!(
            (g.gap_mev[1] - g1_mev).abs() < 1e-9,
            "{p:?}: {:?}",
            g.gap_mev
        );
    };
    let csv = write(
        tmp.path(),
        "a.csv",
        "time_fs,gap_eV\n0,2.40\n5,2.41\n10,2.39\n",
    );
    expect(&csv, 5.0, 2410.0);
    let spaced = write(
        tmp.path(),
        "b.csv",
        "time_fs, gap_eV\n0, 2.40\n5, 2.41\n10, 2.39\n",
    );
    expect(&spaced, 5.0, 2410.0);
    let tab = write(
        tmp.path(),
        "c.tsv",
        "# from my script\ntime_fs\tgap_eV\n0\t2.40\n# a comment between rows\n5\t2.41\n10\t2.39\n",
    );
    expect(&tab, 5.0, 2410.0);
    let ws = write(
        tmp.path(),
        "d.dat",
        "  0   2.40\n\n  5   2.41\n 10   2.39\n",
    );
    expect(&ws, 5.0, 2410.0);
    // The header names the columns: other columns, order and units.
    let named = write(
        tmp.path(),
        "e.csv",
        "step,gap_meV,time_ps\n0,2400,0.000\n1,2410,0.005\n2,2390,0.010\n",
    );
    expect(&named, 5.0, 2410.0);
    // numpy.savetxt(header=…) puts the names in a comment line.
    let np = write(
        tmp.path(),
        "f.dat",
        "# time_ps gap_eV\n0 2.40\n0.005 2.41\n0.01 2.39\n",
    );
    expect(&np, 5.0, 2410.0);
    // A header without recognisable names is refused, naming it.
    let bad = write(tmp.path(), "g.csv", "a,b\n0,1\n1,2\n");
    let e = read_gap_series(&bad, None, None).unwrap_err().to_string();
    assert!(e.contains("g.csv") && e.contains("'a b'"), "{e}");
}

#[test]
fn bad_lines_are_one_line_errors_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let o = tmp.path().join("o");
    for (name, text, needle) in [
        (
            "n.csv",
            "time_fs,gap_eV\n0,2.4\n5,x\n",
            "n.csv: line 3: 'x' is not a number",
        ),
        (
            "m.csv",
            "time_fs,gap_eV\n0,2.4\n5\n",
            "m.csv: line 3: 1 comma-separated field(s), the header names 2",
        ),
        (
            "t.tsv",
            "0\t2.4\n5\t2.5\t7\n",
            "t.tsv: line 2: 3 tab-separated field(s), expected 2",
        ),
        (
            "w.dat",
            "# c\n0 2.4\n5 inf\n",
            "w.dat: line 3: non-finite value",
        ),
        (
            "u.dat",
            "0 2.4\n5 2.5\n12 2.6\n",
            "u.dat: line 3: non-uniform time step",
        ),
        (
            "e.csv",
            "time_fs,gap_eV\n# nothing\n",
            "e.csv: no data rows",
        ),
    ] {
        let p = write(tmp.path(), name, text);
        fail(
            &[
                "phonon",
                "coupling",
                s(&p),
                "-o",
                s(&o),
                "--temperature-k",
                "10",
            ],
            needle,
        );
    }
    assert!(!o.exists());
}

#[test]
fn coupling_reads_a_headed_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let mut text = String::from("time_fs,gap_eV\n");
    for k in 0..512 {
        let t = k as f64 * 5.0;
        text += &format!(
            "{t},{}\n",
            2.4 + 0.01 * (2.0 * std::f64::consts::PI * t / 800.0).sin()
        );
    }
    let p = write(tmp.path(), "gap.csv", &text);
    let o = tmp.path().join("o");
    qdscope()
        .args([
            "phonon",
            "coupling",
            s(&p),
            "-o",
            s(&o),
            "--temperature-k",
            "10",
        ])
        .assert()
        .success();
    assert!(o.join("coupling.json").is_file());
}
