//! Combining shards of a series run (the issue's `--shard` / `--merge`): sum the work
//! items of shards run with the same parameters ([`merge`]), check that the
//! set is complete or re-weight a partial one ([`check_complete`]), and
//! re-evaluate a finished run with other settings that act only after the
//! propagation ([`reevaluate`]) — the source size and blur (a Gaussian on
//! the averaged cell image, §5.2) and the energy spread switched off (the
//! in-focus Gauss–Hermite node alone) — so a sensitivity study of those
//! settings needs no new propagation.

use crate::error::{Error, Result};
use crate::multislice::params::SimParams;
use crate::multislice::work::{defocus_nodes, Partial};

/// Check that `part` holds every (configuration, node) work item and return
/// the number of configurations in it. With `allow_partial`, whole
/// configurations may be missing (a sharded run merged before all shards
/// finished): the items present are re-weighted to average over the
/// configurations present.
///
/// # Errors
/// Missing items (without `allow_partial`), a configuration with only some
/// of its defocus nodes, no items.
pub fn check_complete(part: &mut Partial, allow_partial: bool) -> Result<usize> {
    let nodes = part.params.defocus_nodes;
    let phonons = part.params.phonons;
    let configs = part.configurations();
    for &c in &configs {
        let have = part.items.iter().filter(|it| it.config == c).count();
        if have != nodes {
            return Err(Error::param(
                "merge",
                format!("configuration {c} has {have} of its {nodes} defocus nodes (a shard is missing)"),
            ));
        }
    }
    let k = configs.len();
    if k == phonons {
        return Ok(k);
    }
    if k == 0 || !allow_partial {
        return Err(Error::param(
            "merge",
            format!("the shards hold {k} of {phonons} configurations; merge every shard, or pass `allow_partial` to average over the ones present"),
        ));
    }
    let f = phonons as f64 / k as f64;
    for it in &mut part.items {
        it.weight *= f;
        it.sums.iter_mut().flatten().flatten().for_each(|v| *v *= f);
    }
    Ok(k)
}

/// Read the `partial.json` of every shard directory and [`merge`] them.
///
/// # Errors
/// An unreadable or malformed `partial.json` (named), and as [`merge`].
pub fn read_shards<P: AsRef<std::path::Path>>(dirs: &[P]) -> Result<Partial> {
    let mut parts = Vec::new();
    for d in dirs {
        let f = d.as_ref().join("partial.json");
        let text = std::fs::read_to_string(&f).map_err(|e| Error::io(&f, e))?;
        parts.push(
            serde_json::from_str(&text)
                .map_err(|e| Error::format(&f, format!("not a shard file: {e}")))?,
        );
    }
    merge(&parts)
}

/// Sum shards of the same parameters.
///
/// # Errors
/// No parts, different parameters, a work item done twice.
pub fn merge(parts: &[Partial]) -> Result<Partial> {
    let Some(first) = parts.first() else {
        return Err(Error::param("merge", "no shard directories given"));
    };
    let mut out = first.clone();
    for p in &parts[1..] {
        if p.params != first.params {
            return Err(Error::param(
                "merge",
                "shards were run with different parameters",
            ));
        }
        for it in &p.items {
            if out
                .items
                .iter()
                .any(|o| (o.config, o.node) == (it.config, it.node))
            {
                return Err(Error::param(
                    "merge",
                    format!(
                        "work item (configuration {}, node {}) is in two shards",
                        it.config, it.node
                    ),
                ));
            }
            out.items.push(it.clone());
        }
        out.min_intensity = out.min_intensity.min(p.min_intensity);
        out.seconds += p.seconds;
    }
    Ok(out)
}

/// Re-evaluate `part` (merged shards) for the parameters `want` where they
/// differ only in settings that act after the propagation: the source size
/// and the blur are replaced (they are applied to the averaged image), and
/// `want`'s energy spread 0 keeps the in-focus node (z = 0 of an odd
/// Gauss–Hermite rule) with weight 1 — the same intensities a run with
/// `--energy-spread-ev 0 --defocus-nodes 1` computes (its one node has the
/// same defocus), to rounding. Returns what was re-evaluated, for the
/// run's record; empty when nothing differs.
///
/// # Errors
/// Any other parameter differs, or the energy spread is to be switched off
/// in shards whose node rule has no in-focus node (an even count).
pub fn reevaluate(part: &mut Partial, want: &SimParams) -> Result<Vec<String>> {
    let have = part.params.clone();
    let mut p = part.params.clone();
    let mut changed = Vec::new();
    let (src, blur) = (want.microscope.source_size_angstrom, want.blur_angstrom);
    if src != have.microscope.source_size_angstrom {
        changed.push(format!(
            "source size {} -> {src} Å FWHM",
            have.microscope.source_size_angstrom
        ));
        p.microscope.source_size_angstrom = src;
    }
    if blur != have.blur_angstrom {
        changed.push(format!("blur {} -> {blur} Å", have.blur_angstrom));
        p.blur_angstrom = blur;
    }
    if want.microscope.energy_spread_ev == 0.0 && have.microscope.energy_spread_ev != 0.0 {
        let nodes = defocus_nodes(have.defocus_nodes)?;
        let Some((centre, &(_, w))) = nodes.iter().enumerate().find(|(_, n)| n.0 == 0.0) else {
            return Err(Error::param(
                "energy_spread_ev",
                format!(
                    "0 at `merge` needs an in-focus node; the shards' {}-node rule has none",
                    have.defocus_nodes
                ),
            ));
        };
        part.items.retain(|it| it.node == centre);
        for it in &mut part.items {
            it.node = 0;
            it.weight /= w;
            it.sums.iter_mut().flatten().flatten().for_each(|v| *v /= w);
        }
        changed.push(format!(
            "energy spread {} -> 0 eV (in-focus node {centre} of {} alone)",
            have.microscope.energy_spread_ev, have.defocus_nodes
        ));
        p.microscope.energy_spread_ev = 0.0;
        p.defocus_nodes = 1;
    }
    // Without an energy spread every node has the same defocus, so the
    // requested node count does not matter; the shards' random-stream
    // scheme is their provenance, not a setting.
    let want = &SimParams {
        rng_scheme: p.rng_scheme,
        ..want.clone()
    };
    let same = if p.microscope.energy_spread_ev == 0.0 {
        SimParams {
            defocus_nodes: want.defocus_nodes,
            ..p.clone()
        } == *want
    } else {
        p == *want
    };
    if !same {
        return Err(Error::param(
            "merge",
            "the shards were run with other parameters than these flags (only `source_size_angstrom`, `blur_angstrom` and `energy_spread_ev = 0` can change at a merge)",
        ));
    }
    part.params = p;
    Ok(changed)
}
