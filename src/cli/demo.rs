//! `qdscope demo -o DIR`: the experimental half end to end on generated
//! data with known truth.
//!
//! 1. Generates a core-like set (Cs : Pb/Br = 0.33) and a core/shell-like
//!    set (0.37) of synthetic 10-frame CsPbBr3 \[001\] QD stacks with drift,
//!    Poisson and read noise (`stacks/<group>-<i>.tif`, ground truth in
//!    `stacks/<group>-<i>.truth.json`).
//! 2. Runs `analyze` on each set (`analyze/<group>/<stack>/…`,
//!    `analyze/<group>/summary.csv`).
//! 3. Runs `compare` (`compare/comparison.json`, `compare/comparison.png`).
//! 4. Writes `demo.json`: truth vs measured ratio per QD, registration error
//!    against the generator's drift, group statistics and Welch's test.

use std::path::{Path, PathBuf};

use serde::Serialize;

use qdscope::error::{Error, Result};
use qdscope::io;
use qdscope::report;
use qdscope::stem::compare;
use qdscope::stem::synth::{self, SynthParams};

use super::columns::PipelineConfig;
use super::phonon as ph;
use qdscope::phonon::coupling::{default_bands, huang_rhys, SpectrumOptions};
use qdscope::phonon::synth::{self as psynth, Grid, SPEC_GRID};

/// Arguments of `qdscope demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Output directory (created if missing).
    #[arg(short, long = "output", value_name = "DIR")]
    pub output: PathBuf,
    /// RNG seed of the synthetic data (QD i of a group uses seed + i).
    #[arg(long, default_value_t = 2022)]
    pub seed: u64,
    /// Number of frames per stack.
    #[arg(long, default_value_t = 10)]
    pub frames: usize,
    /// Frame size in px (square).
    #[arg(long, default_value_t = 512, value_name = "PX")]
    pub size_px: usize,
    /// QDs per group (the study had 4 core and 4 core/shell QDs).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub qds_per_group: usize,
    /// True Cs : Pb/Br ratio of the core-like group.
    #[arg(long, default_value_t = 0.33)]
    pub core_ratio: f64,
    /// True Cs : Pb/Br ratio of the core/shell-like group.
    #[arg(long, default_value_t = 0.37)]
    pub coreshell_ratio: f64,
}

#[derive(Serialize)]
struct QdReport {
    group: String,
    stack: String,
    true_ratio: f64,
    measured_ratio_volume: Option<f64>,
    measured_ratio_height: Option<f64>,
    error_volume: Option<f64>,
    registration_rms_error_px: Option<f64>,
    error: Option<String>,
}

#[derive(Serialize)]
struct DemoSummary {
    frames: usize,
    size_px: usize,
    pixel_size_angstrom: f64,
    qds: Vec<QdReport>,
    max_abs_error_volume: Option<f64>,
    comparison: serde_json::Value,
}

/// A generated group: name, stack files, (true ratio, drift) per stack.
type GroupSet = (String, Vec<PathBuf>, Vec<(f64, Vec<(f64, f64)>)>);

/// RMS registration error after removing the gauge (a common offset).
fn registration_error(shifts_csv: &Path, truth: &[(f64, f64)]) -> Option<f64> {
    let text = std::fs::read_to_string(shifts_csv).ok()?;
    let measured: Vec<(f64, f64)> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((f.get(1)?.parse().ok()?, f.get(2)?.parse().ok()?))
        })
        .collect();
    if measured.len() != truth.len() || truth.is_empty() {
        return None;
    }
    let n = truth.len() as f64;
    let d: Vec<(f64, f64)> = measured
        .iter()
        .zip(truth)
        .map(|(m, t)| (m.0 - t.0, m.1 - t.1))
        .collect();
    let (my, mx) = d
        .iter()
        .fold((0.0, 0.0), |a, v| (a.0 + v.0 / n, a.1 + v.1 / n));
    Some(
        (d.iter()
            .map(|v| (v.0 - my).powi(2) + (v.1 - mx).powi(2))
            .sum::<f64>()
            / n)
            .sqrt(),
    )
}

