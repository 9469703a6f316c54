//! `qdscope compare --group NAME DIR... --group NAME DIR... -o DIR`: per-QD
//! Cs : Pb/Br ratios of each group, mean ± s.d. over QDs (n − 1), Welch's
//! t-test and effect size for every pair of groups (docs/methods/statistics.md).
//! Writes `comparison.json` and `comparison.png` (per-QD ratios as points,
//! mean ± s.d. bars).
//!
//! A DIR is either one `qdscope columns` output (with `summary.json`) or an
//! `analyze` output whose sub-directories hold one `summary.json` each.

use std::path::{Path, PathBuf};

use serde::Serialize;

use qdscope::error::{Error, Result};
use qdscope::report::{self, plot};
use qdscope::stem::ratio::{self, Welch};

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

/// One QD of a group.
#[derive(Debug, Clone, Serialize)]
pub struct Qd {
    /// Its result directory.
    pub dir: String,
    /// Volume ratio.
    pub ratio_volume: f64,
    /// Height ratio.
    pub ratio_height: f64,
}

/// Statistics of a group.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Number of QDs.
    pub n: usize,
    /// Mean volume ratio over QDs.
    pub ratio_volume_mean: f64,
    /// s.d. over QDs (n − 1); null for one QD.
    pub ratio_volume_sd: Option<f64>,
    /// Mean height ratio.
    pub ratio_height_mean: f64,
    /// s.d. of the height ratio.
    pub ratio_height_sd: Option<f64>,
    /// The QDs.
    pub qds: Vec<Qd>,
}

/// Test between two groups.
#[derive(Debug, Clone, Serialize)]
pub struct Test {
    /// First group.
    pub a: String,
    /// Second group (t = mean(b) − mean(a) over its standard error).
    pub b: String,
    /// Welch's test on volume ratios (null when a group has one QD).
    pub volume: Option<Welch>,
    /// Welch's test on height ratios.
    pub height: Option<Welch>,
    /// Why a test is null.
    pub note: Option<String>,
}

#[derive(Serialize)]
struct Comparison<'a> {
    groups: &'a [Group],
    tests: &'a [Test],
    warnings: &'a [String],
}

fn summaries_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let direct = dir.join("summary.json");
    if direct.is_file() {
        return Ok(vec![direct]);
    }
    if !dir.is_dir() {
        return Err(Error::param(
            "--group",
            format!("{}: not a directory", dir.display()),
        ));
    }
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = e
            .map_err(|e| Error::io(dir, e))?
            .path()
            .join("summary.json");
        if p.is_file() {
            found.push(p);
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(Error::param(
            "--group",
            format!(
                "{}: no summary.json (neither a `qdscope columns` output nor an `analyze` output)",
                dir.display()
            ),
        ));
    }
    Ok(found)
}

fn read_qd(path: &Path) -> Result<Qd> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::format(path, format!("invalid JSON: {e}")))?;
    let get = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_f64)
            .filter(|x| x.is_finite())
            .ok_or_else(|| Error::format(path, format!("missing or non-numeric '{k}'")))
    };
    Ok(Qd {
        dir: path.parent().unwrap_or(path).display().to_string(),
        ratio_volume: get("ratio_volume_mean")?,
        ratio_height: get("ratio_height_mean")?,
    })
}

/// Load the groups: (name, dirs) → per-QD ratios.
///
/// # Errors
/// A group without directories, a directory listed twice (in one or two
/// groups), missing or malformed summaries, duplicate group names.
pub fn load_groups(groups: &[(String, Vec<PathBuf>)]) -> Result<Vec<Group>> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for (name, dirs) in groups {
        if names.contains(&name.as_str()) {
            return Err(Error::param(
                "--group",
                format!("group '{name}' given twice"),
            ));
        }
        names.push(name);
        if dirs.is_empty() {
            return Err(Error::param(
                "--group",
                format!("group '{name}' has no directories"),
            ));
        }
        let mut qds = Vec::new();
        for d in dirs {
            for s in summaries_in(d)? {
                let canon = s.canonicalize().unwrap_or_else(|_| s.clone());
                if seen.contains(&canon) {
                    return Err(Error::param(
                        "--group",
                        format!(
                            "{} is listed more than once (a QD can belong to one group only)",
                            s.display()
                        ),
                    ));
                }
                seen.push(canon);
                qds.push(read_qd(&s)?);
            }
        }
        let v: Vec<f64> = qds.iter().map(|q| q.ratio_volume).collect();
        let h: Vec<f64> = qds.iter().map(|q| q.ratio_height).collect();
        // A group without QDs has no mean (written as null, as NaN was).
        let ms = |v: &[f64]| ratio::mean_sd(v).unwrap_or((f64::NAN, None));
        let (mv, sv) = ms(&v);
        let (mh, sh) = ms(&h);
        out.push(Group {
            name: name.clone(),
            n: qds.len(),
            ratio_volume_mean: mv,
            ratio_volume_sd: sv.filter(|s| s.is_finite()),
            ratio_height_mean: mh,
            ratio_height_sd: sh.filter(|s| s.is_finite()),
            qds,
        });
    }
    Ok(out)
}

