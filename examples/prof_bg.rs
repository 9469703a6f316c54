use qdscope::stem::background::{gaussian_filter, opening, Decomposition, Footprint};
use qdscope::stem::synth::{generate, SynthParams};
use std::time::Instant;
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn main() {
    qdscope::keep_freed_memory();
    let p = SynthParams {
        rows: 1024,
        cols: 1024,
        frames: 1,
        pixel_size_angstrom: 0.125,
        n_cells: 20,
        ..SynthParams::default()
    };
    let (stack, _) = generate(&p).unwrap();
    let img = stack.frame(0).to_owned();
    for r in [5usize, 10, 20, 50] {
        let fp = Footprint::disk(r, Decomposition::N4).unwrap();
        let (mut to, mut tg) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..7 {
            let t = Instant::now();
            let o = opening(img.view(), &fp);
            to = to.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let g = gaussian_filter(o.view(), r as f64, 2.0).unwrap();
            tg = tg.min(t.elapsed().as_secs_f64());
            std::hint::black_box(g);
        }
        println!(
            "R {r}: opening {:.2} ms, gaussian {:.2} ms, lines {}",
            to * 1e3,
            tg * 1e3,
            fp.lines().len()
        );
    }
}