/// Most QDs per group the demo generates (the study had 4).
const MAX_QDS_PER_GROUP: usize = 100;

pub(crate) fn run(args: &Args, quiet: bool) -> Result<()> {
    if !(1..=MAX_QDS_PER_GROUP).contains(&args.qds_per_group) {
        return Err(Error::param(
            "--qds-per-group",
            format!(
                "must be 1 … {MAX_QDS_PER_GROUP}, got {}",
                args.qds_per_group
            ),
        ));
    }
    // Sizes checked before any directory is made.
    SynthParams {
        rows: args.size_px,
        cols: args.size_px,
        frames: args.frames,
        ..SynthParams::default()
    }
    .validate()?;
    // All or nothing: the demo runs inside a staging directory next to the
    // output (as its working directory, so every path recorded in the
    // nested JSON and CSV files is relative to the output directory and
    // stays right after the move) and is moved into place only when every
    // stage has written its files.
    let dest = std::path::absolute(&args.output).map_err(|e| Error::io(&args.output, e))?;
    let set = report::OutputSet::new(&dest)?;
    let failed = {
        let _cwd = WorkDir::enter(set.dir())?;
        run_stages(args, Path::new(""), quiet)?
    };
    set.commit()?;
    println!("outputs in {}", dest.display());
    if failed {
        return Err(Error::Numerical {
            what: "demo".into(),
            reason: format!(
                "some synthetic stacks failed (see {})",
                dest.join("demo.json").display()
            ),
        });
    }
    Ok(())
}

/// The working directory of the process for the lifetime of the guard.
struct WorkDir(PathBuf);

impl WorkDir {
    fn enter(dir: &Path) -> Result<Self> {
        let here = std::env::current_dir().map_err(|e| Error::io(".", e))?;
        std::env::set_current_dir(dir).map_err(|e| Error::io(dir, e))?;
        Ok(WorkDir(here))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::env::set_current_dir(&self.0);
    }
}

/// Every stage of the demo, writing under `dir`; true when some synthetic
/// stack failed (recorded in `demo.json`).
fn run_stages(args: &Args, dir: &Path, quiet: bool) -> Result<bool> {
    let sets = generate_sets(args, &dir.join("stacks"), quiet)?;
    let (qds, group_dirs) = analyze_sets(dir, &sets, quiet)?;
    // Compare the groups (only QDs that were analysed).
    let gs = compare::compare(&group_dirs);
    let comparison = match &gs {
        Ok(c) => {
            super::compare::write(
                &dir.join("compare"),
                c,
                "demo: Cs:Pb/Br volume ratio per QD",
            )?;
            serde_json::to_value(c)
                .map_err(|e| Error::format(dir.join("compare"), e.to_string()))?
        }
        Err(e) => serde_json::json!({"error": e.to_string()}),
    };
    let max_err = qds
        .iter()
        .filter_map(|q| q.error_volume)
        .map(f64::abs)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let summary = DemoSummary {
        frames: args.frames,
        size_px: args.size_px,
        pixel_size_angstrom: SynthParams::default().pixel_size_angstrom,
        qds,
        max_abs_error_volume: max_err,
        comparison,
    };
    print_qds(&summary.qds);
    if let Ok(c) = &gs {
        print_groups(&c.groups);
    }
    let phonon = run_phonon_demo(&dir.join("phonon"), args.seed, quiet)?;
    let (qd_dir, sim_dir) = run_build_qd_and_simulate(dir, quiet)?;
    let mut full: serde_json::Value = serde_json::to_value(&summary)
        .map_err(|e| Error::format(dir.join("demo.json"), e.to_string()))?;
    full["phonon"] = phonon;
    full["build_qd"] = serde_json::json!(qd_dir.join("composition.json").display().to_string());
    full["simulate"] = serde_json::json!(sim_dir.join("series.csv").display().to_string());
    report::write_json(&dir.join("demo.json"), &full)?;
    Ok(summary.qds.iter().any(|q| q.error.is_some()))
}

