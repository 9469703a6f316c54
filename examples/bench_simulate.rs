//! qdscope's multislice (and PRISM) against abTEM on the same crystal,
//! parameters and sampling: CsPbBr3 [001], 300 kV, 18 mrad, ADF 35–190
//! mrad, static crystal, no focal spread, 3×3 u.c. supercell on a 768²
//! grid (Δx = 0.0229 Å: band limit 286 mrad ≥ outer angle + α, atoms on
//! pixels; qdscope's transmission oversampled 2×), slices of a/2, 24×24
//! probe positions over one
//! unit cell (every position computed, no symmetry wedge), 15 u.c. with
//! the intensity after every unit cell. Both codes' raw cell images go
//! through the same qdscope post-processing (source 0.25 Å FWHM + 0.3 Å
//! blur, resampling at 0.1 Å/px, 7-parameter column fits), so the ratio
//! difference is the simulators' difference alone.
//!
//! `cargo run --release --example bench_simulate -- run OUT [multislice|prism2]`
//! writes `OUT/qdscope_<method>.json` (the summed detector fractions and
//! the wall time); `... -- compare OUT` reads those and abTEM's
//! `OUT/abtem_<method>.npy` + `OUT/abtem_<method>.json` (written by
//! `examples/bench_simulate.py`) and prints the table. Run everything with
//! `bash examples/bench_simulate.sh`.
use std::path::{Path, PathBuf};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use qdscope::multislice::image::series;
use qdscope::multislice::series::{run_shard, Item, Partial, SimParams, RNG_SCHEME};
use qdscope::optics::Microscope;

const THICK: usize = 15;
const PRISM_THICK: usize = 4;

fn params(prism: Option<usize>) -> SimParams {
    SimParams {
        microscope: Microscope {
            energy_spread_ev: 0.0,
            source_size_angstrom: 0.25,
            ..Microscope::default()
        },
        detectors: vec![(35.0, 190.0)],
        blur_angstrom: 0.3,
        // abTEM 1.0.11's S-matrix fails with several exit planes: PRISM is
        // compared at one thickness, 4 u.c. (the peer test of docs/methods/multislice.md).
        max_thickness_uc: if prism.is_some() { PRISM_THICK } else { THICK },
        lattice_angstrom: 5.87,
        supercell_uc: 3,
        grid_n: 768,
        probe_per_cell: 24,
        symmetry_wedge: false,
        phonons: 1,
        defocus_nodes: 1,
        displacement_angstrom: [0.0; 3],
        seed: 1,
        prism_interpolation: prism,
        potential_oversampling: 2,
        double_precision: false,
        rng_scheme: RNG_SCHEME,
    }
}

fn method(name: &str) -> Result<Option<usize>, Box<dyn std::error::Error>> {
    match name {
        "multislice" => Ok(None),
        "prism2" => Ok(Some(2)),
        m => Err(format!("unknown method {m} (multislice or prism2)").into()),
    }
}

/// abTEM's images (thickness 0…T × 24 × 24, plane 0 = entrance) as a
/// qdscope partial with the same parameters.
fn abtem_partial(
    out: &Path,
    m: &str,
    p: &SimParams,
) -> Result<Partial, Box<dyn std::error::Error>> {
    let st = qdscope::io::read_npy(&out.join(format!("abtem_{m}.npy")))?;
    let (nz, ny, nx) = st.data.dim();
    let nt = p.max_thickness_uc;
    // Exit planes 0…T, or (PRISM) the exit plane only, standing in for
    // every thickness (only the last is compared).
    if (nz != nt + 1 && nz != 1) || ny != 24 || nx != 24 {
        return Err(format!("abTEM images have shape {:?}", st.data.dim()).into());
    }
    let sums = vec![(1..=nt)
        .map(|t| {
            st.data
                .slice(ndarray::s![if nz == 1 { 0 } else { t }, .., ..])
                .iter()
                .map(|&v| f64::from(v))
                .collect()
        })
        .collect()];
    Ok(Partial {
        params: p.clone(),
        items: vec![Item {
            config: 0,
            node: 0,
            weight: 1.0,
            sums,
        }],
        min_intensity: f64::NAN,
        seconds: 0.0,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    qdscope::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(args.get(2).map_or("target/bench", String::as_str));
    std::fs::create_dir_all(&out)?;
    match args.get(1).map(String::as_str) {
        Some("run") => {
            let m = args.get(3).map_or("multislice", String::as_str);
            let p = params(method(m)?);
            let part = run_shard(&p, (0, 1), &|| {})?;
            println!("qdscope {m}: {:.1} s", part.seconds);
            std::fs::write(
                out.join(format!("qdscope_{m}.json")),
                serde_json::to_string(&part)?,
            )?;
        }
        Some("compare") => {
            println!("| method | thickness (u.c.) | ratio_height qdscope | ratio_height abTEM | difference | max raw ADF difference | qdscope (s) | abTEM (s) | speed-up |");
            println!("|---|---|---|---|---|---|---|---|---|");
            for m in ["multislice", "prism2"] {
                let f = out.join(format!("qdscope_{m}.json"));
                if !f.is_file() || !out.join(format!("abtem_{m}.npy")).is_file() {
                    continue;
                }
                let ours: Partial = serde_json::from_str(&std::fs::read_to_string(&f)?)?;
                let theirs = abtem_partial(&out, m, &ours.params)?;
                let t_ab: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
                    out.join(format!("abtem_{m}.json")),
                )?)?;
                let t_ab = t_ab["seconds"].as_f64().unwrap_or(f64::NAN);
                let (a, _) = series(&ours, 0, 0.1)?;
                let (b, _) = series(&theirs, 0, 0.1)?;
                let (sa, _) = ours.totals();
                let (sb, _) = theirs.totals();
                let ts: &[usize] = if m == "prism2" {
                    &[PRISM_THICK]
                } else {
                    &[4, THICK]
                };
                for &t in ts {
                    let (x, y) = (a[t - 1].ratio_height, b[t - 1].ratio_height);
                    let peak = sb[0][t - 1].iter().copied().fold(0.0, f64::max);
                    let raw = sa[0][t - 1]
                        .iter()
                        .zip(&sb[0][t - 1])
                        .map(|(u, v)| (u - v).abs() / peak)
                        .fold(0.0, f64::max);
                    println!(
                        "| {m} | {t} | {x:.4} | {y:.4} | {:+.2} % | {:.2} % of peak | {:.1} | {:.1} | {:.1}x |",
                        (x / y - 1.0) * 100.0,
                        raw * 100.0,
                        ours.seconds,
                        t_ab,
                        t_ab / ours.seconds
                    );
                }
            }
        }
        _ => return Err("usage: bench_simulate run OUT [multislice|prism2] | compare OUT".into()),
    }
    Ok(())
}
