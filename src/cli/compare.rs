//! `qdscope compare --group NAME DIR... --group NAME DIR... -o DIR`: per-QD
//! Cs : Pb/Br ratios of each group, mean ± s.d. over QDs (n − 1), Welch's
//! t-test and effect size for every pair of groups (docs/methods/statistics.md),
//! computed by [`qdscope::stem::compare`]. Writes `comparison.json` and
//! `comparison.png` (per-QD ratios as points, mean ± s.d. bars).

use std::path::{Path, PathBuf};

use qdscope::error::Result;
use qdscope::report::{self, plot};
use qdscope::stem::compare;

/// Arguments of `qdscope compare`. `--group NAME DIR...` is parsed by hand
/// (clap's derive cannot keep the occurrences of a multi-value flag apart).
#[derive(Debug, Clone)]
pub struct Args {
    /// Groups: name followed by its result directories.
    pub groups: Vec<Vec<String>>,
    /// Output directory (created if missing).
    pub output: PathBuf,
}

impl clap::FromArgMatches for Args {
    fn from_arg_matches(m: &clap::ArgMatches) -> std::result::Result<Self, clap::Error> {
        let groups = m
            .get_occurrences::<String>("group")
            .map(|occ| occ.map(|g| g.cloned().collect()).collect())
            .unwrap_or_default();
        let output = m
            .get_one::<PathBuf>("output")
            .cloned()
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::MissingRequiredArgument))?;
        Ok(Args { groups, output })
    }
    fn update_from_arg_matches(
        &mut self,
        m: &clap::ArgMatches,
    ) -> std::result::Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for Args {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.arg(
            clap::Arg::new("group")
                .long("group")
                .num_args(2..)
                .value_names(["NAME", "DIR"])
                .action(clap::ArgAction::Append)
                .required(true)
                .help(
                    "A group: its name followed by its result directories (repeat for each group)",
                ),
        )
        .arg(
            clap::Arg::new("output")
                .short('o')
                .long("output")
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .required(true)
                .help("Output directory (created if missing)"),
        )
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

pub(crate) fn run(args: &Args, _quiet: bool) -> Result<()> {
    let groups: Vec<(String, Vec<PathBuf>)> = args
        .groups
        .iter()
        .map(|g| (g[0].clone(), g[1..].iter().map(PathBuf::from).collect()))
        .collect();
    let c = compare::compare(&groups)?;
    write(&args.output, &c, "Cs:Pb/Br volume ratio per QD")?;
    let (gs, ts, warnings) = (&c.groups, &c.tests, &c.warnings);
    for w in warnings {
        eprintln!("qdscope: warning: {w}");
    }
    for g in gs {
        println!(
            "{}: n = {}, volume ratio {:.4} ± {}",
            g.name,
            g.n,
            g.ratio_volume_mean,
            g.ratio_volume_sd
                .map_or("n/a".into(), |s| format!("{s:.4}"))
        );
    }
    for t in ts {
        if let Some(w) = &t.volume {
            println!(
                "{} vs {}: t = {:.3}, ν = {:.2}, p = {:.3e}, d = {:.2}",
                t.a, t.b, w.t, w.df, w.p, w.cohen_d
            );
        }
    }
    Ok(())
}

/// `comparison.json` and `comparison.png` (per-QD volume ratios as points,
/// mean ± s.d. bars; the first test's p in the title) in `dir`, whole or
/// not at all.
///
/// # Errors
/// I/O and plotting errors.
pub(crate) fn write(dir: &Path, c: &compare::Comparison, title: &str) -> Result<()> {
    let set = report::OutputSet::new(dir)?;
    let out = set.dir().to_path_buf();
    report::write_json(&out.join("comparison.json"), c)?;
    let pts: Vec<(String, Vec<f64>, f64, f64)> = c
        .groups
        .iter()
        .map(|g| {
            (
                format!("{} (n={})", g.name, g.n),
                g.qds.iter().map(|q| q.ratio_volume).collect(),
                g.ratio_volume_mean,
                g.ratio_volume_sd.unwrap_or(f64::NAN),
            )
        })
        .collect();
    let title = match c.tests.first().and_then(|t| t.volume.as_ref()) {
        Some(w) => format!("{title} (Welch p = {:.2e})", w.p),
        None => title.to_string(),
    };
    plot::groups_png(
        &out.join("comparison.png"),
        &title,
        "Cs : Pb/Br ratio (volume)",
        &pts,
    )?;
    set.commit()
}
