//! `qdscope simulate`: multislice ADF-STEM thickness series of CsPbBr3
//! \[001\] and the Cs : Pb/Br column ratio vs thickness (docs/methods/multislice.md).
//! Writes `series.csv`, `series_se.csv` (jackknife standard errors over the
//! frozen-phonon configurations, two or more), `images/t<NN>uc.npy`, `series.png`,
//! `simulate.json`; with `--shard I/N` only `partial.json` (summed
//! detector fractions of that shard), which `--merge DIR...` combines.

mod outputs;

use std::path::{Path, PathBuf};

use qdscope::error::{Error, Result};
use qdscope::image::STUDY_PIXEL_ANGSTROM;
use qdscope::multislice::image::check_pixel_size;
use qdscope::multislice::merge::{check_complete, read_shards, reevaluate};
use qdscope::multislice::preset::{Overrides, DEFAULT_DISPLACEMENT_ANGSTROM};
use qdscope::multislice::series::{run_shard, ticks, SimParams};
use qdscope::optics::Microscope;
use qdscope::report;

pub use qdscope::multislice::preset::Quality;

/// Algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Plain multislice, one propagation per probe position.
    Multislice,
    /// PRISM S-matrix with interpolation factor f (`--interpolation`).
    Prism,
}

/// Arguments of `qdscope simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Thickness range in u.c., `FROM..TO` (every u.c. is recorded).
    #[arg(long, value_name = "FROM..TO", default_value = "2..30")]
    pub thickness_uc: String,
    /// High tension, kV.
    #[arg(long, value_name = "KV", default_value_t = 300.0)]
    pub kv: f64,
    /// Probe convergence semi-angle, mrad.
    #[arg(long, value_name = "MRAD", default_value_t = 18.0)]
    pub convergence_mrad: f64,
    /// Annular detector `INNER,OUTER` in mrad; repeat for several detectors.
    #[arg(long, value_name = "IN,OUT", default_value = "35,190")]
    pub detector_mrad: Vec<String>,
    /// Energy spread, eV FWHM.
    #[arg(long, value_name = "EV", default_value_t = 0.8)]
    pub energy_spread_ev: f64,
    /// Chromatic aberration C_c, mm (assumption).
    #[arg(long, value_name = "MM", default_value_t = 1.4)]
    pub cc_mm: f64,
    /// Probe defocus Δf, Å (Kirkland sign: Δf > 0 focuses the probe Δf below the entrance surface; assumption: 0).
    #[arg(
        long,
        value_name = "A",
        default_value_t = 0.0,
        allow_hyphen_values = true
    )]
    pub defocus_angstrom: f64,
    /// Effective source size, Å FWHM.
    #[arg(long, value_name = "ANGSTROM", default_value_t = 0.25)]
    pub source_size_angstrom: f64,
    /// Extra Gaussian blur σ, Å.
    #[arg(long, value_name = "ANGSTROM", default_value_t = 0.3)]
    pub blur_angstrom: f64,
    /// Preset of grid, supercell, configurations and defocus nodes.
    #[arg(long, value_enum, default_value_t = Quality::Quick)]
    pub quality: Quality,
    /// Frozen-phonon configurations (overrides the preset).
    #[arg(long, value_name = "N")]
    pub phonons: Option<usize>,
    /// Gauss–Hermite defocus nodes 1, 3 or 5 (overrides the preset).
    #[arg(long, value_name = "N")]
    pub defocus_nodes: Option<usize>,
    /// Supercell side in u.c. (overrides the preset).
    #[arg(long, value_name = "N")]
    pub supercell_uc: Option<usize>,
    /// Wave sampling Δx in Å (grid = L/Δx rounded up to an FFT-friendly size; overrides the preset).
    #[arg(long, value_name = "DX")]
    pub sampling_angstrom: Option<f64>,
    /// Probe positions per unit-cell side (≥ a·4α/λ).
    #[arg(long, value_name = "N", default_value_t = 24)]
    pub probe_per_cell: usize,
    /// Scan every position instead of the 4mm wedge about the Cs column.
    #[arg(long)]
    pub no_symmetry: bool,
    /// Algorithm.
    #[arg(long, value_enum, default_value_t = Method::Multislice)]
    pub method: Method,
    /// PRISM interpolation factor f (1, 2, 4 or 8; 1 equals multislice).
    #[arg(long, value_name = "F", default_value_t = 1)]
    pub interpolation: usize,
    /// Transmission functions computed on an M-times finer grid and
    /// band-limited onto the wave grid (1 … 4; 1 = sampled potential). The
    /// projected potential is singular at the nuclei: with M = 1 a column
    /// half a pixel off the grid scatters ≈ 11 % more into the ADF detector
    /// than one on a pixel (Pb/Br, 4 u.c.), with M = 2 < 0.3 %.
    #[arg(long, value_name = "M", default_value_t = 2)]
    pub potential_oversampling: usize,
    /// Double-precision complex FFTs, waves and transmissions (multislice
    /// only; default single precision, ≈ 2× faster).
    #[arg(long)]
    pub double: bool,
    /// Per-axis RMS thermal displacement per element, Å: `Cs=0.22,Pb=0.16,Br=0.22`.
    #[arg(long, value_name = "EL=A,...")]
    pub displacement_angstrom: Option<String>,
    /// Take the displacements from `qdscope phonon rmsf`'s rmsf_elements.csv (RMS per axis = RMSF/√3).
    #[arg(long, value_name = "FILE", conflicts_with = "displacement_angstrom")]
    pub phonon_rmsf: Option<PathBuf>,
    /// Pixel size of the images the columns are fitted on, Å (the experiment's).
    #[arg(long, value_name = "ANGSTROM", default_value_t = STUDY_PIXEL_ANGSTROM)]
    pub pixel_size_angstrom: f64,
    /// Seed of the frozen-phonon configurations.
    #[arg(long, value_name = "N", default_value_t = 2022)]
    pub seed: u64,
    /// Compute only shard I of N of the (configuration, defocus node) work items.
    #[arg(long, value_name = "I/N", conflicts_with = "merge")]
    pub shard: Option<String>,
    /// Combine the `partial.json` of shard directories instead of computing.
    #[arg(long, value_name = "DIR", num_args = 1..)]
    pub merge: Vec<PathBuf>,
    /// With --merge: accept shards holding only some configurations and
    /// average over those (a preliminary result, said in the warnings).
    #[arg(long, requires = "merge")]
    pub allow_partial: bool,
    /// Output directory.
    #[arg(short, long = "output", value_name = "DIR")]
    pub output: PathBuf,
}

