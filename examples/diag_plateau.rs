//! The plateau term of the joint volume refit on one testbed case (a
//! diagnostic beside `examples/accuracy.rs`, not a benchmark):
//!
//! ```text
//! cargo run --release --example diag_plateau -- SEED [noisy]
//! ```
//!
//! Case SEED (fields ≤ 512 px) with the plateau as the only support
//! component, one frame, noise-free (or with `noisy` the counting and read
//! noise of one frame with the dose of all the case's frames): the detection on the raw frame and on
//! the prepared one, and the volume refit of each on the raw frame, with
//! what the fit found (occupied sites, region, widths, plateau height,
//! offset and edge) and the ratio of the interior columns.
use qdscope::error::Warnings;
use qdscope::image::{Calibration, Stack};
use qdscope::stem::detect::{self, DetectParams, Detection};
use qdscope::stem::pipeline::{prepare, PrepareParams};
use qdscope::stem::sites::SiteKind;
use qdscope::stem::testbed::{draw_case, render_case, render_clean, CaseRanges};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let r = CaseRanges {
        max_field_px: 512,
        ..CaseRanges::default()
    };
    let mut case = draw_case(seed, &r);
    case.smooth_modes.clear();
    case.texture_height_max = 0.0;
    case.low_frequency_amplitude_rel = 0.0;
    case.ramp_rel = 0.0;
    let (_, truth) = render_case(&case).expect("case renders");
    let t = truth.ratio_volume.unwrap_or(f64::NAN);
    let ps = case.pixel_size_angstrom;
    let a_px = case.lattice_angstrom / ps;
    println!(
        "case {seed}: {} cells, a {:.1} px, plateau {:.2} of the bright peak, edge {:.2} Å, truth {t:.4}",
        case.n_cells, a_px, case.plateau_rel, case.plateau_edge_angstrom
    );
    let raw = if args.get(2).map(String::as_str) == Some("noisy") {
        case.dose_counts *= case.n_frames as f64;
        case.n_frames = 1;
        case.shifts_px = vec![(0.0, 0.0)];
        let (st, _) = render_case(&case).expect("case renders");
        st.data.index_axis(ndarray::Axis(0), 0).mapv(f64::from)
    } else {
        render_clean(&case).expect("case renders")
    };
    let cal = Calibration::from_pixel_size(ps).expect("calibration");
    let st = Stack::new(raw.mapv(|v| v as f32).insert_axis(ndarray::Axis(0)), cal).expect("stack");
    let prep = prepare(st, &PrepareParams::default(), None).expect("prepare");
    let dp = DetectParams {
        expected_lattice_angstrom: case.lattice_angstrom,
        ..DetectParams::default()
    };
    let averaged = prep.averaged.data.mapv(f64::from);
    let prepared = prep.prepared.data.mapv(f64::from);
    let mut w = Warnings::default();
    for (name, det_img, vol_img) in [("raw", &raw, &raw), ("prepared", &prepared, &averaged)] {
        let det = match detect::detect(name, det_img.view(), ps, &dp, &mut w) {
            Ok(d) => d,
            Err(e) => {
                println!("  {name}: {e}");
                continue;
            }
        };
        report(name, &det, det_img, vol_img, a_px, t);
    }
}

fn report(
    name: &str,
    det: &Detection,
    det_img: &ndarray::Array2<f64>,
    vol_img: &ndarray::Array2<f64>,
    a_px: f64,
    t: f64,
) {
    let occ = det
        .columns
        .iter()
        .filter(|c| c.occupied && c.site.kind != SiteKind::Anion)
        .count();
    let region = det.model.region.iter().filter(|v| **v).count();
    println!(
        "  {name}: image {:?}, {occ} occupied, region {region} px, detection σ {:?}",
        det_img.dim(),
        det.fit.sigma_px
    );
    for (grid, f) in [
        (
            detect::REFIT_BACKGROUND,
            detect::refit(vol_img.view(), det, a_px, None),
        ),
        (
            detect::CHECK_BACKGROUND,
            detect::refit_with_grid(vol_img.view(), det, a_px, detect::CHECK_BACKGROUND, None),
        ),
    ] {
        let Ok(f) = f else {
            println!("    grid {grid}: refit failed");
            continue;
        };
        let mean = |corner: bool| {
            let v: Vec<f64> = det
                .columns
                .iter()
                .filter(|c| c.interior && (c.site.kind == SiteKind::Corner) == corner)
                .filter(|c| c.site.kind != SiteKind::Anion)
                .map(|c| f.volume[c.fit_index])
                .collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let (bright, dim) = if det.corner_is_bright {
            (mean(true), mean(false))
        } else {
            (mean(false), mean(true))
        };
        println!(
            "    grid {grid}: ratio {:.4} ({:+.4}), σ {:.2?}, plateau {:?}, iterations {} converged {}",
            dim / bright,
            dim / bright - t,
            f.sigma_px,
            f.plateau,
            f.iterations,
            f.converged
        );
    }
}
