//! 7-parameter Gaussian fits of ≥ 1000 columns, the peer being Atomap's
//! `refine_atom_positions_using_2d_gaussian`, on the same image and the
//! same starting positions.
//!
//! `cargo run --release --example bench_columns -- OUT_DIR` writes
//! `OUT_DIR/columns_image.npy` (1024², 0.25 Å/px, a 24-cell CsPbBr3 QD:
//! 1201 Cs + Pb/Br columns, Poisson noise at 10× the demo's per-frame
//! dose, i.e. an averaged 10-frame series, no background),
//! `columns_starts.npy` (our centroids, x y), `columns_truth.npy`,
//! `columns_qdscope.npy` (fitted x y) and `bench_columns.json` (best-of-3
//! time in ms, fit radius in px). The whole comparison:
//! `bash examples/bench_columns.sh`.
use std::path::PathBuf;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use ndarray::Array2;
use qdscope::io;
use qdscope::stem::gaussian::{fit_columns, FitParams, Neighbours};
use qdscope::stem::peaks::{find_peaks, CentroidBackground, PeakParams};
use qdscope::stem::synth::{generate, ColumnKind, SynthParams};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    qdscope::keep_freed_memory();
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/bench".into()),
    );
    std::fs::create_dir_all(&out)?;
    let p = SynthParams {
        rows: 1024,
        cols: 1024,
        frames: 1,
        n_cells: 24,
        peak_counts: 600.0,
        read_noise_counts: 0.0,
        pedestal: 0.0,
        support_level: 0.0,
        support_variation: 0.0,
        ..SynthParams::default()
    };
    let (stack, truth) = generate(&p)?;
    let img: Array2<f64> = stack.frame(0).mapv(f64::from);
    let a_px = p.lattice_angstrom / p.pixel_size_angstrom;
    let search = find_peaks(
        img.view(),
        &PeakParams {
            min_separation_px: 0.5622 * a_px,
            threshold_rel: 0.1,
            threshold_abs: None,
            smooth_sigma_px: 0.5,
            exclude_border_px: 10.0,
            centroid_radius_px: 0.35 * a_px / 2.0,
            centroid_background: CentroidBackground::DiskMin,
        },
        None,
    )?;
    let starts: Vec<(f64, f64)> = search.peaks.iter().map(|q| (q.x, q.y)).collect();
    // Atomap's default mask: 40 % of the nearest-neighbour distance (a/√2).
    let radius = 0.4 * a_px / std::f64::consts::SQRT_2;
    let opts = FitParams {
        radius_px: radius,
        poisson_weights: false,
        neighbours: Neighbours::Single,
        sweeps: 0,
    };
    let mut best = f64::INFINITY;
    let mut fits = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        fits = fit_columns(img.view(), &starts, &opts)?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    let n_ok = fits.iter().filter(|f| f.converged()).count();
    let to_arr = |v: Vec<[f64; 2]>| Array2::from_shape_fn((v.len(), 2), |(i, j)| v[i][j] as f32);
    io::write_npy_2d(&out.join("columns_image.npy"), stack.frame(0))?;
    io::write_npy_2d(
        &out.join("columns_starts.npy"),
        to_arr(starts.iter().map(|s| [s.0, s.1]).collect()).view(),
    )?;
    io::write_npy_2d(
        &out.join("columns_qdscope.npy"),
        to_arr(fits.iter().map(|f| [f.params.x0, f.params.y0]).collect()).view(),
    )?;
    io::write_npy_2d(
        &out.join("columns_truth.npy"),
        to_arr(
            truth
                .columns
                .iter()
                .filter(|c| c.kind != ColumnKind::Br)
                .map(|c| [c.x_px, c.y_px])
                .collect(),
        )
        .view(),
    )?;
    let ms = best * 1e3;
    println!(
        "qdscope: {} columns fitted ({} converged) in {ms:.1} ms ({:.1} µs/column, fit radius {radius:.2} px)",
        fits.len(),
        n_ok,
        ms * 1e3 / fits.len() as f64
    );
    std::fs::write(
        out.join("bench_columns.json"),
        format!(
            "{{\"ms\": {ms}, \"columns\": {}, \"converged\": {n_ok}, \"radius_px\": {radius}}}\n",
            fits.len()
        ),
    )?;
    Ok(())
}