/// Step 1: the synthetic stacks of both groups and their truth, in
/// `stacks_dir`.
fn generate_sets(args: &Args, stacks_dir: &Path, quiet: bool) -> Result<Vec<GroupSet>> {
    super::ensure_dir(stacks_dir)?;
    let n_cells =
        ((args.size_px as f64 * 0.25 / synth::LATTICE_ANGSTROM * 0.75) as usize).clamp(2, 16);
    let groups = [
        ("core", args.core_ratio),
        ("coreshell", args.coreshell_ratio),
    ];
    let total = (groups.len() * args.qds_per_group) as u64;
    let pb = report::progress(total, "generating", quiet);
    let mut sets: Vec<GroupSet> = Vec::new();
    for (g, ratio) in groups {
        let mut files = Vec::new();
        let mut truths = Vec::new();
        for i in 0..args.qds_per_group {
            let sp = SynthParams {
                rows: args.size_px,
                cols: args.size_px,
                frames: args.frames,
                ratio_cs_pbbr: ratio,
                seed: args.seed + i as u64 + if g == "core" { 0 } else { 1000 },
                n_cells,
                ..SynthParams::default()
            };
            let (stack, truth) = synth::generate(&sp)?;
            let path = stacks_dir.join(format!("{g}-{}.tif", i + 1));
            io::write_tiff_stack_f32(&path, &stack)?;
            report::write_json(
                &stacks_dir.join(format!("{g}-{}.truth.json", i + 1)),
                &truth,
            )?;
            files.push(path);
            truths.push((ratio, truth.shifts_px.clone()));
            pb.inc(1);
        }
        sets.push((g.to_string(), files, truths));
    }
    pb.finish_and_clear();
    Ok(sets)
}

/// An output directory per group, as `compare` takes them.
type GroupDirs = Vec<(String, Vec<PathBuf>)>;

/// Step 2: `analyze` on each group; truth vs measured per QD and the
/// groups' output directories.
fn analyze_sets(dir: &Path, sets: &[GroupSet], quiet: bool) -> Result<(Vec<QdReport>, GroupDirs)> {
    let cfg = PipelineConfig::default();
    let mut qds = Vec::new();
    let mut group_dirs = Vec::new();
    for (g, files, truths) in sets {
        let out = dir.join("analyze").join(g);
        let outcomes = super::analyze::analyze_all(files, &out, &cfg, quiet)?;
        group_dirs.push((g.clone(), vec![out.clone()]));
        for (o, (ratio, shifts)) in outcomes.iter().zip(truths) {
            let (rv, rh, err) = match &o.result {
                Ok(s) => (Some(s.ratio_volume_mean), Some(s.ratio_height_mean), None),
                Err(e) => (None, None, Some(e.clone())),
            };
            qds.push(QdReport {
                group: g.clone(),
                stack: o.input.display().to_string(),
                true_ratio: *ratio,
                measured_ratio_volume: rv,
                measured_ratio_height: rh,
                error_volume: rv.map(|v| v - ratio),
                registration_rms_error_px: registration_error(&o.dir.join("shifts.csv"), shifts),
                error: err,
            });
        }
    }
    Ok((qds, group_dirs))
}

/// Truth vs measured per QD on stdout.
fn print_qds(qds: &[QdReport]) {
    for q in qds {
        match (q.measured_ratio_volume, &q.error) {
            (Some(v), _) => println!(
                "{:>9} {}: true {:.3}, measured {:.4} (volume), {:.4} (height); registration RMS error {} px",
                q.group,
                Path::new(&q.stack).file_name().map_or(String::new(), |f| f.to_string_lossy().into()),
                q.true_ratio,
                v,
                q.measured_ratio_height.unwrap_or(f64::NAN),
                q.registration_rms_error_px.map_or("n/a".into(), |e| format!("{e:.3}"))
            ),
            (None, Some(e)) => println!("{:>9} {}: failed: {e}", q.group, q.stack),
            _ => {}
        }
    }
}

