//! Spread of the measured Cs : Pb/Br volume ratio over noise realizations
//! of one testbed case (a diagnostic beside `examples/accuracy.rs`, not a
//! benchmark): the same particle, support, dose and drift, only the
//! counting and read noise redrawn.
//!
//! ```text
//! cargo run --release --example diag_seeds -- SEED [single|joint] [N]
//! ```
//!
//! Prints the ratio error of each of N noise draws of case SEED (fields
//! ≤ 512 px), their mean and standard deviation. Findings are in
//! docs/benchmarks.md.
use qdscope::stem::columns::{analyse_with, ColumnsParams};
use qdscope::stem::gaussian::Neighbours;
use qdscope::stem::pipeline::{prepare, PrepareParams};
use qdscope::stem::testbed::{draw_case, render_case, CaseRanges};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let nb = match args.get(2).map(String::as_str) {
        Some("joint") => Neighbours::Joint,
        _ => Neighbours::Single,
    };
    let n: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let r = CaseRanges {
        max_field_px: 512,
        ..CaseRanges::default()
    };
    let c0 = draw_case(seed, &r);
    let cp = ColumnsParams {
        lattice_angstrom: c0.lattice_angstrom,
        neighbours: nb,
        ..ColumnsParams::default()
    };
    let mut errs = Vec::new();
    for k in 0..n {
        let mut c = c0.clone();
        c.noise_seed = c0.noise_seed.wrapping_add(1000 * k + 1);
        let (stack, truth) = render_case(&c).expect("testbed case renders");
        let Some(t) = truth.ratio_volume else {
            println!("case {seed} has no interior columns of a class: no truth");
            return;
        };
        let measured = prepare(stack, &PrepareParams::default(), None)
            .map_err(|e| e.to_string())
            .and_then(|p| {
                analyse_with("x", &p.prepared, Some(&p.averaged), &cp)
                    .map(|r| r.ratio_volume.ratio)
                    .map_err(|e| e.to_string())
            });
        match measured {
            Ok(v) => {
                println!("noise draw {k}: error {:+.4}", v - t);
                errs.push(v - t);
            }
            Err(e) => println!("noise draw {k}: refused: {e}"),
        }
    }
    if errs.len() > 1 {
        let m = errs.iter().sum::<f64>() / errs.len() as f64;
        let sd =
            (errs.iter().map(|e| (e - m).powi(2)).sum::<f64>() / (errs.len() - 1) as f64).sqrt();
        println!("mean error {m:+.4}, s.d. {sd:.4} over {} draws", errs.len());
    }
}
