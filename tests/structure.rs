//! QD builder against the table and tests of docs/methods/structure.md.

use qdscope::structure::qd::{self, Balance, QdParams};
use qdscope::structure::{Element, LATTICE_ANGSTROM};

fn build(n: usize) -> qd::Qd {
    qd::build(&QdParams::cube(n)).expect("valid cube")
}

/// (n, Pb, Cs, Br, atoms, CHARGE, N_el GTH, HOMO GTH, N_el xTB, HOMO xTB, cell nm)
type Row = (
    usize,
    usize,
    usize,
    usize,
    usize,
    i64,
    i64,
    i64,
    i64,
    i64,
    f64,
);
const TABLE: [Row; 6] = [
    (2, 8, 19, 36, 63, -1, 456, 228, 304, 152, 4.0),
    (3, 27, 56, 108, 191, 2, 1366, 683, 918, 459, 5.0),
    (4, 64, 117, 240, 421, 5, 2984, 1492, 2048, 1024, 6.0),
    (5, 125, 208, 450, 783, 8, 5514, 2757, 3850, 1925, 7.0),
    (6, 216, 335, 756, 1307, 11, 9160, 4580, 6480, 3240, 7.5),
    (7, 343, 504, 1176, 2023, 14, 14126, 7063, 10094, 5047, 8.5),
];

#[test]
fn counts_charge_electrons_match_the_spec_table() {
    for &(n, pb, cs, br, atoms, charge, el, homo, elx, homox, cell) in &TABLE {
        let d = build(n);
        assert_eq!(d.atoms.count(Element::Pb), pb, "n={n} Pb");
        assert_eq!(d.atoms.count(Element::Cs), cs, "n={n} Cs");
        assert_eq!(d.atoms.count(Element::Br), br, "n={n} Br");
        assert_eq!(d.atoms.count(Element::Ca), 0);
        assert_eq!(d.atoms.len(), atoms, "n={n} atoms");
        assert_eq!(d.formal_charge(), charge, "n={n} q");
        let g = d.electrons(charge, false);
        assert_eq!((g.count, g.homo_index), (el, homo), "n={n} GTH");
        assert_eq!(
            g.count, g.ionic_count,
            "n={n}: CHARGE +q is the closed-shell ionic count"
        );
        let x = d.electrons(charge, true);
        assert_eq!((x.count, x.homo_index), (elx, homox), "n={n} xTB");
        assert_eq!(x.count, x.ionic_count);
        assert!((d.cell_nm - cell).abs() < 1e-12, "n={n} cell {}", d.cell_nm);
        assert_eq!(d.model_name(), format!("qd_n{n}"));
        // The opposite sign leaves 2|q| carriers: not closed shell.
        if charge != 0 {
            assert_ne!(d.electrons(-charge, false).count, g.ionic_count);
        }
    }
}

#[test]
fn charge_balance_holds_for_every_size() {
    for n in 2..=12 {
        let d = build(n);
        let (cs, pb, br) = (
            d.atoms.count(Element::Cs) as i64,
            d.atoms.count(Element::Pb) as i64,
            d.atoms.count(Element::Br) as i64,
        );
        let n_i = n as i64;
        assert_eq!(pb, n_i.pow(3));
        assert_eq!(cs, (n_i + 1).pow(3) - 8);
        assert_eq!(br, 3 * n_i * n_i * (n_i + 1));
        let q = d.formal_charge();
        assert_eq!(q, 3 * n_i - 7, "n={n}");
        // SI: N_Cs + 2 N_Pb − N_Br + N_ch = 0 with N_ch = −q.
        assert_eq!(cs + 2 * pb - br - q, 0);
    }
}

