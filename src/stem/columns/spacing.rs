//! Peak-pair spacings of the classified columns (docs/methods/columns.md).

use super::{positive, Column, ColumnsParams, Spacing};
use crate::error::{Error, Result, Warnings};
use crate::stats::mean_sd;
use crate::stem::lattice::{self, PeakPairs, StrainMode};
use crate::stem::sublattice::{Assignment, Sublattice};

/// Spacings and the per-column local lattice keyed by column id.
pub(super) type SpacingsAndLocal = (Vec<Spacing>, Vec<(usize, lattice::LocalLattice)>);

/// Peak-pair spacings per sublattice and pooled (docs/methods/columns.md).
pub(super) fn spacings(
    what: &str,
    columns: &[Column],
    asg: &Assignment,
    p: &ColumnsParams,
    ps: f64,
    warnings: &mut Warnings,
) -> Result<SpacingsAndLocal> {
    let (a1, a2) = asg.cube_axes();
    let (r1, r2) = match p.reference_lattice_angstrom {
        Some(r) => {
            let r = positive("reference_lattice_angstrom", r)? / ps;
            let (l1, l2) = (a1[0].hypot(a1[1]), a2[0].hypot(a2[1]));
            (
                [a1[0] / l1 * r, a1[1] / l1 * r],
                [a2[0] / l2 * r, a2[1] / l2 * r],
            )
        }
        None => (a1, a2),
    };
    let mut spacing = Vec::new();
    let mut local = Vec::new();
    let mut pooled: Vec<PeakPairs> = Vec::new();
    for s in [Sublattice::Cs, Sublattice::PbBr] {
        let ids: Vec<usize> = columns
            .iter()
            .filter(|c| c.sublattice == s && c.fit.converged())
            .map(|c| c.id)
            .collect();
        let pts: Vec<[f64; 2]> = ids
            .iter()
            .map(|&i| [columns[i].fit.params.x0, columns[i].fit.params.y0])
            .collect();
        match lattice::peak_pairs(&pts, r1, r2, StrainMode::Small) {
            Ok(pp) => {
                spacing.push(to_spacing(s.name(), &pp, ps));
                local.extend(pp.local.iter().map(|l| (ids[l.column], *l)));
                pooled.push(pp);
            }
            Err(e) => warnings.push(format!("peak pairs ({}): {e}", s.name())),
        }
    }
    if pooled.is_empty() {
        return Err(Error::Numerical {
            what: what.to_string(),
            reason: "peak-pair analysis found no pairs in either sublattice".into(),
        });
    }
    let all: Vec<f64> = local
        .iter()
        .flat_map(|(_, l)| [l.a1, l.a2])
        .flatten()
        .map(|v| v[0].hypot(v[1]) * ps)
        .collect();
    let n = pooled.iter().map(|p| p.n_pairs).sum();
    let tot: f64 = pooled.iter().map(|p| p.n_pairs as f64).sum();
    // The pair-weighted mean of the sublattices' strains (none when a
    // sublattice has none); −0.0 is where `f64`'s `Sum` starts.
    let mean_strain = pooled.iter().try_fold([-0.0; 4], |mut acc, p| {
        let e = p.mean_strain?;
        for (a, v) in acc.iter_mut().zip(e) {
            *a += v * p.n_pairs as f64 / tot;
        }
        Some(acc)
    });
    spacing.push(Spacing {
        sublattice: "pooled",
        a1_angstrom: [None; 2],
        a2_angstrom: [None; 2],
        spacing_angstrom: mean_sd(&all).map_or([None, None], |(m, s)| [Some(m), s]),
        mean_strain,
        n_pairs: n,
    });
    Ok((spacing, local))
}

fn to_spacing(name: &'static str, pp: &PeakPairs, ps: f64) -> Spacing {
    let to_a = |v: [Option<f64>; 2]| v.map(|x| x.map(|x| x * ps));
    Spacing {
        sublattice: name,
        a1_angstrom: to_a(pp.a1_mean_sd_px),
        a2_angstrom: to_a(pp.a2_mean_sd_px),
        spacing_angstrom: to_a(pp.spacing_mean_sd_px),
        mean_strain: pp.mean_strain,
        n_pairs: pp.n_pairs,
    }
}
