//! Accuracy benchmark of the whole image chain (`prepare` → column analysis)
//! on randomized QD stacks made by `qdscope::stem::testbed`, a generator
//! independent of the demo's `stem::synth`.
//!
//! ```text
//! cargo run --release --example accuracy -- --cases N --seed S \
//!     [--variant default|no-denoise|no-deconvolve|all] [--csv FILE] [--groups] \
//!     [--max-field-px PX]
//! ```
//!
//! Case i is drawn from seed S + i, rendered, run through
//! `pipeline::prepare` (default parameters; the variants switch off the
//! denoising or the deconvolution) and `columns::analyse` with the case's
//! lattice constant (as a user gives the lattice of their material), and
//! scored with `testbed::score`: measured positions are mapped to frame-0
//! truth coordinates by the registration/crop offset, refined by the median
//! displacement to the nearest Cs/Pb/Br truth columns, then matched within
//! 0.35·(a/√2)/pixel. Cases run one after the other (every stage is
//! parallel inside), so the times are those of a single analysis. Progress
//! goes to stderr, one markdown table per variant to stdout, per-case rows
//! to `--csv`.
//!
//! `--groups` runs 5 core-like QDs (truth ratio fixed at 0.33, seeds
//! S … S+4) and 5 core/shell-like QDs (0.37, seeds S+100 … S+104), other
//! parameters drawn as usual, with the chosen chain. Each reported QD's
//! summary (the `summary.json` keys of `qdscope columns`) is written to
//! `--groups-dir`/{core,core_shell}/caseS/summary.json; the groups are then
//! compared by `qdscope::stem::compare` — the code behind `qdscope compare`,
//! reading those files — which prints the group means ± s.d. and Welch's
//! t, ν, p, and writes `comparison.json`. Welch's test on the truth ratios
//! is printed for reference, and the equivalent `qdscope compare` command
//! line goes to stderr.

use std::path::PathBuf;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, ValueEnum};
use qdscope::stem::compare::compare;
use qdscope::stem::gaussian::Neighbours;
use qdscope::stem::pipeline::PrepareParams;
use qdscope::stem::ratio::welch;
use qdscope::stem::testbed::{
    draw_case, render_case, run_rendered_with, Case, CaseRanges, Outcome,
};

/// Which chain to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Variant {
    /// Default `prepare` parameters.
    Default,
    /// Denoising off.
    NoDenoise,
    /// Deconvolution off.
    NoDeconvolve,
    /// All three on the same cases.
    All,
}

#[derive(Debug, Parser)]
#[command(about = "Accuracy of the Cs : Pb/Br ratio on randomized testbed stacks")]
struct Args {
    /// Number of cases.
    #[arg(long, default_value_t = 10)]
    cases: usize,
    /// Seed of case 0 (case i uses seed + i).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Chain variant.
    #[arg(long, value_enum, default_value_t = Variant::Default)]
    variant: Variant,
    /// Write per-case rows to this CSV file.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Run the two-group (0.33 vs 0.37) comparison instead.
    #[arg(long)]
    groups: bool,
    /// Where `--groups` writes one summary.json per reported QD
    /// (`core/caseS`, `core_shell/caseS`) and `comparison.json`.
    #[arg(long, default_value = "target/accuracy-groups")]
    groups_dir: PathBuf,
    /// Largest field size, px (default 1024).
    #[arg(long)]
    max_field_px: Option<usize>,
    /// Column fit: joint (the column analysis' default), single (the
    /// study's) or sweep.
    #[arg(long, value_enum, default_value_t = Neighbours::Joint)]
    neighbours: Neighbours,
}

fn params_of(v: Variant) -> PrepareParams {
    let mut p = PrepareParams::default();
    match v {
        Variant::NoDenoise => p.denoise_enabled = false,
        Variant::NoDeconvolve => p.deconvolve_enabled = false,
        Variant::Default | Variant::All => {}
    }
    p
}

fn name_of(v: Variant) -> &'static str {
    match v {
        Variant::Default => "default",
        Variant::NoDenoise => "no-denoise",
        Variant::NoDeconvolve => "no-deconvolve",
        Variant::All => "all",
    }
}

