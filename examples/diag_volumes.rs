//! Where the volume-ratio error of the column chain comes from (a
//! diagnostic beside `examples/accuracy.rs`, not a benchmark):
//!
//! ```text
//! cargo run --release --example diag_volumes -- N SEED [single|sweep|joint] [plateau|texture|smooth]
//! ```
//!
//! For testbed cases SEED … SEED+N−1 (fields ≤ 512 px) it prints the
//! ratio error of: A — the columns alone, noise-free, no `prepare`; B — the
//! whole scene (support) noise-free, no `prepare`; C — B through `prepare`
//! (joint volumes on the linear average); D — the whole chain (noisy
//! frames). The optional fourth argument keeps one support component only
//! in B and C (and skips D). Findings are in docs/benchmarks.md.
use qdscope::image::{Calibration, Image, Stack};
use qdscope::stem::columns::{analyse, analyse_with, ColumnsParams};
use qdscope::stem::gaussian::Neighbours;
use qdscope::stem::pipeline::{prepare, PrepareParams};
use qdscope::stem::testbed::{draw_case, render_case, render_clean, CaseRanges};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(8);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let nb = match args.get(3).map(String::as_str) {
        Some("joint") => Neighbours::Joint,
        Some("sweep") => Neighbours::Sweep,
        _ => Neighbours::Single,
    };
    let r = CaseRanges {
        max_field_px: 512,
        ..CaseRanges::default()
    };
    let mut sums = [0.0f64; 4];
    let mut counts = [0usize; 4];
    for i in 0..n {
        let case = draw_case(seed + i, &r);
        let bare = case.columns_only();
        let (_, truth) = render_case(&bare).unwrap();
        let cal = Calibration::from_pixel_size(case.pixel_size_angstrom).unwrap();
        let cp = ColumnsParams {
            lattice_angstrom: case.lattice_angstrom,
            neighbours: nb,
            ..ColumnsParams::default()
        };
        let run = |img: Image| analyse("x", &img, &cp).map(|r| r.ratio_volume.ratio);
        let a = run(Image::new(
            render_clean(&bare).unwrap().mapv(|v| v as f32),
            cal,
        ));
        let mut case = case.clone();
        match args.get(4).map(String::as_str) {
            Some("plateau") => {
                case.smooth_modes.clear();
                case.texture_height_max = 0.0;
                case.low_frequency_amplitude_rel = 0.0;
                case.ramp_rel = 0.0;
            }
            Some("texture") => {
                case.smooth_modes.clear();
                case.plateau_rel = 0.0;
                case.low_frequency_amplitude_rel = 0.0;
                case.ramp_rel = 0.0;
            }
            Some("smooth") => {
                case.texture_height_max = 0.0;
                case.plateau_rel = 0.0;
            }
            _ => {}
        }
        let full = render_clean(&case).unwrap();
        let b = run(Image::new(full.mapv(|v| v as f32), cal));
        let st = Stack::new(full.mapv(|v| v as f32).insert_axis(ndarray::Axis(0)), cal).unwrap();
        let c = prepare(st, &PrepareParams::default(), None)
            .map_err(|e| e.to_string())
            .and_then(|p| {
                analyse_with("x", &p.prepared, Some(&p.averaged), &cp)
                    .map(|r| r.ratio_volume.ratio)
                    .map_err(|e| e.to_string())
            });
        let d: std::result::Result<f64, String> = if args.len() > 4 {
            Err("skip".into())
        } else {
            let (stack, _) = render_case(&case).unwrap();
            prepare(stack, &PrepareParams::default(), None)
                .map_err(|e| e.to_string())
                .and_then(|p| {
                    analyse_with("x", &p.prepared, Some(&p.averaged), &cp)
                        .map(|r| r.ratio_volume.ratio)
                        .map_err(|e| e.to_string())
                })
        };
        // NaN without a truth ratio (no interior columns of a class).
        let t = truth.ratio_volume.unwrap_or(f64::NAN);
        let f = |x: &std::result::Result<f64, String>| match x {
            Ok(v) => format!("{:+.4}", v - t),
            Err(_) => "refused".into(),
        };
        let a = a.map_err(|e| e.to_string());
        let b = b.map_err(|e| e.to_string());
        for (l, x) in [("A", &a), ("B", &b), ("C", &c), ("D", &d)] {
            if let Err(e) = x {
                eprintln!("  case {i} {l}: {e}");
            }
        }
        for (k, x) in [&a, &b, &c, &d].iter().enumerate() {
            if let Ok(v) = x {
                sums[k] += (v - t).abs();
                counts[k] += 1;
            }
        }
        println!(
            "case {i}: n {} cut {:?} px {:.3} a {:.2} sigma {:.2} Å ({:.2} NN) widen {:.3} ell {:.3} br {:.2} truth {t:.4} | A {} B {} C {} D {}",
            case.n_cells,
            case.cut.map(|c| c.fraction),
            case.pixel_size_angstrom,
            case.lattice_angstrom,
            case.sigma_angstrom,
            case.sigma_angstrom / (case.lattice_angstrom / 2f64.sqrt()),
            case.dim_widening,
            case.ellipticity,
            case.br_fraction,
            f(&a),
            f(&b),
            f(&c),
            f(&d)
        );
    }
    for (k, l) in ["A cols", "B scene", "C scene+prep", "D chain"]
        .iter()
        .enumerate()
    {
        println!(
            "{l}: MAE {:.4} over {}",
            sums[k] / counts[k].max(1) as f64,
            counts[k]
        );
    }
}
