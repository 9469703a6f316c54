//! Tests of the CP2K readers.

use super::*;

fn molog_block(title: &str, rows: &[(usize, f64, f64)], sum: f64) -> String {
    let mut s = format!(" MO| {title}\n MO| Index      Eigenvalue [a.u.]        Eigenvalue [eV]             Occupation\n");
    for (i, ha, occ) in rows {
        s += &format!(" MO|{i:7}{ha:22.8}{:22.8}{occ:22.8}\n", ha * HARTREE_EV);
    }
    s += &format!(" MO| Sum:{sum:>44.8}\n MO| E(Fermi):          -0.1  -2.7\n\n");
    s
}

#[test]
fn molog_blocks_by_index_skip_intermediate_scf() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x-mo.MOLog");
    let mut text = molog_block(
        "EIGENVALUES AND OCCUPATION NUMBERS AFTER SCF STEP 0",
        &[(1, -0.5, 2.0), (2, 0.0, 0.0)],
        2.0,
    );
    for k in 0..3 {
        let d = 0.001 * k as f64;
        // HOMO = 152 by Sum = 304; smearing-like fractional occupations.
        text += &molog_block(
            "EIGENVALUES AND OCCUPATION NUMBERS",
            &[
                (151, -0.30, 2.0),
                (152, -0.25 + d, 1.7),
                (153, -0.21, 0.3),
                (154, -0.18, 0.0),
            ],
            304.0,
        );
    }
    std::fs::write(&p, text).unwrap();
    let mo = read_molog(&[&p], None).unwrap();
    let (hl, h) = (&mo.homo_lumo, mo.homo_index);
    assert_eq!(h, 152);
    assert_eq!(hl.len(), 3);
    assert_eq!(mo.near_crossings, Some(0));
    let g = (hl[0].1 - hl[0].0) * 1e3;
    assert!((g - 0.04 * HARTREE_EV * 1e3).abs() < 1e-6, "{g}");
    let s = read_gap_series(&p, Some(5.0), None).unwrap();
    assert_eq!(s.gap_mev.len(), 3);
    // A step where LUMO+1 comes within 5 meV of the LUMO is counted.
    let mut text = std::fs::read_to_string(&p).unwrap();
    text += &molog_block(
        "EIGENVALUES AND OCCUPATION NUMBERS",
        &[
            (151, -0.30, 2.0),
            (152, -0.25, 2.0),
            (153, -0.21, 0.0),
            (154, -0.2099, 0.0),
        ],
        304.0,
    );
    std::fs::write(&p, text).unwrap();
    assert_eq!(read_molog(&[&p], None).unwrap().near_crossings, Some(1));
    assert!(read_gap_series(&p, None, None).is_err());
}

#[test]
fn two_column_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("gap.dat");
    std::fs::write(&p, "# t gap\n0 2.40\n10 2.41\n20 2.39\n30 2.40\n").unwrap();
    let s = read_gap_series(&p, None, None).unwrap();
    assert_eq!(s.dt_fs, 10.0);
    assert!((s.gap_mev[1] - 2410.0).abs() < 1e-9);
    std::fs::write(&p, "0 2.40\n10 2.41\n25 2.39\n").unwrap();
    let e = read_gap_series(&p, None, None).unwrap_err().to_string();
    assert!(e.contains("line 3") && e.contains("non-uniform"), "{e}");
    std::fs::write(&p, "0 2.40\n10 nan\n").unwrap();
    assert!(read_gap_series(&p, None, None)
        .unwrap_err()
        .to_string()
        .contains("line 2"));
    std::fs::write(&p, "0 2.40\n10 x\n").unwrap();
    assert!(read_gap_series(&p, None, None).is_err());
}

#[test]
fn ener_converts_and_drops_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x-1.ener");
    std::fs::write(
        &p,
        "#     Step Nr.          Time[fs]        Kin.[a.u.]          Temp[K]            Pot.[a.u.]        Cons Qty[a.u.]        UsedTime[mins]\n         0            0.000000         0.010000000       300.000000000      -1.000000000      -0.990000000         0.000000000\n         1            5.000000         0.011000000       310.000000000      -1.001000000      -0.990000000         1.000000000\n         1            5.000000         0.011000000       310.000000000      -1.001000000      -0.990000000         1.000000000\n",
    )
    .unwrap();
    let r = read_ener(&p).unwrap();
    assert_eq!(r.len(), 2);
    assert!((r[0].kinetic_ev - 0.01 * 27.211386246).abs() < 1e-12);
    std::fs::write(&p, "0 0.0 1.0\n").unwrap();
    assert!(read_ener(&p).unwrap_err().to_string().contains("line 1"));
}
