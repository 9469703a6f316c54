//! Background estimate (grey opening with a disk + Gaussian σ = R) on a
//! seeded 1024×1024 float32 image, R = 5, 10, 20, 50 px.
//!
//! `cargo run --release --example bench_background -- OUT_DIR` writes
//! `OUT_DIR/bench_input.npy` (the image the peer script reads),
//! `OUT_DIR/open_exact_R.npy` (qdscope's opening with the exact Euclidean
//! disk, for the agreement check against scikit-image) and
//! `OUT_DIR/bench_background.json` (best-of-15 times in ms). Run the whole
//! comparison with `bash examples/bench_background.sh`.
use std::path::PathBuf;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use qdscope::io;
use qdscope::stem::background::gaussian::gaussian_filter;
use qdscope::stem::background::{estimate, opening, BackgroundParams, Decomposition, Footprint};
use qdscope::stem::synth::{generate, SynthParams};

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
        pixel_size_angstrom: 0.125,
        n_cells: 20,
        ..SynthParams::default()
    };
    let (stack, _) = generate(&p)?;
    let img = stack.frame(0).to_owned();
    io::write_npy_2d(&out.join("bench_input.npy"), img.view())?;
    let mut rows = Vec::new();
    for r in [5usize, 10, 20, 50] {
        let params = BackgroundParams {
            radius_px: r,
            ..Default::default()
        };
        let mut best = f64::INFINITY;
        for _ in 0..15 {
            let t0 = Instant::now();
            let b = estimate(img.view(), &params)?;
            best = best.min(t0.elapsed().as_secs_f64());
            std::hint::black_box(b);
        }
        // Split of the cost: the opening and the Gaussian on their own.
        let fp = Footprint::disk(r, params.decomposition)?;
        let (mut t_open, mut t_gauss) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..15 {
            let t0 = Instant::now();
            let o = opening(img.view(), &fp);
            t_open = t_open.min(t0.elapsed().as_secs_f64());
            let t0 = Instant::now();
            let g = gaussian_filter(o.view(), r as f64, params.truncate)?;
            t_gauss = t_gauss.min(t0.elapsed().as_secs_f64());
            std::hint::black_box(g);
        }
        let exact = opening(img.view(), &Footprint::disk(r, Decomposition::Exact)?);
        io::write_npy_2d(&out.join(format!("open_exact_{r}.npy")), exact.view())?;
        println!(
            "R = {r:>2} px: qdscope background {:.2} ms (opening {:.2} ms, Gaussian {:.2} ms)",
            best * 1e3,
            t_open * 1e3,
            t_gauss * 1e3
        );
        rows.push(format!("\"{r}\": {}", best * 1e3));
    }
    std::fs::write(
        out.join("bench_background.json"),
        format!("{{{}}}\n", rows.join(", ")),
    )?;
    Ok(())
}
