//! Registration of 10 frames of 1024² (target ≤ 1 s on 2 cores).
//!
//! `cargo run --release --example bench_register` — prints the time (best of
//! 3) and the RMS error against the generator's known drift, and writes
//! `target/bench_register.json`.
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use qdscope::stem::register::{register_stack, RegisterParams};
use qdscope::stem::synth::{generate, SynthParams};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    qdscope::keep_freed_memory();
    let p = SynthParams {
        rows: 1024,
        cols: 1024,
        frames: 10,
        pixel_size_angstrom: 0.125,
        n_cells: 20,
        ..SynthParams::default()
    };
    let (stack, truth) = generate(&p)?;
    let params = RegisterParams::default();
    let mut best = f64::INFINITY;
    let mut reg = None;
    for _ in 0..3 {
        let t0 = Instant::now();
        let r = register_stack(&stack, &params)?;
        best = best.min(t0.elapsed().as_secs_f64());
        reg = Some(r);
    }
    let reg = reg.ok_or("no run")?;
    let se: f64 = reg
        .shifts
        .iter()
        .zip(&truth.shifts_px)
        .map(|(s, t)| (s.dy - t.0).powi(2) + (s.dx - t.1).powi(2))
        .sum();
    let rms = (se / reg.shifts.len() as f64).sqrt();
    println!(
        "| register 10 × 1024² | {:.0} ms | RMS error {:.4} px | passes {} | threads {} |",
        best * 1e3,
        rms,
        reg.passes,
        rayon::current_num_threads()
    );
    std::fs::create_dir_all("target")?;
    std::fs::write(
        "target/bench_register.json",
        format!(
            "{{\"seconds\": {best}, \"rms_error_px\": {rms}, \"passes\": {}}}\n",
            reg.passes
        ),
    )?;
    Ok(())
}
