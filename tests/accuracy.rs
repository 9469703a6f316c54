//! Accuracy of the whole image chain on six randomized testbed stacks
//! (`qdscope::stem::testbed`, fixed seed), built differently from the demo
//! generator (pixel-integrated elliptical columns, textured support,
//! plateau, drift, Poisson + read noise).
//!
//! What holds for the study's single-column fit (`--neighbours single`),
//! on fields ≤ 384 px (the test suite's time budget):
//! every case reports a ratio or refuses with a message, at least 4 of 6
//! report (the two 3- and 4-cell particles the small field forces are
//! refused by the lattice check), ≥ 98 % of the interior columns are found
//! on the right sublattice, no ratio rests on mislabelled classes, and the
//! MAE stays below 0.06 as a regression guard (0.0125 over the 4 reported
//! today; the residual error is the column volumes' — support texture and
//! the plateau under the particle bias them). The issue's target, MAE ≤
//! 0.015 over six cases on fields ≤ 512 px, is the second test below, run
//! with the joint chain (the default), which meets it; the single fit
//! does not (0.020 there).

use qdscope::stem::gaussian::Neighbours;
use qdscope::stem::pipeline::PrepareParams;
use qdscope::stem::testbed::{draw_case, render_case, run_rendered_with, CaseRanges};

const SEED: u64 = 20_240_601;
const CASES: u64 = 6;

struct Summary {
    errors: Vec<f64>,
    mislabelled: Vec<u64>,
    refused: usize,
    interior: usize,
    interior_right: usize,
}

fn run_cases(max_field_px: usize, neighbours: Neighbours) -> Summary {
    let ranges = CaseRanges {
        max_field_px,
        ..CaseRanges::default()
    };
    let params = PrepareParams::default();
    let mut s = Summary {
        errors: Vec::new(),
        mislabelled: Vec::new(),
        refused: 0,
        interior: 0,
        interior_right: 0,
    };
    for i in 0..CASES {
        let seed = SEED + i;
        let case = draw_case(seed, &ranges);
        let (stack, truth) = render_case(&case).expect("render");
        let out = run_rendered_with(
            &format!("case{seed}"),
            &case,
            &stack,
            &truth,
            &params,
            neighbours,
        );
        eprintln!(
            "case {i} (seed {seed}, {} px, {} cells, {} frames): truth {:.4}, measured {:?}",
            case.field_px,
            case.n_cells,
            case.n_frames,
            out.truth_ratio.unwrap_or(f64::NAN),
            out.measured
        );
        match &out.measured {
            Ok(m) => {
                assert!(m.is_finite(), "case {i}: non-finite ratio {m}");
                s.errors.push(m - out.truth_ratio.expect("a truth ratio"));
                if out.ratio_from_mislabelled() {
                    s.mislabelled.push(i);
                }
                if let Some(sc) = &out.score {
                    s.interior += sc.n_interior;
                    s.interior_right += sc.n_interior_right;
                }
            }
            Err(e) => {
                assert!(!e.trim().is_empty(), "case {i}: refusal without a message");
                s.refused += 1;
            }
        }
    }
    s
}

fn mae(e: &[f64]) -> f64 {
    e.iter().map(|v| v.abs()).sum::<f64>() / e.len().max(1) as f64
}

#[test]
fn sublattices_right_and_ratio_close_on_testbed_cases() {
    let s = run_cases(384, Neighbours::Single);
    let reported = s.errors.len();
    assert!(
        reported >= 4,
        "only {reported} of {CASES} cases report a ratio ({} refused)",
        s.refused
    );
    assert!(
        s.mislabelled.is_empty(),
        "ratios from mislabelled classes in cases {:?}",
        s.mislabelled
    );
    let frac = s.interior_right as f64 / s.interior.max(1) as f64;
    assert!(
        frac >= 0.98,
        "{} of {} interior columns on the right sublattice",
        s.interior_right,
        s.interior
    );
    // Today's level (see the module doc), so that a regression shows.
    let m = mae(&s.errors);
    assert!(
        m <= 0.06,
        "MAE {m:.4} over {reported} cases: {:?}",
        s.errors
    );
}

/// The issue's target on fields ≤ 512 px with the joint chain
/// (`--neighbours joint`): MAE ≤ 0.015 over the cases it reports, at least
/// 3 of 6 reported, none from mislabelled classes (measured 2026-12-03:
/// 4 reported, MAE 0.0042, errors −0.0045 … +0.0051). It ran 2–3 min and was
/// ignored; with the joint fit's factored preconditioner and a stopping
/// rule its fits meet it runs in about 25 s. The study's single fit does
/// not meet the target (MAE 0.020 here).
#[test]
fn joint_ratio_within_issue_target_on_testbed_cases() {
    let s = run_cases(512, Neighbours::Joint);
    let m = mae(&s.errors);
    eprintln!(
        "joint, 6 cases: {} reported, MAE {m:.4}: {:?}",
        s.errors.len(),
        s.errors
    );
    assert!(s.errors.len() >= 3, "only {} reported", s.errors.len());
    assert!(s.mislabelled.is_empty(), "{:?}", s.mislabelled);
    assert!(m <= 0.015, "MAE {m:.4}: {:?}", s.errors);
}