/// Each group's mean ± s.d. and Welch's test on stdout.
fn print_groups(gs: &[compare::Group]) {
    for g in gs {
        println!(
            "{}: {:.4} ± {} over {} QDs",
            g.name,
            g.ratio_volume_mean,
            g.ratio_volume_sd
                .map_or("n/a".into(), |s| format!("{s:.4}")),
            g.n
        );
    }
    if let Some(w) = compare::tests(gs).0.first().and_then(|t| t.volume.clone()) {
        println!(
            "Welch's t-test: t = {:.3}, ν = {:.2}, p = {:.2e}",
            w.t, w.df, w.p
        );
    }
}

/// The structure and simulation commands, as a user would type them:
/// the study's 3-nm dot with its CP2K inputs, and a short thickness
/// series (1–4 u.c.) of the quick preset's grid on the static crystal
/// (one frozen-phonon configuration would make the 4mm wedge misleading).
/// Returns their output directories.
fn run_build_qd_and_simulate(dir: &Path, quiet: bool) -> Result<(PathBuf, PathBuf)> {
    let qd_dir = dir.join("build-qd");
    let sim_dir = dir.join("simulate");
    for argv in [
        vec![
            "qdscope",
            "build-qd",
            "--size",
            "5",
            "-o",
            path_str(&qd_dir)?,
        ],
        vec![
            "qdscope",
            "simulate",
            "--thickness-uc",
            "1..4",
            "--phonons",
            "1",
            "--defocus-nodes",
            "1",
            "--displacement-angstrom",
            "Cs=0,Pb=0,Br=0",
            "-o",
            path_str(&sim_dir)?,
        ],
    ] {
        let mut argv = argv;
        if quiet {
            argv.insert(1, "--quiet");
        }
        let cli = <super::Cli as clap::Parser>::try_parse_from(&argv)
            .map_err(|e| Error::param("demo", e.to_string()))?;
        super::run(cli)?;
    }
    Ok((qd_dir, sim_dir))
}

/// The phonon half on generated data: a 10-K gap series with the six modes
/// of the six-mode test case of docs/methods/phonon.md (known bands), dephasing of it, histograms of
/// a "full" and a "frozen-shell" 300-K run, and a 64-atom oscillator
/// cluster for the DOS and RMSF. Returns truth vs measured.
fn run_phonon_demo(dir: &Path, seed: u64, quiet: bool) -> Result<serde_json::Value> {
    super::ensure_dir(dir)?;
    let gap_10k = phonon_gap_10k(dir, seed, quiet)?;
    phonon_histograms(dir, seed, quiet)?;
    phonon_cluster(dir, seed, quiet)?;
    Ok(serde_json::json!({
        "gap_10k": gap_10k,
        "outputs": ["phonon/coupling", "phonon/dephasing", "phonon/histogram", "phonon/dos", "phonon/rmsf"],
    }))
}

/// The 10-K gap series of six known modes, its couplings (measured here
/// and by `phonon coupling`) and `phonon dephasing`; truth vs measured.
fn phonon_gap_10k(dir: &Path, seed: u64, quiet: bool) -> Result<serde_json::Value> {
    let g10 = SPEC_GRID;
    let modes = [
        (5.0, 10.0),
        (12.0, 3.0),
        (24.0, 1.5),
        (41.0, 0.8),
        (58.0, 0.3),
        (80.0, 0.1),
    ];
    let gap = psynth::gap_series(&g10, 2400.0, &modes, seed);
    let gap_file = dir.join("gap-10K.dat");
    psynth::write_gap(&gap_file, &g10, &gap)?;
    let hr = huang_rhys(
        &gap,
        g10.dt_fs,
        g10.temperature_k,
        SpectrumOptions::default(),
    )?;
    let bands = hr.band_couplings(&default_bands());
    let gap_input = |p: &Path| ph::GapInput::plain(p.to_path_buf(), None, 0.0);
    ph::run(
        &ph::Command::Coupling(ph::CouplingArgs {
            input: gap_input(&gap_file),
            output: dir.join("coupling"),
            temperature_k: 10.0,
            bands_mev: "0:4,4:10,10:24".into(),
            temps: vec![10.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0],
            window: qdscope::fft::Window::Rect,
            detrend: qdscope::fft::Detrend::None,
            per_free_atoms: None,
        }),
        quiet,
    )?;
    ph::run(
        &ph::Command::Dephasing(ph::DephasingArgs {
            input: gap_input(&gap_file),
            output: dir.join("dephasing"),
            temperature_k: 10.0,
            dt_fine_fs: 0.1,
            fit_threshold: ph::Threshold::Percent1,
        }),
        quiet,
    )?;
    Ok(serde_json::json!({
        "true_bands_s2_s7_s17": [10.339169, 4.253830, 1.221238], "measured": bands,
        "true_lambda_mev": 74.524732, "measured_lambda_mev": hr.lambda_mev,
        "gamma_300k_mev": hr.gamma_mev(300.0),
    }))
}