fn parse_range(s: &str) -> Result<(usize, usize)> {
    let bad = || {
        Error::param(
            "--thickness-uc",
            format!("expected FROM..TO with 1 ≤ FROM ≤ TO ≤ 200, got '{s}'"),
        )
    };
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let (a, b): (usize, usize) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a == 0 || a > b || b > 200 {
        return Err(bad());
    }
    Ok((a, b))
}

fn parse_displacements(s: &str) -> Result<[f64; 3]> {
    let mut out = DEFAULT_DISPLACEMENT_ANGSTROM;
    for part in s.split(',') {
        let (el, v) = part.split_once('=').ok_or_else(|| {
            Error::param(
                "--displacement-angstrom",
                format!("expected EL=VALUE, got '{part}'"),
            )
        })?;
        let v: f64 = v.trim().parse().map_err(|_| {
            Error::param("--displacement-angstrom", format!("'{v}' is not a number"))
        })?;
        if !(v.is_finite() && v >= 0.0) {
            return Err(Error::param(
                "--displacement-angstrom",
                format!("{el}: must be ≥ 0 Å"),
            ));
        }
        match el.trim() {
            "Cs" => out[0] = v,
            "Pb" => out[1] = v,
            "Br" => out[2] = v,
            e => {
                return Err(Error::param(
                    "--displacement-angstrom",
                    format!("unknown element '{e}' (Cs, Pb, Br)"),
                ))
            }
        }
    }
    Ok(out)
}

