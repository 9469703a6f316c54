//! Trajectory commands: `dos` (eq. 1) and `rmsf` (eq. 9).

use std::path::{Path, PathBuf};

use super::{print_remarks, TrajInput};
use qdscope::error::Result;
use qdscope::fft::Window;
use qdscope::phonon::analysis::{self, DosRun, DosRunParams, RmsfParams, RmsfRun, TNorm};
use qdscope::phonon::dos::{self, DosParams, Route};
use qdscope::report::{self, fmt_f64, fmt_opt, plot};
use qdscope::structure::LATTICE_ANGSTROM;
use qdscope::units::{MEV_TO_CM1, MEV_TO_THZ};

/// Arguments of `phonon dos`.
#[derive(Debug, Clone, clap::Args)]
pub struct DosArgs {
    #[command(flatten)]
    pub input: TrajInput,
    /// Output directory.
    #[arg(short, long = "output", value_name = "DIR")]
    pub output: PathBuf,
    /// Thermostat temperature, K (normalisation and the eq.-1 factor).
    #[arg(long, value_name = "K")]
    pub temperature_k: f64,
    /// Spectrum from velocities (default) or positions.
    #[arg(long = "from", value_enum, default_value_t = Route::Velocities)]
    pub route: Route,
    /// Frames per Welch segment.
    #[arg(long, value_name = "N", default_value_t = 2048)]
    pub segment_frames: usize,
    /// Window (default rect for velocities, hann for positions).
    #[arg(long, value_enum)]
    pub window: Option<Window>,
    /// CP2K `.ener` file of the run (needed for --t-norm measured; also checks the mean T).
    #[arg(long, value_name = "FILE")]
    pub ener: Option<PathBuf>,
    /// Normalisation temperature: the thermostat target (--temperature-k) or the measured mean of --ener.
    #[arg(long, value_enum, default_value_t = TNorm::Target)]
    pub t_norm: TNorm,
}

/// Arguments of `phonon rmsf`.
#[derive(Debug, Clone, clap::Args)]
pub struct RmsfArgs {
    #[command(flatten)]
    pub input: TrajInput,
    /// Output directory.
    #[arg(short, long = "output", value_name = "DIR")]
    pub output: PathBuf,
    /// Lattice constant for the layer depth, Å.
    #[arg(long, value_name = "ANGSTROM", default_value_t = LATTICE_ANGSTROM)]
    pub lattice_angstrom: f64,
}

/// `dos.png`: total and per-element DOS up to 1.3× the energy below which
/// 99.9 % of the modes lie (at least 20 meV).
fn dos_png(out: &Path, d: &dos::Dos, elements: &[&String]) -> Result<()> {
    let mut cum = 0.0;
    let e999 = (0..d.total.len())
        .find(|&k| {
            cum += d.total[k];
            cum >= 0.999 * d.sum_modes
        })
        .map_or(f64::INFINITY, |k| d.energy_mev[k]);
    let emax = (1.3 * e999).max(20.0);
    let kmax = d
        .energy_mev
        .iter()
        .position(|e| *e > emax)
        .unwrap_or(d.total.len());
    let mut series = vec![plot::Series {
        label: "total".into(),
        points: (1..kmax)
            .map(|k| (d.energy_mev[k], d.total[k] / d.bin_mev))
            .collect(),
        line: true,
        y_err: None,
    }];
    for e in elements {
        series.push(plot::Series {
            label: (*e).clone(),
            points: (1..kmax)
                .map(|k| (d.energy_mev[k], d.by_element[*e][k] / d.bin_mev))
                .collect(),
            line: true,
            y_err: None,
        });
    }
    plot::xy_png(
        &out.join("dos.png"),
        &format!(
            "phonon DOS: {:.1} modes (expected {:.0})",
            d.sum_modes, d.expected_modes
        ),
        "ħω (meV)",
        "DOS (modes/meV)",
        &series,
    )
}

