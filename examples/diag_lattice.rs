//! The lattice measurement on one testbed case (a diagnostic beside
//! `examples/accuracy.rs`, not a benchmark):
//!
//! ```text
//! cargo run --release --example diag_lattice -- SEED
//! ```
//!
//! Case SEED (fields ≤ 512 px) through `prepare`; prints the case's lattice
//! constant and dim/bright ratio, the candidate reflections of the prepared
//! image's spectrum (Tukey window over the field) in units of the true
//! reciprocal constant 1/a, and the lattice `detect` measures (or its
//! refusal). Findings are in docs/benchmarks.md.
use qdscope::error::Warnings;
use qdscope::stem::detect::{self, DetectParams};
use qdscope::stem::pipeline::{prepare, PrepareParams};
use qdscope::stem::reciprocal::{self, LatticeSearch};
use qdscope::stem::testbed::{draw_case, render_case, CaseRanges};

fn tukey(i: usize, n: usize) -> f64 {
    let t = i as f64 / (n.max(2) - 1) as f64;
    let e = 0.125;
    if t < e {
        0.5 * (1.0 - (std::f64::consts::PI * t / e).cos())
    } else if t > 1.0 - e {
        0.5 * (1.0 - (std::f64::consts::PI * (1.0 - t) / e).cos())
    } else {
        1.0
    }
}

fn main() {
    let seed: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let r = CaseRanges {
        max_field_px: 512,
        ..CaseRanges::default()
    };
    let c = draw_case(seed, &r);
    let (stack, truth) = render_case(&c).expect("renders");
    let ps = c.pixel_size_angstrom;
    let a_px = c.lattice_angstrom / ps;
    println!(
        "case {seed}: a {:.2} Å = {a_px:.1} px, σ {:.2} Å, {} cells, truth ratio {:.3}, {} frames, dose {:.0}",
        c.lattice_angstrom,
        c.sigma_angstrom,
        c.n_cells,
        truth.ratio_volume.unwrap_or(f64::NAN),
        c.n_frames,
        c.dose_counts
    );
    let prep = prepare(stack, &PrepareParams::default(), None).expect("prepare");
    let img = prep.prepared.data.mapv(f64::from);
    let (ny, nx) = img.dim();
    let w = ndarray::Array2::from_shape_fn((ny, nx), |(y, x)| tukey(y, ny) * tukey(x, nx));
    let s = LatticeSearch {
        d_min_px: (0.3 * a_px).max(2.0),
        d_max_px: (1.6 * a_px).max(4.0),
        min_contrast: 3.0,
    };
    match reciprocal::measure(img.view(), w.view(), &s) {
        Ok(m) => {
            for r in m.reflections.iter().take(16) {
                println!(
                    "  k·a = ({:+.3}, {:+.3}) |k|·a {:.3}  contrast {:.1}",
                    r.k[0] * a_px,
                    r.k[1] * a_px,
                    r.k[0].hypot(r.k[1]) * a_px,
                    r.contrast
                );
            }
        }
        Err(e) => println!("  spectrum: {e}"),
    }
    let dp = DetectParams {
        expected_lattice_angstrom: c.lattice_angstrom,
        ..DetectParams::default()
    };
    let mut warn = Warnings::default();
    match detect::detect("x", img.view(), ps, &dp, &mut warn) {
        Ok(d) => println!(
            "detect: a {:.3} Å, contrast {:.1?}",
            d.report.measured_angstrom, d.report.contrast_10
        ),
        Err(e) => println!("detect: {e}"),
    }
}