#[test]
fn geometry_bonds_corners_and_symmetry() {
    let a = LATTICE_ANGSTROM;
    for n in 2..=6 {
        let d = build(n);
        let (dmin, i, j) = d.atoms.min_distance().expect("atoms");
        assert!(dmin >= a / 2.0 * 0.99, "n={n}: atoms {i},{j} at {dmin} Å");
        // Every Pb has 6 Br at a/2.
        for (k, e) in d.atoms.species.iter().enumerate() {
            if *e != Element::Pb {
                continue;
            }
            let nbr = d
                .atoms
                .positions
                .iter()
                .zip(&d.atoms.species)
                .filter(|(p, s)| {
                    **s == Element::Br
                        && (qdscope::structure::dist(**p, d.atoms.positions[k]) - a / 2.0).abs()
                            < 1e-9
                })
                .count();
            assert_eq!(nbr, 6, "n={n} Pb {k}");
        }
        // Corner Cs absent; the QD is centred in the cell.
        let c = (n as f64 - 1.0) / 2.0;
        let half = n as f64 / 2.0;
        for (u, e) in d.lattice_units.iter().zip(&d.atoms.species) {
            if *e == Element::Cs {
                assert!(!u.iter().all(|x| ((x - c).abs() - half).abs() < 1e-12));
            }
        }
        let l = d.cell_nm * 10.0;
        let mean: Vec<f64> = (0..3)
            .map(|k| d.atoms.positions.iter().map(|p| p[k]).sum::<f64>() / d.atoms.len() as f64)
            .collect();
        for m in mean {
            assert!((m - l / 2.0).abs() < 1e-9);
        }
        // O_h: each of the 48 signed permutations maps every element's set onto itself.
        let key = |e: Element, v: [f64; 3]| (e, v.map(|x| (2.0 * (x - c)).round() as i64));
        let set: std::collections::HashSet<_> = d
            .lattice_units
            .iter()
            .zip(&d.atoms.species)
            .map(|(u, e)| key(*e, *u))
            .collect();
        let perms = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for p in perms {
            for signs in 0..8 {
                for (e, h) in &set {
                    let mut g = [0i64; 3];
                    for k in 0..3 {
                        let s = if signs >> k & 1 == 1 { -1 } else { 1 };
                        g[k] = s * h[p[k]];
                    }
                    assert!(set.contains(&(*e, g)), "n={n}: op {p:?}/{signs} breaks O_h");
                }
            }
        }
    }
}

#[test]
fn layers_and_frozen_ranges_of_n5() {
    let d = build(5);
    let want = [
        (0.0, Element::Cs, 144),
        (0.0, Element::Br, 150),
        (0.5, Element::Pb, 98),
        (0.5, Element::Br, 192),
        (1.0, Element::Cs, 56),
        (1.0, Element::Br, 54),
        (1.5, Element::Pb, 26),
        (1.5, Element::Br, 48),
        (2.0, Element::Cs, 8),
        (2.0, Element::Br, 6),
        (2.5, Element::Pb, 1),
    ];
    assert_eq!(d.layer_counts(), want.to_vec());
    // Sorted by depth: frozen shells are the leading ranges.
    assert!(d.depth_uc.windows(2).all(|w| w[0] <= w[1]));
    for (s, frozen, free) in [
        (0.5, 294, 489),
        (1.0, 584, 199),
        (1.5, 694, 89),
        (2.0, 768, 15),
    ] {
        let f = d.frozen_shell(s).expect("valid shell");
        assert_eq!(
            (f.frozen, f.free, f.first, f.last),
            (frozen, free, 1, frozen),
            "s={s}"
        );
        assert!(f.range().all(|i| d.depth_uc[i] < s));
    }
    let core = d.frozen_core(0.5).expect("valid core");
    assert_eq!((core.free, core.first, core.last), (294, 295, 783));
    assert!(d.frozen_shell(0.3).is_err());
    assert!(d.frozen_shell(3.0).is_err(), "freezes everything");
    assert!(d.frozen_core(-1.0).is_err());
}

