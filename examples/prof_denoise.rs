//! Profile helper: Du denoising of a 1024² synthetic image (10 iterations).
use qdscope::stem::denoise::{denoise, DenoiseParams};
use qdscope::stem::synth::{render_scene, SynthParams};
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn main() {
    qdscope::keep_freed_memory();
    let p = SynthParams {
        rows: 1024,
        cols: 1024,
        ..SynthParams::default()
    };
    let (img, _) = render_scene(&p).unwrap();
    let img = img.mapv(|v| v as f32);
    let it: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let t = std::time::Instant::now();
    let d = denoise(
        img.view(),
        &DenoiseParams {
            iterations: it,
            ..DenoiseParams::default()
        },
    )
    .unwrap();
    println!(
        "{it} iterations: {:.0} ms ({})",
        t.elapsed().as_secs_f64() * 1e3,
        d.image[[5, 5]]
    );
}