fn rmsf_displacements(path: &Path) -> Result<[f64; 3]> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = [f64::NAN; 3];
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let v = f.get(1).and_then(|v| v.parse::<f64>().ok());
        let k = match f.first().copied() {
            Some("Cs") => 0,
            Some("Pb") => 1,
            Some("Br") => 2,
            _ => continue,
        };
        out[k] = v.ok_or_else(|| Error::format(path, format!("bad row '{line}'")))? / 3f64.sqrt();
    }
    if out.iter().any(|v| !v.is_finite()) {
        return Err(Error::format(path, "needs rmsf_mean_angstrom rows for Cs, Pb and Br (qdscope phonon rmsf's rmsf_elements.csv)"));
    }
    Ok(out)
}

/// The run's parameters from the flags (the library checks them) and the
/// thickness range to write.
fn params(a: &Args) -> Result<(SimParams, (usize, usize))> {
    let range = parse_range(&a.thickness_uc)?;
    let overrides = Overrides {
        supercell_uc: a.supercell_uc,
        sampling_angstrom: a.sampling_angstrom,
        phonons: a.phonons,
        defocus_nodes: a.defocus_nodes,
    };
    let mut p = SimParams::preset_with(a.quality, &overrides)?;
    let mut detectors = Vec::new();
    for d in &a.detector_mrad {
        let v: Vec<f64> = d.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        match v.as_slice() {
            [i, o] => detectors.push((*i, *o)),
            _ => {
                return Err(Error::param(
                    "--detector-mrad",
                    format!("expected INNER,OUTER, got '{d}'"),
                ))
            }
        }
    }
    p.displacement_angstrom = match (&a.displacement_angstrom, &a.phonon_rmsf) {
        (Some(s), _) => parse_displacements(s)?,
        (None, Some(p)) => rmsf_displacements(p)?,
        (None, None) => DEFAULT_DISPLACEMENT_ANGSTROM,
    };
    p.microscope = Microscope {
        high_tension_kv: a.kv,
        convergence_mrad: a.convergence_mrad,
        cc_mm: a.cc_mm,
        defocus_angstrom: a.defocus_angstrom,
        energy_spread_ev: a.energy_spread_ev,
        source_size_angstrom: a.source_size_angstrom,
        ..Microscope::default()
    };
    p.detectors = detectors;
    p.blur_angstrom = a.blur_angstrom;
    p.max_thickness_uc = range.1;
    p.probe_per_cell = a.probe_per_cell;
    p.symmetry_wedge = !a.no_symmetry;
    p.seed = a.seed;
    p.prism_interpolation = (a.method == Method::Prism).then_some(a.interpolation);
    p.potential_oversampling = a.potential_oversampling;
    p.double_precision = a.double;
    p.validate()?;
    check_pixel_size(a.pixel_size_angstrom)?;
    Ok((p, range))
}