/// Every output of a DOS run, written into `dir` (all or none).
fn write_dos(dir: &Path, positions: &Path, p: &DosRunParams, r: &DosRun) -> Result<()> {
    let (d, info) = (&r.dos, &r.info);
    let set = qdscope::report::OutputSet::new(dir)?;
    let out = set.dir().to_path_buf();
    let elements: Vec<&String> = d.by_element.keys().collect();
    let mut header: Vec<String> = vec![
        "energy_mev".into(),
        "frequency_thz".into(),
        "wavenumber_cm1".into(),
        "total_modes_per_bin".into(),
        "total_modes_per_mev".into(),
        "eq1_total_modes_per_mev".into(),
        "unweighted_a2_per_fs2_per_bin".into(),
    ];
    header.extend(elements.iter().map(|e| format!("{e}_modes_per_bin")));
    let rows: Vec<Vec<String>> = (0..d.total.len())
        .map(|k| {
            let mut row = vec![
                fmt_f64(d.energy_mev[k]),
                fmt_f64(d.energy_mev[k] * MEV_TO_THZ),
                fmt_f64(d.energy_mev[k] * MEV_TO_CM1),
                fmt_f64(d.total[k]),
                fmt_f64(d.total[k] / d.bin_mev),
                fmt_f64(d.total[k] / d.bin_mev * d.q[k]),
                fmt_f64(d.unweighted[k]),
            ];
            row.extend(elements.iter().map(|e| fmt_f64(d.by_element[*e][k])));
            row
        })
        .collect();
    let hdr: Vec<&str> = header.iter().map(String::as_str).collect();
    report::write_csv(&out.join("dos.csv"), &hdr, &rows)?;
    let summary = serde_json::json!({
        "positions": positions.display().to_string(),
        "velocities": p.input.velocities.as_ref().map(|p| p.display().to_string()),
        "route": p.spectrum.route, "window": p.spectrum.window, "temperature_k": p.spectrum.temperature_k,
        "t_norm_k": r.t_norm_k, "measured_mean_temperature_k": r.measured_temperature_k,
        "n_atoms": info.n_atoms, "n_frames": info.n_frames, "dt_fs": info.dt_fs,
        "segment_frames": d.segment_frames, "n_segments": d.n_segments, "bin_mev": d.bin_mev,
        "nyquist_mev": d.energy_mev.last(), "rigid": info.rigid, "icp_iterations": info.icp_iterations,
        "frozen_atoms": info.frozen.len(), "sum_modes": d.sum_modes, "expected_modes": d.expected_modes,
        "frames_dropped_truncated": info.frames_dropped_truncated,
        "warnings": info.warnings,
    });
    report::write_json(&out.join("dos.json"), &summary)?;
    dos_png(&out, d, &elements)?;
    set.commit()
}

impl DosArgs {
    /// The library's parameters (the window resolved from the route).
    pub(super) fn params(&self) -> DosRunParams {
        DosRunParams {
            input: self.input.params(),
            spectrum: DosParams {
                segment_frames: self.segment_frames,
                window: self.window.unwrap_or(self.route.default_window()),
                route: self.route,
                temperature_k: self.temperature_k,
            },
            ener: self.ener.clone(),
            t_norm: self.t_norm,
        }
    }
}

pub(super) fn run_dos(a: &DosArgs, quiet: bool) -> Result<()> {
    let p = a.params();
    let progress = report::spinner("frames", quiet);
    let mut remarks = Vec::new();
    let r = analysis::dos(&a.input.positions, &p, Some(progress.clone()), &mut remarks);
    print_remarks(&remarks);
    let r = r?;
    progress.finish_and_clear();
    write_dos(&a.output, &a.input.positions, &p, &r)?;
    let (d, info) = (&r.dos, &r.info);
    for w in &info.warnings.0 {
        eprintln!("qdscope: warning: {}: {w}", a.input.positions.display());
    }
    println!(
        "{}: {} atoms × {} frames ({} fs), {} segment(s) of {}; Σg = {:.2} modes (expected {:.0}, rigid {:?})",
        a.input.positions.display(),
        info.n_atoms,
        info.n_frames,
        info.dt_fs.unwrap_or(f64::NAN),
        d.n_segments,
        d.segment_frames,
        d.sum_modes,
        d.expected_modes,
        info.rigid
    );
    Ok(())
}