/// Welch's tests for every pair of groups, with warnings for groups of one.
#[must_use]
pub fn tests(groups: &[Group]) -> (Vec<Test>, Vec<String>) {
    let mut warnings = Vec::new();
    for g in groups.iter().filter(|g| g.n < 2) {
        warnings.push(format!(
            "group '{}' has {} QD: no s.d. and no t-test (need at least 2)",
            g.name, g.n
        ));
    }
    let mut out = Vec::new();
    for i in 0..groups.len() {
        for j in i + 1..groups.len() {
            let (a, b) = (&groups[i], &groups[j]);
            let va: Vec<f64> = a.qds.iter().map(|q| q.ratio_volume).collect();
            let vb: Vec<f64> = b.qds.iter().map(|q| q.ratio_volume).collect();
            let ha: Vec<f64> = a.qds.iter().map(|q| q.ratio_height).collect();
            let hb: Vec<f64> = b.qds.iter().map(|q| q.ratio_height).collect();
            let tv = ratio::welch(&va, &vb);
            let th = ratio::welch(&ha, &hb);
            let note = match (&tv, &th) {
                (Err(e), _) | (_, Err(e)) => Some(e.to_string()),
                _ => None,
            };
            out.push(Test {
                a: a.name.clone(),
                b: b.name.clone(),
                volume: tv.ok(),
                height: th.ok(),
                note,
            });
        }
    }
    (out, warnings)
}

pub(crate) fn run(args: &Args, _quiet: bool) -> Result<()> {
    let groups: Vec<(String, Vec<PathBuf>)> = args
        .groups
        .iter()
        .map(|g| (g[0].clone(), g[1..].iter().map(PathBuf::from).collect()))
        .collect();
    let gs = load_groups(&groups)?;
    let (ts, warnings) = tests(&gs);
    let set = qdscope::report::OutputSet::new(&args.output)?;
    let out = set.dir().to_path_buf();
    report::write_json(
        &out.join("comparison.json"),
        &Comparison {
            groups: &gs,
            tests: &ts,
            warnings: &warnings,
        },
    )?;
    let pts: Vec<(String, Vec<f64>, f64, f64)> = gs
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
    let title = match ts.first().and_then(|t| t.volume.as_ref()) {
        Some(w) => format!("Cs:Pb/Br volume ratio per QD (Welch p = {:.2e})", w.p),
        None => "Cs:Pb/Br volume ratio per QD".to_string(),
    };
    plot::groups_png(
        &out.join("comparison.png"),
        &title,
        "Cs : Pb/Br ratio (volume)",
        &pts,
    )?;
    set.commit()?;
    for w in &warnings {
        eprintln!("qdscope: warning: {w}");
    }
    for g in &gs {
        println!(
            "{}: n = {}, volume ratio {:.4} ± {}",
            g.name,
            g.n,
            g.ratio_volume_mean,
            g.ratio_volume_sd
                .map_or("n/a".into(), |s| format!("{s:.4}"))
        );
    }
    for t in &ts {
        if let Some(w) = &t.volume {
            println!(
                "{} vs {}: t = {:.3}, ν = {:.2}, p = {:.3e}, d = {:.2}",
                t.a, t.b, w.t, w.df, w.p, w.cohen_d
            );
        }
    }
    Ok(())
}