/// Run `qdscope simulate`.
///
/// # Errors
/// Invalid flags, a grid too coarse for the detector, unreadable shards,
/// I/O errors; nothing is written before the computation succeeded.
pub fn run(a: &Args, quiet: bool) -> Result<()> {
    let (p, range) = params(a)?;
    let mut reevaluated = Vec::new();
    let part = if a.merge.is_empty() {
        let shard = match &a.shard {
            None => (0, 1),
            Some(s) => {
                let bad =
                    || Error::param("--shard", format!("expected I/N with 0 ≤ I < N, got '{s}'"));
                let (i, n) = s.split_once('/').ok_or_else(bad)?;
                let (i, n): (usize, usize) =
                    (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
                if n == 0 || i >= n {
                    return Err(bad());
                }
                (i, n)
            }
        };
        let total = ticks(&p, shard)?;
        let pb = report::progress(total as u64, "propagations", quiet);
        let part = run_shard(&p, shard, &|| pb.inc(1))?;
        pb.finish_and_clear();
        if a.shard.is_some() {
            super::ensure_dir(&a.output)?;
            return report::write_json(&a.output.join("partial.json"), &part);
        }
        part
    } else {
        let mut m = read_shards(&a.merge)?;
        reevaluated = reevaluate(&mut m, &p)?;
        check_complete(&mut m, a.allow_partial)?;
        m
    };
    outputs::write_outputs(a, range, &part, &reevaluated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The arguments of `qdscope simulate -o out` plus `extra`.
    fn args(extra: &[&str]) -> Args {
        let argv = [&["qdscope", "simulate", "-o", "out"], extra].concat();
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Simulate(a) => *a,
            _ => unreachable!("a simulate command line"),
        }
    }

    #[test]
    fn no_flags_give_the_library_defaults() {
        let (p, range) = params(&args(&[])).unwrap();
        let d = SimParams::default();
        assert_eq!(p.microscope, d.microscope);
        assert_eq!(p.detectors, d.detectors);
        assert_eq!(p.blur_angstrom, d.blur_angstrom);
        assert_eq!(p.max_thickness_uc, d.max_thickness_uc);
        assert_eq!(p.lattice_angstrom, d.lattice_angstrom);
        assert_eq!(p.supercell_uc, d.supercell_uc);
        assert_eq!(p.grid_n, d.grid_n);
        assert_eq!(p.probe_per_cell, d.probe_per_cell);
        assert_eq!(p.symmetry_wedge, d.symmetry_wedge);
        assert_eq!(p.phonons, d.phonons);
        assert_eq!(p.defocus_nodes, d.defocus_nodes);
        assert_eq!(p.displacement_angstrom, d.displacement_angstrom);
        assert_eq!(p.seed, d.seed);
        assert_eq!(p.prism_interpolation, d.prism_interpolation);
        assert_eq!(p.potential_oversampling, d.potential_oversampling);
        assert_eq!(p.double_precision, d.double_precision);
        assert_eq!(p.rng_scheme, d.rng_scheme);
        assert_eq!(p, d, "a field the comparisons above miss");
        assert_eq!(range, (2, 30));
        let a = args(&[]);
        assert_eq!(a.pixel_size_angstrom, STUDY_PIXEL_ANGSTROM);
        let (high, _) = params(&args(&["--quality", "high"])).unwrap();
        assert_eq!(high, SimParams::preset(Quality::High));
    }

    #[test]
    fn flags_the_library_refuses_are_refused() {
        let refused = |extra: &[&str]| params(&args(extra)).unwrap_err().to_string();
        let e = refused(&["--potential-oversampling", "5"]);
        assert!(e.ends_with("must be 1 … 4, got 5"), "{e}");
        let e = refused(&["--blur-angstrom=-1"]);
        assert!(e.ends_with("must be ≥ 0"), "{e}");
        let e = refused(&["--pixel-size-angstrom", "1"]);
        assert!(e.ends_with("must be in (0, 1) Å"), "{e}");
        let e = refused(&["--method", "prism", "--double"]);
        assert!(e.contains("PRISM runs in single precision"), "{e}");
    }

    /// The library's warnings, worded with flags as `simulate.json` and
    /// stderr carry them.
    #[test]
    fn warnings_are_worded_with_flags() {
        use qdscope::multislice::diagnostics::warnings;
        use qdscope::multislice::work::Partial;
        let params = SimParams {
            grid_n: 288,
            phonons: 4,
            ..SimParams::default()
        };
        // Two of four configurations: a preliminary result.
        let part = Partial::without_sums(params, 2, 0.98);
        let w: Vec<String> = warnings(&part)
            .iter()
            .map(|w| crate::cli::flags::words(w))
            .collect();
        assert!(w[0].contains("the shards hold (--allow-partial): a preliminary"));
        assert!(
            w[2].contains("(needs --sampling-angstrom ≤ 0.03"),
            "{}",
            w[2]
        );
        assert!(w[3].ends_with("use more --phonons or --no-symmetry"));
        assert!(w.iter().all(|w| !w.contains('`')), "{w:?}");
    }
}