/// `phonon histogram` of a full and a frozen-shell-like 300-K run.
fn phonon_histograms(dir: &Path, seed: u64, quiet: bool) -> Result<()> {
    let g300 = Grid {
        frames: 4000,
        dt_fs: 5.0,
        temperature_k: 300.0,
    };
    let full = psynth::gap_series(
        &g300,
        2400.0,
        &[(40.0, 10.0), (97.0, 3.0), (190.0, 1.5), (330.0, 0.8)],
        seed + 1,
    );
    let frozen = psynth::gap_series(
        &g300,
        2450.0,
        &[(40.0, 0.5), (97.0, 0.15), (190.0, 0.08), (330.0, 0.04)],
        seed + 2,
    );
    psynth::write_gap(&dir.join("gap-300K-full.dat"), &g300, &full)?;
    psynth::write_gap(&dir.join("gap-300K-frozen-shell.dat"), &g300, &frozen)?;
    ph::run(
        &ph::Command::Histogram(ph::HistogramArgs {
            gaps: vec![
                dir.join("gap-300K-full.dat"),
                dir.join("gap-300K-frozen-shell.dat"),
            ],
            output: dir.join("histogram"),
            labels: vec!["full".into(), "frozen-shell".into()],
            bin_width_mev: None,
            dt_fs: None,
            skip_fs: 0.0,
            allow_truncated: false,
        }),
        quiet,
    )
}

/// A 64-atom oscillator cluster at 300 K (Pb 4.1, Cs 6.9, Br 16.5 meV):
/// `phonon dos` and `phonon rmsf`.
fn phonon_cluster(dir: &Path, seed: u64, quiet: bool) -> Result<()> {
    let gt = Grid {
        frames: 600,
        dt_fs: 5.0,
        temperature_k: 300.0,
    };
    let k_of = |el: &str| match el {
        "Pb" => 3.0,
        "Cs" => 5.0,
        _ => 12.0,
    };
    psynth::write_cluster(dir, "cluster", 4, &gt, &k_of, seed)?;
    let traj = ph::TrajInput {
        positions: dir.join("cluster-pos-1.xyz"),
        velocities: Some(dir.join("cluster-vel-1.xyz")),
        vel_unit: qdscope::io::xyz::VelocityUnit::BohrPerAut,
        dt_fs: None,
        skip_fs: 0.0,
        rigid: None,
        allow_truncated: false,
    };
    ph::run(
        &ph::Command::Dos(ph::DosArgs {
            input: traj.clone(),
            output: dir.join("dos"),
            temperature_k: 300.0,
            route: qdscope::phonon::dos::Route::Velocities,
            segment_frames: 2048,
            window: None,
            ener: None,
            t_norm: qdscope::phonon::analysis::TNorm::Target,
        }),
        quiet,
    )?;
    ph::run(
        &ph::Command::Rmsf(ph::RmsfArgs {
            input: traj,
            output: dir.join("rmsf"),
            lattice_angstrom: 5.87,
        }),
        quiet,
    )
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| Error::param("--output", format!("{} is not valid UTF-8", p.display())))
}