#[test]
fn remove_cs_gives_the_neutral_775_atom_dot() {
    let d = qd::build(&QdParams {
        balance: Balance::RemoveCs,
        ..QdParams::cube(5)
    })
    .expect("n = 5 remove-cs");
    assert_eq!(d.atoms.len(), 775);
    assert_eq!(d.formula(), "Cs200Pb125Br450");
    assert_eq!(d.formal_charge(), 0);
    let g = d.electrons(0, false);
    assert_eq!((g.count, g.homo_index, g.ionic_count), (5450, 2725, 5450));
    assert_eq!(d.electrons(0, true).count, 3850);
    let want: [[f64; 3]; 8] = [
        [1.5, 1.5, 4.5],
        [3.5, 3.5, -0.5],
        [-0.5, 0.5, 0.5],
        [3.5, -0.5, 0.5],
        [0.5, 4.5, 1.5],
        [4.5, 3.5, 3.5],
        [3.5, -0.5, 3.5],
        [-0.5, 0.5, 3.5],
    ];
    assert_eq!(d.removed_cs, want.to_vec());
    // Minimum pairwise distance √6 a.
    let mut dmin = f64::INFINITY;
    for i in 0..8 {
        for j in i + 1..8 {
            dmin = dmin.min(qdscope::structure::dist(want[i], want[j]));
        }
    }
    assert!((dmin - 6f64.sqrt()).abs() < 1e-12);
    let f = d.frozen_shell(0.5).expect("shell");
    assert_eq!(f.frozen, 294 - 8);
    assert_eq!(d.model_name(), "qd_n5_neutral");
    // Only for q > 0.
    let e = qd::build(&QdParams {
        balance: Balance::RemoveCs,
        ..QdParams::cube(2)
    });
    assert!(e.is_err());
}

#[test]
fn explicit_remove_cs_list() {
    // The first atoms are d = 0 Cs (sorted by depth, Cs first).
    let d = qd::build(&QdParams {
        remove_cs_list: Some(vec![1, 2]),
        ..QdParams::cube(3)
    })
    .expect("list");
    assert_eq!(d.atoms.len(), 189);
    assert_eq!(d.formal_charge(), 0);
    let bad = qd::build(&QdParams {
        remove_cs_list: Some(vec![191]),
        ..QdParams::cube(3)
    });
    assert!(bad.is_err(), "atom 191 is the central Pb, not a surface Cs");
}

#[test]
fn core_shell_of_the_si() {
    let d = qd::build(&QdParams {
        shell_uc: 1,
        ..QdParams::cube(6)
    })
    .expect("c/s");
    assert_eq!(d.formula(), "Cs335Pb64Ca152Br756");
    assert_eq!(d.atoms.len(), 1307);
    assert_eq!(d.formal_charge(), 11);
    let g = d.electrons(11, false);
    assert_eq!((g.count, g.homo_index), (10072, 5036));
    let x = d.electrons(11, true);
    assert_eq!((x.count, x.homo_index), (6176, 3088));
    for (e, dep) in d.atoms.species.iter().zip(&d.depth_uc) {
        if *e == Element::Ca {
            assert_eq!(*dep, 0.5);
        }
        if *e == Element::Pb {
            assert!(*dep >= 1.5);
        }
    }
    assert_eq!(d.model_name(), "qd_n6_s1");
}

#[test]
fn bad_parameters_are_errors() {
    assert!(qd::build(&QdParams::cube(1)).is_err());
    assert!(qd::build(&QdParams {
        shell_uc: 2,
        ..QdParams::cube(4)
    })
    .is_err());
    assert!(qd::build(&QdParams {
        lattice_angstrom: -5.87,
        ..QdParams::cube(4)
    })
    .is_err());
    assert!(qd::build(&QdParams {
        cell_nm: Some(f64::NAN),
        ..QdParams::cube(4)
    })
    .is_err());
    // A small cell is allowed but warned about (Martyna–Tuckerman).
    let d = qd::build(&QdParams {
        cell_nm: Some(3.0),
        ..QdParams::cube(3)
    })
    .expect("small cell");
    assert!(!d.warnings.is_empty());
}