struct Row {
    id: usize,
    case: Case,
    render_s: f64,
    out: Outcome,
}

/// The truth ratio as the tables print it (NaN without one).
fn truth_or_nan(o: &Outcome) -> f64 {
    o.truth_ratio.unwrap_or(f64::NAN)
}

fn progress(variant: &str, r: &Row) {
    let c = &r.case;
    let what = match &r.out.measured {
        Ok(m) => {
            let s = r.out.score.as_ref();
            let sens = r.out.summary.as_ref().map_or((None, None), |s| {
                (
                    s.ratio_volume_background_sensitivity,
                    s.ratio_volume_noise_sensitivity,
                )
            });
            format!(
                "ratio {m:.4} (err {:+.4}), interior right {:.2}, ratio cols mislabelled {}, checks: background {:.3} noise {:.3}",
                m - truth_or_nan(&r.out),
                s.and_then(|s| s.frac_interior_right).unwrap_or(f64::NAN),
                s.map_or(0, |s| s.n_ratio_mislabelled),
                sens.0.unwrap_or(f64::NAN),
                sens.1.unwrap_or(f64::NAN)
            )
        }
        Err(e) => format!("REFUSED: {e}"),
    };
    eprintln!(
        "[{variant}] case {} seed {}: {} px, {} cells{}, p {:.3} Å/px, a {:.2} Å, {} frames, truth {:.4}: {what} [{:.1} s + render {:.1} s]",
        r.id,
        c.seed,
        c.field_px,
        c.n_cells,
        if c.cut.is_some() { " (cut)" } else { "" },
        c.pixel_size_angstrom,
        c.lattice_angstrom,
        c.n_frames,
        truth_or_nan(&r.out),
        r.out.seconds_prepare + r.out.seconds_analyse,
        r.render_s
    );
}

fn table(variant: &str, rows: &[Row]) {
    let reported: Vec<&Row> = rows.iter().filter(|r| r.out.measured.is_ok()).collect();
    let errs: Vec<(usize, f64)> = reported
        .iter()
        .filter_map(|r| r.out.error().map(|e| (r.id, e)))
        .collect();
    let n = errs.len() as f64;
    let mae = errs.iter().map(|e| e.1.abs()).sum::<f64>() / n;
    let bias = errs.iter().map(|e| e.1).sum::<f64>() / n;
    let mut abs: Vec<f64> = errs.iter().map(|e| e.1.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let med = if abs.is_empty() {
        f64::NAN
    } else if abs.len() % 2 == 1 {
        abs[abs.len() / 2]
    } else {
        0.5 * (abs[abs.len() / 2 - 1] + abs[abs.len() / 2])
    };
    let worst = errs.iter().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()));
    let (right, interior) = reported
        .iter()
        .filter_map(|r| r.out.score.as_ref())
        .fold((0, 0), |(a, b), s| {
            (a + s.n_interior_right, b + s.n_interior)
        });
    let mis = rows
        .iter()
        .filter(|r| r.out.ratio_from_mislabelled())
        .count();
    let t = rows
        .iter()
        .map(|r| r.out.seconds_prepare + r.out.seconds_analyse)
        .sum::<f64>()
        / rows.len().max(1) as f64;
    println!("\n### variant `{variant}`\n");
    println!("| cases | refused | reported | MAE | bias | median \\|err\\| | worst \\|err\\| (case) | interior labelled right | ratios from mislabelled classes | mean time / case (s) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {:.4} | {:+.4} | {:.4} | {} | {} | {} | {:.1} |",
        rows.len(),
        rows.len() - reported.len(),
        reported.len(),
        mae,
        bias,
        med,
        worst.map_or("–".to_string(), |(id, e)| format!(
            "{:.4} (case {id})",
            e.abs()
        )),
        if interior > 0 {
            format!("{:.3} ({right}/{interior})", right as f64 / interior as f64)
        } else {
            "–".into()
        },
        mis,
        t
    );
}

