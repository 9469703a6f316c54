//! Paired sensitivity of the simulated Cs : Pb/Br ratio: a variant run
//! against a base run on the **same frozen-phonon configurations** (same
//! seed, so the same normal draws — scaled when only the displacements
//! differ, and shared by the cells around the probe when the supercell
//! differs), with jackknife standard errors of the base, the variant and
//! their difference. The configurations' common fluctuations cancel in the
//! difference, so a sensitivity of a few thousandths is resolved from a
//! handful of configurations whose ratios scatter by ± 0.1 each.
//!
//! ```text
//! cargo run --release --example paired -- --base DIR... --variant DIR...
//!     [--source-size-angstrom X] [--blur-angstrom X] [--energy-spread-off]
//!     [--pixel-size-angstrom 0.1]
//! ```
//! `DIR`s are `qdscope simulate --shard I/N` outputs (`partial.json`); the
//! variant may be the base's own shards re-evaluated with another source
//! size, blur or no energy spread (as `qdscope simulate --merge` does).
//! Prints A (height) and V (volume) ratios at 15 and 30 u.c., (14 + 16)/2
//! and the 30 − 15 u.c. change, over the configurations both sets hold.
use std::path::PathBuf;

use qdscope::multislice::image::{jackknife, jackknife_se, series, Row};
use qdscope::multislice::merge::{read_shards, reevaluate};
use qdscope::multislice::series::Partial;

type Quantity = (&'static str, fn(&[Row]) -> f64);

const QUANTITIES: [Quantity; 7] = [
    ("A 15 u.c.", |r| r[14].ratio_height),
    ("A (14+16)/2", |r| {
        (r[13].ratio_height + r[15].ratio_height) / 2.0
    }),
    ("A 30 u.c.", |r| r[29].ratio_height),
    ("A 30 - 15", |r| r[29].ratio_height - r[14].ratio_height),
    ("V 15 u.c.", |r| r[14].ratio_volume),
    ("V 30 u.c.", |r| r[29].ratio_volume),
    ("V 30 - 15", |r| r[29].ratio_volume - r[14].ratio_volume),
];

fn keep(part: &mut Partial, configs: &[usize]) {
    part.items.retain(|it| configs.contains(&it.config));
}

fn main() -> Result<(), String> {
    let (mut base, mut variant) = (Vec::new(), Vec::new());
    let (mut src, mut blur, mut spread_off, mut px) = (None, None, false, 0.1);
    let mut list = 0;
    let mut args = std::env::args().skip(1);
    let num = |v: Option<String>, f: &str| -> Result<f64, String> {
        v.and_then(|v| v.parse().ok())
            .ok_or(format!("{f} needs a number"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--base" => list = 1,
            "--variant" => list = 2,
            "--source-size-angstrom" => src = Some(num(args.next(), &a)?),
            "--blur-angstrom" => blur = Some(num(args.next(), &a)?),
            "--pixel-size-angstrom" => px = num(args.next(), &a)?,
            "--energy-spread-off" => spread_off = true,
            d if list == 1 => base.push(PathBuf::from(d)),
            d if list == 2 => variant.push(PathBuf::from(d)),
            _ => return Err(format!("unexpected argument '{a}' (see the example's doc)")),
        }
    }
    let load = |d: &[PathBuf]| read_shards(d).map_err(|e| e.to_string());
    let (mut b, mut v) = (load(&base)?, load(&variant)?);
    let mut want = v.params.clone();
    if let Some(s) = src {
        want.microscope.source_size_angstrom = s;
    }
    if let Some(s) = blur {
        want.blur_angstrom = s;
    }
    if spread_off {
        want.microscope.energy_spread_ev = 0.0;
        want.defocus_nodes = 1;
    }
    let changed = reevaluate(&mut v, &want).map_err(|e| e.to_string())?;
    let common: Vec<usize> = b
        .configurations()
        .into_iter()
        .filter(|c| v.configurations().contains(c))
        .collect();
    if common.len() < 2 {
        return Err(format!(
            "the sets share {} configurations; the jackknife needs two or more",
            common.len()
        ));
    }
    keep(&mut b, &common);
    keep(&mut v, &common);
    if b.params.max_thickness_uc < 30 {
        return Err("the runs must reach 30 u.c.".into());
    }
    let full = |p: &Partial| series(p, 0, px).map(|(r, _)| r).map_err(|e| e.to_string());
    let loo = |p: &Partial| {
        jackknife(p, 0, px)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "fewer than two configurations".to_string())
    };
    let (fb, fv, lb, lv) = (full(&b)?, full(&v)?, loo(&b)?, loo(&v)?);
    println!("configurations in common: {common:?}");
    if b.params.seed != v.params.seed || b.params.rng_scheme != v.params.rng_scheme {
        println!("note: different seeds or random-stream schemes, so the configurations are not paired (the s.e. of the difference holds, without the cancellation)");
    }
    if !changed.is_empty() {
        println!("variant re-evaluated: {}", changed.join("; "));
    }
    println!("| quantity | base | variant | variant − base |\n|---|---|---|---|");
    for (name, f) in QUANTITIES {
        let sb: Vec<f64> = lb.iter().map(|r| f(r)).collect();
        let sv: Vec<f64> = lv.iter().map(|r| f(r)).collect();
        let sd: Vec<f64> = sv.iter().zip(&sb).map(|(x, y)| x - y).collect();
        println!(
            "| {name} | {:.4} ± {:.4} | {:.4} ± {:.4} | {:+.4} ± {:.4} |",
            f(&fb),
            jackknife_se(&sb),
            f(&fv),
            jackknife_se(&sv),
            f(&fv) - f(&fb),
            jackknife_se(&sd)
        );
    }
    Ok(())
}
