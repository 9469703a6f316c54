//! Which image carries the bias of the joint volumes on a noisy testbed
//! case (a diagnostic beside `examples/accuracy.rs`, not a benchmark).
//!
//! ```text
//! cargo run --release --example diag_cross -- SEED [bare|no-texture|no-support-steps]
//! ```
//!
//! Case SEED (fields ≤ 512 px) is rendered as one frame with the dose of
//! all its frames, once with its noise and once practically noise-free
//! (dose × 10⁴, no read noise), without drift so that both share one
//! geometry. The column analysis (`--neighbours joint`) then takes the
//! detection (sites, positions, start widths) from one and measures the
//! volumes on the other: the four combinations show whether noise acts
//! through the detection or through the volume fit. `bare` keeps the
//! columns alone, `no-texture` drops the support's texture,
//! `no-support-steps` drops texture and the plateau under the particle.
//! Findings are in docs/benchmarks.md.
use qdscope::stem::columns::{analyse_with, ColumnsParams};
use qdscope::stem::gaussian::Neighbours;
use qdscope::stem::pipeline::{prepare, PrepareParams};
use qdscope::stem::testbed::{draw_case, render_case, CaseRanges};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let r = CaseRanges {
        max_field_px: 512,
        ..CaseRanges::default()
    };
    let mut c = draw_case(seed, &r);
    match args.get(2).map(String::as_str) {
        Some("bare") => c = c.columns_only(),
        Some("no-texture") => c.texture_height_max = 0.0,
        Some("no-support-steps") => {
            c.texture_height_max = 0.0;
            c.plateau_rel = 0.0;
        }
        _ => {}
    }
    let cp = ColumnsParams {
        lattice_angstrom: c.lattice_angstrom,
        neighbours: Neighbours::Joint,
        ..ColumnsParams::default()
    };
    c.dose_counts *= c.n_frames as f64;
    c.n_frames = 1;
    c.shifts_px = vec![(0.0, 0.0)];
    let mut clean = c.clone();
    clean.dose_counts *= 1e4;
    clean.read_noise_counts = 0.0;
    let (noisy_stack, truth) = render_case(&c).expect("testbed case renders");
    let (clean_stack, _) = render_case(&clean).expect("testbed case renders");
    let Some(t) = truth.ratio_volume else {
        println!("case {seed} has no interior columns of a class: no truth");
        return;
    };
    let pn = prepare(noisy_stack, &PrepareParams::default(), None).expect("prepare (noisy)");
    let pc = prepare(clean_stack, &PrepareParams::default(), None).expect("prepare (clean)");
    for (name, det, vol) in [
        ("detection clean, volumes clean", &pc, &pc),
        ("detection noisy, volumes noisy", &pn, &pn),
        ("detection clean, volumes noisy", &pc, &pn),
        ("detection noisy, volumes clean", &pn, &pc),
    ] {
        match analyse_with("x", &det.prepared, Some(&vol.averaged), &cp) {
            Ok(r) => {
                let dose = if std::ptr::eq(vol, &pc) {
                    clean.dose_counts
                } else {
                    c.dose_counts
                };
                let stats = |s: qdscope::stem::sublattice::Sublattice| {
                    let v: Vec<_> = r.of(s).filter(|c| c.in_ratio).collect();
                    let n = v.len().max(1) as f64;
                    (
                        v.iter().map(|c| c.fit.params.volume()).sum::<f64>() / n / dose,
                        v.iter().map(|c| c.fit.params.sigma_x).sum::<f64>() / n,
                        v.iter().map(|c| c.fit.params.height).sum::<f64>() / n / dose,
                    )
                };
                let (cs, pb) = (
                    stats(qdscope::stem::sublattice::Sublattice::Cs),
                    stats(qdscope::stem::sublattice::Sublattice::PbBr),
                );
                println!("{name:>32}: error {:+.4}  Cs V/dose {:.2} σ {:.3} A/dose {:.3} | Pb/Br V/dose {:.2} σ {:.3} A/dose {:.3}", r.ratio_volume.ratio - t, cs.0, cs.1, cs.2, pb.0, pb.1, pb.2);
            }
            Err(e) => println!("{name:>32}: refused: {e}"),
        }
    }
}