fn write_csv(path: &PathBuf, all: &[(&str, &[Row])]) -> Result<(), Box<dyn std::error::Error>> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record([
        "variant",
        "case",
        "seed",
        "field_px",
        "n_cells",
        "cut",
        "pixel_size_angstrom_per_px",
        "lattice_angstrom",
        "rotation_deg",
        "sigma_angstrom",
        "n_frames",
        "dose_counts_per_frame",
        "truth_ratio_volume",
        "measured_ratio_volume",
        "error_signed",
        "error_abs",
        "refusal",
        "n_interior_truth",
        "frac_interior_labelled_right",
        "n_ratio_columns",
        "n_ratio_mislabelled",
        "n_ratio_unmatched",
        "frac_ratio_columns_right",
        "ratio_from_mislabelled",
        "offset_x_px",
        "offset_y_px",
        "time_prepare_s",
        "time_analyse_s",
        "time_render_s",
    ])?;
    let f = |v: f64| format!("{v:.6}");
    for (variant, rows) in all {
        for r in *rows {
            let c = &r.case;
            let s = r.out.score.as_ref();
            let e = r.out.error();
            w.write_record([
                variant.to_string(),
                r.id.to_string(),
                c.seed.to_string(),
                c.field_px.to_string(),
                c.n_cells.to_string(),
                c.cut
                    .map_or("".into(), |k| format!("{:?}:{:.3}", k.side, k.fraction)),
                f(c.pixel_size_angstrom),
                f(c.lattice_angstrom),
                f(c.rotation_deg),
                f(c.sigma_angstrom),
                c.n_frames.to_string(),
                f(c.dose_counts),
                f(truth_or_nan(&r.out)),
                r.out.measured.as_ref().map_or(String::new(), |m| f(*m)),
                e.map_or(String::new(), f),
                e.map_or(String::new(), |v| f(v.abs())),
                r.out.measured.as_ref().err().cloned().unwrap_or_default(),
                s.map_or(String::new(), |s| s.n_interior.to_string()),
                s.map_or(String::new(), |s| {
                    f(s.frac_interior_right.unwrap_or(f64::NAN))
                }),
                s.map_or(String::new(), |s| s.n_ratio.to_string()),
                s.map_or(String::new(), |s| s.n_ratio_mislabelled.to_string()),
                s.map_or(String::new(), |s| s.n_ratio_unmatched.to_string()),
                s.map_or(String::new(), |s| f(s.frac_ratio_right.unwrap_or(f64::NAN))),
                r.out.ratio_from_mislabelled().to_string(),
                s.map_or(String::new(), |s| f(s.offset_px.0)),
                s.map_or(String::new(), |s| f(s.offset_px.1)),
                f(r.out.seconds_prepare),
                f(r.out.seconds_analyse),
                f(r.render_s),
            ])?;
        }
    }
    w.flush()?;
    Ok(())
}

