//! The Rust API end to end: make a small synthetic stack of a CsPbBr3 QD
//! (or read one), analyse it with `qdscope::stem::analyze`, and print the
//! Cs : Pb/Br ratio and the columns per class.
//!
//! ```sh
//! cargo run --release --example analyze_image             # synthetic stack
//! cargo run --release --example analyze_image -- FILE     # any supported file
//! ```
//!
//! `cargo test` runs it on the synthetic stack (`[[example]] test = true`).

use std::path::Path;

use qdscope::stem::analyze::{analyze, analyze_file, Analysis, AnalyzeParams};
use qdscope::stem::synth::{generate, SynthParams};

/// Analyse `path`, or a synthetic stack of known ratio when `None`.
fn run(path: Option<&Path>) -> qdscope::Result<Analysis> {
    // The command line's defaults, adjusted in code: fewer denoising
    // iterations, and the weak pure-Br columns fitted too.
    let mut params = AnalyzeParams::default();
    params.prepare.denoise.iterations = 20;
    params.columns.fit_br = true;
    match path {
        Some(p) => analyze_file(p, None, &params),
        None => {
            // 4 frames of 192 × 192 px at 0.25 Å/px, a 6-cell QD with a
            // Cs : Pb/Br peak-height ratio of 0.35, drift and noise.
            let synth = SynthParams {
                rows: 192,
                cols: 192,
                frames: 4,
                n_cells: 6,
                ..SynthParams::default()
            };
            let (stack, _truth) = generate(&synth)?;
            analyze(stack, &params)
        }
    }
}

fn report(a: &Analysis) {
    let s = &a.summary;
    println!(
        "{}: {} frames of {} × {} px, pixel size {} Å ({:?})",
        a.input,
        a.input_shape_frames_y_x[0],
        a.input_shape_frames_y_x[1],
        a.input_shape_frames_y_x[2],
        s.pixel_size_angstrom,
        a.sources.sources.pixel_size_angstrom
    );
    println!(
        "columns: {} Cs, {} Pb/Br, {} Br, {} unassigned ({} failed fits, {} on the edge)",
        s.n_cs, s.n_pbbr, s.n_br, s.n_unassigned, s.n_failed, s.n_edge
    );
    let sd = s
        .ratio_volume_sd
        .map_or("n/a".into(), |v| format!("{v:.4}"));
    println!(
        "Cs : Pb/Br volume ratio {:.4} ± {sd} ({} Cs and {} Pb/Br columns), height ratio {:.4}",
        s.ratio_volume_mean, s.n_cs_in_ratio, s.n_pbbr_in_ratio, s.ratio_height_mean
    );
    if let Some(d) = s.lattice_spacing_angstrom {
        println!("peak-pair spacing {d:.3} Å");
    }
    for w in &a.warnings.0 {
        println!("warning: {w}");
    }
}

fn main() {
    let arg = std::env::args_os().nth(1);
    match run(arg.as_deref().map(Path::new)) {
        Ok(a) => report(&a),
        Err(e) => {
            eprintln!("analyze_image: error: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn analyses_the_synthetic_stack() {
        let t0 = std::time::Instant::now();
        let a = super::run(None).expect("the synthetic stack is analysed");
        super::report(&a);
        let s = &a.summary;
        assert!(s.n_cs >= 10 && s.n_pbbr >= 10 && s.n_br >= 10, "{s:?}");
        // Volumes of the synthetic columns: ratio of peak heights 0.35,
        // equal widths; measured within a few per cent.
        assert!((s.ratio_volume_mean - 0.35).abs() < 0.05, "{s:?}");
        assert!(t0.elapsed().as_secs_f64() < 30.0);
    }
}
