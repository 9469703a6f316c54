//! Group comparison of per-QD Cs : Pb/Br ratios read from `summary.json`
//! files — the library behind `qdscope compare` (docs/methods/statistics.md).
//!
//! A result directory is either one `qdscope columns` output (with
//! `summary.json`) or an `analyze` output whose sub-directories hold one
//! `summary.json` each. Per group: mean ± s.d. over QDs (n − 1); for every
//! pair of groups Welch's t-test and the effect sizes of [`crate::stats`].
//! Only the keys `ratio_volume_mean` and `ratio_height_mean` are read, so
//! any writer of those keys (the CLI, the accuracy benchmark) can feed it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::stem::ratio::{self, Welch};

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

fn summaries_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let direct = dir.join("summary.json");
    if direct.is_file() {
        return Ok(vec![direct]);
    }
    if !dir.is_dir() {
        return Err(Error::param(
            "groups",
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
            "groups",
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
                "groups",
                format!("group '{name}' given twice"),
            ));
        }
        names.push(name);
        if dirs.is_empty() {
            return Err(Error::param(
                "groups",
                format!("group '{name}' has no directories"),
            ));
        }
        let mut qds = Vec::new();
        for d in dirs {
            for s in summaries_in(d)? {
                let canon = s.canonicalize().unwrap_or_else(|_| s.clone());
                if seen.contains(&canon) {
                    return Err(Error::param(
                        "groups",
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

/// Groups, their tests and warnings: what `comparison.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The groups in the order given.
    pub groups: Vec<Group>,
    /// Welch's tests for every pair of groups.
    pub tests: Vec<Test>,
    /// Warnings (groups too small for a test).
    pub warnings: Vec<String>,
}

/// Load the groups and test every pair: [`load_groups`] then [`tests`].
///
/// # Errors
/// As [`load_groups`].
pub fn compare(groups: &[(String, Vec<PathBuf>)]) -> Result<Comparison> {
    let groups = load_groups(groups)?;
    let (tests, warnings) = tests(&groups);
    Ok(Comparison {
        groups,
        tests,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_qd(dir: &Path, volume: f64, height: f64) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("summary.json"),
            format!(r#"{{"ratio_volume_mean": {volume}, "ratio_height_mean": {height}}}"#),
        )
        .unwrap();
    }

    #[test]
    fn groups_from_analyze_and_columns_outputs_match_welch_on_the_same_values() {
        let t = tempfile::tempdir().unwrap();
        let core = [0.33, 0.31, 0.35, 0.32];
        let shell = [0.37, 0.38, 0.36];
        // Group a: an `analyze` output (one sub-directory per QD).
        for (i, v) in core.iter().enumerate() {
            write_qd(&t.path().join(format!("a/qd{i}")), *v, v * 0.9);
        }
        // Group b: three `columns` outputs.
        let b: Vec<PathBuf> = shell
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let d = t.path().join(format!("b{i}"));
                write_qd(&d, *v, v * 0.9);
                d
            })
            .collect();
        let c = compare(&[
            ("core".into(), vec![t.path().join("a")]),
            ("core/shell".into(), b),
        ])
        .unwrap();
        assert_eq!(c.groups[0].n, 4);
        assert_eq!(c.groups[1].n, 3);
        assert!((c.groups[0].ratio_volume_mean - 0.3275).abs() < 1e-12);
        assert!((c.groups[1].ratio_volume_mean - 0.37).abs() < 1e-12);
        let w = c.tests[0].volume.as_ref().unwrap();
        let direct = ratio::welch(&core, &shell).unwrap();
        assert!((w.t - direct.t).abs() < 1e-12 && (w.p - direct.p).abs() < 1e-12);
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn a_qd_in_two_groups_a_group_of_one_and_a_bad_summary() {
        let t = tempfile::tempdir().unwrap();
        write_qd(&t.path().join("x"), 0.33, 0.3);
        write_qd(&t.path().join("y"), 0.37, 0.3);
        let x = t.path().join("x");
        let e =
            compare(&[("a".into(), vec![x.clone()]), ("b".into(), vec![x.clone()])]).unwrap_err();
        assert!(e.to_string().contains("more than once"), "{e}");
        let c = compare(&[
            ("a".into(), vec![x]),
            ("b".into(), vec![t.path().join("y")]),
        ])
        .unwrap();
        assert!(c.tests[0].volume.is_none() && c.warnings.len() == 2);
        std::fs::write(
            t.path().join("y/summary.json"),
            r#"{"ratio_volume_mean": "x"}"#,
        )
        .unwrap();
        let e = load_groups(&[("b".into(), vec![t.path().join("y")])]).unwrap_err();
        assert!(e.to_string().contains("ratio_volume_mean"), "{e}");
    }
}
