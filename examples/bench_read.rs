//! Reading a 10-frame 1024² stack from DM4 and Velox EMD vs `cat` of the
//! same file (target: within 2× of `cat`, warm page cache).
//!
//! `cargo run --release --example bench_read` — writes the files under
//! `target/bench_read/`, then times (best of 5) `cat FILE > /dev/null` and
//! `qdscope::io::load_stack` (parse + calibrated float32 stack, what
//! `prepare`/`analyze` need), and prints a table.
use std::path::Path;
use std::process::Command;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/support/testfiles.rs"]
mod testfiles;

use testfiles::{dm_file, DmImage, Tag};

fn best(f: &mut dyn FnMut()) -> f64 {
    let mut b = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        f();
        b = b.min(t.elapsed().as_secs_f64());
    }
    b
}

fn cat(p: &Path) -> f64 {
    best(&mut || {
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!("cat '{}' > /dev/null", p.display()))
            .status();
        assert!(st.is_ok_and(|s| s.success()));
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    qdscope::keep_freed_memory();
    let dir = Path::new("target/bench_read");
    std::fs::create_dir_all(dir)?;
    let (n, nf) = (1024usize, 10usize);
    // Counts with noise (xorshift), so deflate has realistic work to do.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let pixels: Vec<u16> = (0..n * n * nf)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (200 + (i % 64) as u64 * 8 + (x % 64)) as u16
        })
        .collect();
    let dm = dir.join("stack.dm4");
    let bytes: Vec<u8> = pixels.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(
        &dm,
        dm_file(
            4,
            true,
            &[DmImage {
                name: "HAADF".into(),
                data_type: 10,
                dims: vec![n, n, nf],
                data: Tag::Array(4, bytes),
                scale: (0.0125, "nm".into()),
                voltage_v: Some(300_000.0),
            }],
        ),
    )?;
    let mut rows = Vec::new();
    for (name, deflate) in [("stack.emd", false), ("stack-deflate.emd", true)] {
        let p = dir.join(name);
        let f = rust_hdf5::H5File::create(&p)?;
        let g = f
            .create_group("Data")?
            .create_group("Image")?
            .create_group("0123")?;
        // Velox layout (y, x, frame), one chunk per frame.
        let mut yxf = vec![0u16; n * n * nf];
        for fr in 0..nf {
            for px in 0..n * n {
                yxf[px * nf + fr] = pixels[fr * n * n + px];
            }
        }
        let b = g.new_dataset::<u16>().shape([n, n, nf]).chunk(&[n, n, 1]);
        let b = if deflate { b.deflate(1) } else { b };
        b.create("Data")?.write_raw(&yxf)?;
        f.close()?;
        rows.push((name, p));
    }
    println!("| file | size (MB) | cat (ms) | qdscope load_stack (ms) | ratio |");
    println!("|---|---|---|---|---|");
    for (name, p) in std::iter::once(("stack.dm4", dm.clone())).chain(rows) {
        let size = std::fs::metadata(&p)?.len() as f64 / 1e6;
        let tc = cat(&p);
        let mut err = None;
        let tq = best(&mut || {
            if let Err(e) = qdscope::io::load_stack(&p, None) {
                err = Some(e.to_string());
            }
        });
        if let Some(e) = err {
            return Err(e.into());
        }
        println!(
            "| {name} | {size:.1} | {:.1} | {:.1} | {:.2} |",
            tc * 1e3,
            tq * 1e3,
            tq / tc
        );
    }
    Ok(())
}
