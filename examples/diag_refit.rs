//! Variants of the joint volume refit on one testbed case (a diagnostic
//! beside `examples/accuracy.rs`, not a benchmark):
//!
//! ```text
//! cargo run --release --example diag_refit -- SEED [VARIANT] [NAME]
//! ```
//!
//! Case SEED (fields ≤ 512 px) as one frame with the dose of all its
//! frames, no drift; VARIANT (comma-separated) drops parts of the scene:
//! `plateau-only` (no smooth field, texture, bump or ramp), `no-plateau`,
//! `clean` (dose × 10⁴, no read noise). The detection runs on the prepared
//! frame; the refit of its sites runs on the raw frame with the refit's
//! settings (`as refit`) and with one thing changed each (plateau term off,
//! Tukey weights off, round columns, 40 iterations, a larger region, a
//! coarser grid, positions free to the end instead of averaged over their
//! neighbours, positions held on the lattice); NAME keeps only the
//! variants whose name contains it.
//! Each line: the interior ratio and its error, class widths, shape, the
//! plateau (height, offset, edge) and the support's excess (level, pixels).
//! Findings are in docs/benchmarks.md.
use qdscope::error::Warnings;
use qdscope::stem::detect::{self, DetectParams};
use qdscope::stem::joint::{self, JointParams};
use qdscope::stem::pipeline::{prepare, PrepareParams};
use qdscope::stem::sites::SiteKind;
use qdscope::stem::testbed::{draw_case, render_case, CaseRanges};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(35);
    let variant = args.get(2).cloned().unwrap_or_default();
    let r = CaseRanges {
        max_field_px: 512,
        ..CaseRanges::default()
    };
    let mut c = draw_case(seed, &r);
    if variant.contains("plateau-only") {
        c.smooth_modes.clear();
        c.texture_height_max = 0.0;
        c.low_frequency_amplitude_rel = 0.0;
        c.ramp_rel = 0.0;
    }
    if variant.contains("no-plateau") {
        c.plateau_rel = 0.0;
    }
    c.dose_counts *= c.n_frames as f64;
    c.n_frames = 1;
    c.shifts_px = vec![(0.0, 0.0)];
    if variant.contains("clean") {
        c.dose_counts *= 1e4;
        c.read_noise_counts = 0.0;
    }
    let (stack, truth) = render_case(&c).expect("renders");
    let t = truth.ratio_volume.unwrap_or(f64::NAN);
    let ps = c.pixel_size_angstrom;
    let a_px = c.lattice_angstrom / ps;
    let prep = prepare(stack, &PrepareParams::default(), None).expect("prepare");
    let dp = DetectParams {
        expected_lattice_angstrom: c.lattice_angstrom,
        ..DetectParams::default()
    };
    let prepared = prep.prepared.data.mapv(f64::from);
    let lin = prep.averaged.data.mapv(f64::from);
    let mut w = Warnings::default();
    let det = detect::detect("x", prepared.view(), ps, &dp, &mut w).expect("detect");
    println!(
        "case {seed}: a {a_px:.1} px, plateau {:.2}, edge {:.2} Å, truth {t:.4}, det σ {:.3?}",
        c.plateau_rel, c.plateau_edge_angstrom, det.fit.sigma_px
    );
    let occupied: Vec<usize> = detect::occupied_sites(&det);
    println!(
        "sites {}, occupied {}, interior {}, region {} px, corner bright {}",
        det.model.sites.len(),
        occupied.len(),
        det.columns.iter().filter(|d| d.interior).count(),
        det.model.region.iter().filter(|v| **v).count(),
        det.corner_is_bright
    );
    let (base_cols, base) = detect::refit_model(&det, a_px, detect::REFIT_BACKGROUND);
    let grow = |r: usize| -> ndarray::Array2<bool> {
        qdscope::stem::mask::grow(&det.model.region, r).expect("grow")
    };
    let mut variants: Vec<(&str, JointParams, ndarray::Array2<bool>)> = vec![
        ("as refit", base.clone(), det.model.region.clone()),
        (
            "no plateau",
            JointParams {
                plateau_sites: vec![],
                ..base.clone()
            },
            det.model.region.clone(),
        ),
        (
            "not robust",
            JointParams {
                robust: false,
                ..base.clone()
            },
            det.model.region.clone(),
        ),
        (
            "round",
            JointParams {
                elliptical: false,
                ..base.clone()
            },
            det.model.region.clone(),
        ),
        (
            "40 iterations",
            JointParams {
                iterations: 40,
                ..base.clone()
            },
            det.model.region.clone(),
        ),
        ("region +0.5a", base.clone(), grow((0.5 * a_px) as usize)),
        (
            "region +1a no plateau",
            JointParams {
                plateau_sites: vec![],
                ..base.clone()
            },
            grow(a_px as usize),
        ),
        (
            "grid 2a",
            JointParams {
                background_spacing_px: 2.0 * a_px,
                background_axes: None,
                ..base.clone()
            },
            det.model.region.clone(),
        ),
        (
            "grid 2a region +1a",
            JointParams {
                background_spacing_px: 2.0 * a_px,
                background_axes: None,
                ..base.clone()
            },
            grow(a_px as usize),
        ),
        (
            "free positions",
            JointParams {
                position_smoothing_px: 0.0,
                ..base.clone()
            },
            det.model.region.clone(),
        ),
        ("lattice fixed", base.clone(), det.model.region.clone()),
    ];
    if let Some(only) = args.get(3) {
        variants.retain(|v| v.0.contains(only.as_str()));
    }
    // The refit's sites held on the image's affine lattice throughout
    // (exact for the testbed's undistorted particles).
    let held: Vec<joint::JointColumn> = base_cols
        .iter()
        .map(|c| joint::JointColumn { fixed: true, ..*c })
        .collect();
    for (name, jp, region) in variants {
        let cols = if name == "lattice fixed" {
            &held
        } else {
            &base_cols
        };
        let f = match joint::fit(lin.view(), Some(region.view()), cols, &jp) {
            Ok(f) => f,
            Err(e) => {
                println!("{name:>24}: {e}");
                continue;
            }
        };
        let mean = |corner: bool| {
            let v: Vec<f64> = det
                .columns
                .iter()
                .filter(|d| d.interior && d.site.kind != SiteKind::Anion)
                .filter(|d| (d.site.kind == SiteKind::Corner) == corner)
                .map(|d| f.volume[d.fit_index])
                .collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let (b, d) = if det.corner_is_bright {
            (mean(true), mean(false))
        } else {
            (mean(false), mean(true))
        };
        println!(
            "{name:>24}: ratio {:.4} ({:+.4}) σ {:.3?} q {:.3?} plateau {:?} it {} conv {}",
            d / b,
            d / b - t,
            f.sigma_px,
            f.shape_q,
            (
                f.plateau.map(|p| (
                    p.height.round(),
                    (p.offset_px * 100.0).round() / 100.0,
                    (p.edge_px * 100.0).round() / 100.0
                )),
                f.support_excess
            ),
            f.iterations,
            f.converged
        );
    }
}