/// Every output of an RMSF run, written into `dir` (all or none).
fn write_rmsf(dir: &Path, positions: &Path, lattice_angstrom: f64, run: &RmsfRun) -> Result<()> {
    let (r, info) = (&run.rmsf, &run.info);
    let set = qdscope::report::OutputSet::new(dir)?;
    let out = set.dir().to_path_buf();
    let rows: Vec<Vec<String>> = (0..r.per_atom.len())
        .map(|i| {
            vec![
                i.to_string(),
                info.species[i].clone(),
                fmt_f64(r.layer[i]),
                fmt_f64(r.mean_pos[i][0]),
                fmt_f64(r.mean_pos[i][1]),
                fmt_f64(r.mean_pos[i][2]),
                fmt_f64(r.per_atom[i]),
                info.frozen.contains(&i).to_string(),
            ]
        })
        .collect();
    report::write_csv(
        &out.join("rmsf_atoms.csv"),
        &[
            "index",
            "element",
            "layer_uc",
            "x_angstrom",
            "y_angstrom",
            "z_angstrom",
            "rmsf_angstrom",
            "frozen",
        ],
        &rows,
    )?;
    let erows: Vec<Vec<String>> = r
        .by_element
        .iter()
        .map(|(e, m, s, n)| vec![e.clone(), fmt_f64(*m), fmt_opt(*s), n.to_string()])
        .collect();
    report::write_csv(
        &out.join("rmsf_elements.csv"),
        &["element", "rmsf_mean_angstrom", "rmsf_sd_angstrom", "count"],
        &erows,
    )?;
    let lrows: Vec<Vec<String>> = r
        .by_layer
        .iter()
        .map(|(e, d, m, s, n)| {
            vec![
                e.clone(),
                fmt_f64(*d),
                fmt_f64(*m),
                fmt_opt(*s),
                n.to_string(),
            ]
        })
        .collect();
    report::write_csv(
        &out.join("rmsf_layers.csv"),
        &[
            "element",
            "layer_uc",
            "rmsf_mean_angstrom",
            "rmsf_sd_angstrom",
            "count",
        ],
        &lrows,
    )?;
    report::write_json(
        &out.join("rmsf.json"),
        &serde_json::json!({"positions": positions.display().to_string(), "n_atoms": info.n_atoms,
            "n_frames": info.n_frames, "dt_fs": info.dt_fs, "rigid": info.rigid, "icp_iterations": info.icp_iterations,
            "frozen_atoms": info.frozen.len(), "lattice_angstrom": lattice_angstrom,
            "frames_dropped_truncated": info.frames_dropped_truncated,
            "by_element": r.by_element.iter().map(|(e, m, s, n)| serde_json::json!({"element": e, "mean_angstrom": m,
                "sd_angstrom": s.filter(|s| s.is_finite()), "count": n})).collect::<Vec<_>>(),
            "warnings": info.warnings}),
    )?;
    let mut by_el: std::collections::BTreeMap<&str, Vec<(f64, f64)>> = Default::default();
    for (e, d, m, _, _) in &r.by_layer {
        by_el.entry(e.as_str()).or_default().push((*d, *m));
    }
    let series: Vec<plot::Series> = by_el
        .into_iter()
        .map(|(e, pts)| plot::Series {
            label: e.to_string(),
            points: pts,
            line: true,
            y_err: None,
        })
        .collect();
    plot::xy_png(
        &out.join("rmsf.png"),
        "RMSF per element and layer",
        "depth below the surface (u.c.)",
        "RMSF (Å)",
        &series,
    )?;
    set.commit()
}

impl RmsfArgs {
    /// The library's parameters.
    pub(super) fn params(&self) -> RmsfParams {
        RmsfParams {
            input: self.input.params(),
            lattice_angstrom: self.lattice_angstrom,
        }
    }
}

pub(super) fn run_rmsf(a: &RmsfArgs, quiet: bool) -> Result<()> {
    let p = a.params();
    let progress = report::spinner("frames", quiet);
    let run = analysis::rmsf(&a.input.positions, &p, Some(progress.clone()))?;
    progress.finish_and_clear();
    write_rmsf(&a.output, &a.input.positions, a.lattice_angstrom, &run)?;
    let r = &run.rmsf;
    for (e, m, s, n) in &r.by_element {
        // A single atom has no s.d.: printed as NaN, as always.
        let s = s.unwrap_or(f64::NAN);
        println!("{e}: RMSF {m:.4} ± {s:.4} Å ({n} atoms)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Command;
    use clap::Parser;
    use qdscope::phonon::analysis::{
        CouplingParams, DephasingParams, DosRunParams, GapParams, HistogramParams, RmsfParams,
        TrajParams,
    };

    /// The phonon command line `args` (after `qdscope phonon`).
    fn parse(args: &[&str]) -> Command {
        let argv = ["qdscope", "phonon"].iter().chain(args);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Phonon(c) => c,
            _ => unreachable!("a phonon command line"),
        }
    }

    /// Each phonon command without options (and the library's default
    /// temperature where the command asks for one) gives the library's
    /// default parameters.
    #[test]
    fn phonon_flags_default_to_the_library_defaults() {
        let t = ["--temperature-k", "300"];
        let with_t = |cmd: &str, input: &str| {
            let mut v = vec![cmd, input, "-o", "out"];
            v.extend(t);
            parse(&v)
        };
        let Command::Coupling(a) = with_t("coupling", "gap.dat") else {
            unreachable!()
        };
        assert_eq!(a.params().unwrap(), CouplingParams::default());
        let Command::Dephasing(a) = with_t("dephasing", "gap.dat") else {
            unreachable!()
        };
        assert_eq!(a.params(), DephasingParams::default());
        let Command::Histogram(a) = parse(&["histogram", "gap.dat", "-o", "out"]) else {
            unreachable!()
        };
        assert_eq!(a.params(), HistogramParams::default());
        assert_eq!(a.params().input, GapParams::default());
        let Command::Dos(a) = with_t("dos", "pos.xyz") else {
            unreachable!()
        };
        assert_eq!(a.params(), DosRunParams::default());
        let Command::Rmsf(a) = parse(&["rmsf", "pos.xyz", "-o", "out"]) else {
            unreachable!()
        };
        assert_eq!(a.params(), RmsfParams::default());
        assert_eq!(a.params().input, TrajParams::default());
    }
}
