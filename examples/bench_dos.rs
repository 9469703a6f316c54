//! Generator for the VDOS benchmark: `N_ATOMS` independent 3-D oscillators
//! (Cs/Pb/Br cluster, 300 K, equipartition amplitudes) written as CP2K
//! `-pos-1.xyz` (Å) and `-vel-1.xyz` (bohr/a.u.t), streamed to disk so any
//! number of steps fits.
//!
//! `cargo run --release --example bench_dos -- OUT_DIR N_ATOMS N_STEPS`
//! (the whole comparison: `bash examples/bench_dos.sh`).
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use qdscope::phonon::rigid::mass_amu;
use qdscope::units::{AMU_A2_PER_FS2_EV, AU_VELOCITY_ANGSTROM_PER_FS, KB_EV_PER_K};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Element, site (Å), and per axis (amplitude Å, ω rad/fs, phase).
type Atom = (&'static str, [f64; 3], [(f64, f64, f64); 3]);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(args.get(1).map_or("target/bench", String::as_str));
    let n_atoms: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let n_steps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20000);
    std::fs::create_dir_all(&out)?;
    let dt = 5.0;
    let mut rng = StdRng::seed_from_u64(1);
    let kt = KB_EV_PER_K * 300.0;
    let atoms: Vec<Atom> = (0..n_atoms)
        .map(|i| {
            let el = ["Cs", "Pb", "Br"][i % 3];
            let m = mass_amu(el).unwrap_or(100.0);
            let r = [
                (i % 10) as f64 * 3.0,
                ((i / 10) % 10) as f64 * 3.0,
                (i / 100) as f64 * 3.0,
            ];
            let osc = [0, 1, 2].map(|_| {
                let e_mev: f64 = rng.gen_range(1.0..25.0);
                let w = e_mev / 658.2119569; // rad/fs
                let a = (2.0 * kt / (m * w * w * AMU_A2_PER_FS2_EV)).sqrt();
                (a, w, rng.gen_range(0.0..std::f64::consts::TAU))
            });
            (el, r, osc)
        })
        .collect();
    let stem = format!("dos{n_atoms}x{n_steps}");
    let mut p = BufWriter::with_capacity(
        1 << 22,
        std::fs::File::create(out.join(format!("{stem}-pos-1.xyz")))?,
    );
    let mut v = BufWriter::with_capacity(
        1 << 22,
        std::fs::File::create(out.join(format!("{stem}-vel-1.xyz")))?,
    );
    for f in 0..n_steps {
        let t = f as f64 * dt;
        let head = format!(
            "{n_atoms:8}\n i = {f:8}, time = {t:12.3}, E = {:20.10}\n",
            -1.0
        );
        p.write_all(head.as_bytes())?;
        v.write_all(head.as_bytes())?;
        for (el, r, osc) in &atoms {
            write!(p, "{el:>3}")?;
            write!(v, "{el:>3}")?;
            for (c, (a, w, ph)) in osc.iter().enumerate() {
                write!(p, " {:19.10}", r[c] + a * (w * t + ph).cos())?;
                write!(
                    v,
                    " {:19.10e}",
                    -a * w * (w * t + ph).sin() / AU_VELOCITY_ANGSTROM_PER_FS
                )?;
            }
            p.write_all(b"\n")?;
            v.write_all(b"\n")?;
        }
    }
    p.flush()?;
    v.flush()?;
    println!(
        "{stem}: {n_atoms} atoms × {n_steps} steps written to {}",
        out.display()
    );
    Ok(())
}
