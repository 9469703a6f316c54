//! Denoising (50 iterations), Richardson–Lucy (10 iterations, non-blind) and
//! blind RL (10 iterations) on a seeded 1024×1024 float32 image.
//!
//! `cargo run --release --example bench_deconvolve -- OUT_DIR` writes
//! `OUT_DIR/deconv_input.npy`, `OUT_DIR/deconv_psf.npy` (41×41 probe PSF at
//! 0.1 Å/px, 300 kV, 18 mrad), our outputs for the agreement check, and
//! `OUT_DIR/bench_deconvolve.json` (best-of-3 times in ms). The whole
//! comparison: `bash examples/bench_deconvolve.sh`.
use std::path::PathBuf;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use qdscope::io;
use qdscope::optics::{psf_for_sampling, Microscope};
use qdscope::stem::deconvolve::{deconvolve, richardson_lucy, DeconvolveParams};
use qdscope::stem::denoise::{denoise, DenoiseParams};
use qdscope::stem::synth::{generate, SynthParams};

fn best<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut b = f64::INFINITY;
    let mut out = None;
    for _ in 0..reps {
        let t = Instant::now();
        let r = f();
        b = b.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (b * 1e3, out.expect("reps ≥ 1"))
}

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
        pixel_size_angstrom: 0.1,
        n_cells: 16,
        ..SynthParams::default()
    };
    let (stack, _) = generate(&p)?;
    let img = stack.frame(0).to_owned();
    let psf = psf_for_sampling(&Microscope::default(), 0.1)?;
    io::write_npy_2d(&out.join("deconv_input.npy"), img.view())?;
    io::write_npy_2d(&out.join("deconv_psf.npy"), psf.mapv(|v| v as f32).view())?;
    let (t_rl, rl) = best(3, || richardson_lucy(img.view(), psf.view(), 10));
    io::write_npy_2d(&out.join("deconv_rl_qdscope.npy"), rl?.view())?;
    let (t_blind, _) = best(3, || {
        deconvolve(img.view(), psf.view(), &DeconvolveParams::default())
    });
    let (t_dn, dn) = best(2, || denoise(img.view(), &DenoiseParams::default()));
    io::write_npy_2d(&out.join("denoise_qdscope.npy"), dn?.image.view())?;
    println!("RL 10 it {t_rl:.0} ms, blind RL 10 it {t_blind:.0} ms, denoise 50 it {t_dn:.0} ms");
    std::fs::write(
        out.join("bench_deconvolve.json"),
        format!("{{\"rl\": {t_rl}, \"blind\": {t_blind}, \"denoise\": {t_dn}}}\n"),
    )?;
    Ok(())
}