fn run_groups(args: &Args, ranges: &CaseRanges) -> Result<(), Box<dyn std::error::Error>> {
    let params = PrepareParams::default();
    let root = &args.groups_dir;
    let mut truths: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut group_dirs: Vec<(String, Vec<PathBuf>)> = Vec::new();
    println!("| group | seed | truth ratio | measured ratio | error |");
    println!("|---|---|---|---|---|");
    for (g, (name, sub, ratio, base)) in [
        ("core", "core", 0.33, 0u64),
        ("core/shell", "core_shell", 0.37, 100),
    ]
    .into_iter()
    .enumerate()
    {
        // This run's QDs only: a stale summary would enter the comparison.
        let dir = root.join(sub);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        group_dirs.push((name.to_string(), vec![dir.clone()]));
        let r = CaseRanges {
            ratio_override: Some(ratio),
            ..ranges.clone()
        };
        for i in 0..5u64 {
            let seed = args.seed + base + i;
            let case = draw_case(seed, &r);
            let t = Instant::now();
            let (stack, truth) = render_case(&case)?;
            let render_s = t.elapsed().as_secs_f64();
            let out = run_rendered_with(
                &format!("case{seed}"),
                &case,
                &stack,
                &truth,
                &params,
                args.neighbours,
            );
            let row = Row {
                id: (base + i) as usize,
                case,
                render_s,
                out,
            };
            progress(name, &row);
            let truth = truth_or_nan(&row.out);
            truths[g].push(truth);
            match (&row.out.measured, &row.out.summary) {
                (Ok(m), Some(summary)) => {
                    // What `qdscope columns` writes as summary.json (its
                    // summary keys), one directory per QD, as `analyze` does.
                    let qd = dir.join(format!("case{seed}"));
                    std::fs::create_dir_all(&qd)?;
                    std::fs::write(
                        qd.join("summary.json"),
                        serde_json::to_string_pretty(summary)?,
                    )?;
                    println!(
                        "| {name} | {seed} | {truth:.4} | {m:.4} | {:+.4} |",
                        m - truth
                    );
                }
                (Err(e), _) => println!("| {name} | {seed} | {truth:.4} | refused: {e} | – |"),
                (Ok(_), None) => unreachable!("a reported ratio always has its summary"),
            }
        }
    }
    // The measured groups through the library behind `qdscope compare`.
    let c = compare(&group_dirs)?;
    std::fs::write(
        root.join("comparison.json"),
        serde_json::to_string_pretty(&c)?,
    )?;
    for w in &c.warnings {
        println!("warning: {w}");
    }
    println!();
    for g in &c.groups {
        println!(
            "measured (compare): {} {:.4} ± {} (n = {})",
            g.name,
            g.ratio_volume_mean,
            g.ratio_volume_sd
                .map_or("n/a".into(), |s| format!("{s:.4}")),
            g.n
        );
    }
    for t in &c.tests {
        match &t.volume {
            Some(w) => println!(
                "measured (compare): {} vs {}: Welch t = {:.3}, ν = {:.2}, p = {:.4}, Cohen's d = {:.2}",
                t.a, t.b, w.t, w.df, w.p, w.cohen_d
            ),
            None => println!(
                "measured (compare): {} vs {}: no test ({})",
                t.a,
                t.b,
                t.note.as_deref().unwrap_or("")
            ),
        }
    }
    // For reference, the truth ratios of the same QDs (refused ones too).
    match welch(&truths[0], &truths[1]) {
        Ok(w) => println!(
            "truth: Welch t = {:.3}, ν = {:.2}, p = {:.4}, Cohen's d = {:.2}",
            w.t, w.df, w.p, w.cohen_d
        ),
        Err(e) => println!("truth: Welch's test not possible: {e}"),
    }
    eprintln!(
        "summaries in {}; the same comparison with the CLI:\n  qdscope compare --group core {} --group core/shell {} -o {}",
        root.display(),
        root.join("core").display(),
        root.join("core_shell").display(),
        root.join("compare").display()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    qdscope::keep_freed_memory();
    let args = Args::parse();
    let mut ranges = CaseRanges::default();
    if let Some(m) = args.max_field_px {
        ranges.max_field_px = m;
    }
    if args.groups {
        return run_groups(&args, &ranges);
    }
    let variants: Vec<Variant> = match args.variant {
        Variant::All => vec![Variant::Default, Variant::NoDenoise, Variant::NoDeconvolve],
        v => vec![v],
    };
    let mut rows: Vec<Vec<Row>> = variants.iter().map(|_| Vec::new()).collect();
    for i in 0..args.cases {
        let seed = args.seed + i as u64;
        let case = draw_case(seed, &ranges);
        let t = Instant::now();
        let (stack, truth) = render_case(&case)?;
        let render_s = t.elapsed().as_secs_f64();
        for (k, v) in variants.iter().enumerate() {
            let out = run_rendered_with(
                &format!("case{seed}"),
                &case,
                &stack,
                &truth,
                &params_of(*v),
                args.neighbours,
            );
            let row = Row {
                id: i,
                case: case.clone(),
                render_s,
                out,
            };
            progress(name_of(*v), &row);
            rows[k].push(row);
        }
    }
    for (v, r) in variants.iter().zip(&rows) {
        table(name_of(*v), r);
    }
    if let Some(path) = &args.csv {
        let all: Vec<(&str, &[Row])> = variants
            .iter()
            .zip(&rows)
            .map(|(v, r)| (name_of(*v), r.as_slice()))
            .collect();
        write_csv(path, &all)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
