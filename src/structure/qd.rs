//! The n×n×n CsPbBr3 quantum dot of the study, cut the way the study cut it
//! (docs/methods/structure.md): n PbBr6 octahedra per edge, CsBr
//! terminated, the 8 corner Cs removed, optionally a CsCaBr3 shell of M
//! u.c. (B-site swap), atoms sorted by layer so frozen shells and cores are
//! contiguous index ranges.
//!
//! **Charge.** The cut's formal ionic charge is q = N_Cs + 2N_Pb + 2N_Ca −
//! N_Br = 3n − 7 (the SI's N_Cs + 2N_Pb − N_Br + N_ch = 0 with N_ch = −q).
//! The study's wording "add electrons" reads as CP2K `CHARGE = −q`; we set
//! `CHARGE = +q` (remove q electrons from the neutral-atom count) because
//! only that leaves the closed-shell ionic count N_el = 8N_Cs + 2N_Pb +
//! 8N_Ca + 8N_Br (GTH) — Cs⁺ 5s²5p⁶, Pb²⁺ 6s², Ca²⁺ 3s²3p⁶, Br⁻ 4s²4p⁶ — with
//! the HOMO at the valence-band maximum. Any other charge puts |q| or 2|q|
//! carriers in a band, the "gap" collapses and the SCF needs smearing (seen
//! in the test runs of docs/methods/structure.md). A `--charge` override is honoured with a warning.
//!
//! Internally every coordinate is kept in integer half lattice units
//! (`h = 2u`), so layers, symmetry and the surface-Cs selection are exact.

use std::ops::Range;

use serde::Serialize;

use crate::error::{Error, Result, Warnings};
use crate::structure::{Atoms, Element, LATTICE_ANGSTROM};

/// How the surplus formal charge q = 3n − 7 is balanced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// Keep the cut; CP2K `CHARGE = +q` (closed-shell ionic electron count).
    Electrons,
    /// Remove q surface Cs (farthest-point rule, docs/methods/structure.md); CHARGE 0.
    RemoveCs,
}

/// What to build.
#[derive(Debug, Clone, PartialEq)]
pub struct QdParams {
    /// Octahedra per edge (≥ 2).
    pub n: usize,
    /// CsCaBr3 shell thickness M in u.c. (0 = pure CsPbBr3); n − 2M ≥ 1.
    pub shell_uc: usize,
    /// Charge balance.
    pub balance: Balance,
    /// Lattice constant, Å.
    pub lattice_angstrom: f64,
    /// Cubic cell edge, nm (default: the table / rule of docs/methods/structure.md).
    pub cell_nm: Option<f64>,
    /// Explicit 1-based atom indices (in the `electrons` build) of the
    /// surface Cs to remove, replacing the farthest-point rule.
    pub remove_cs_list: Option<Vec<usize>>,
}

impl QdParams {
    /// Defaults for an n-cube: pure, `electrons`, a = 5.87 Å.
    #[must_use]
    pub fn cube(n: usize) -> Self {
        QdParams {
            n,
            shell_uc: 0,
            balance: Balance::Electrons,
            lattice_angstrom: LATTICE_ANGSTROM,
            cell_nm: None,
            remove_cs_list: None,
        }
    }
}

/// A built quantum dot.
#[derive(Debug, Clone)]
pub struct Qd {
    /// What was asked for.
    pub params: QdParams,
    /// Species, positions (Å, centred in the cell) and the cubic cell.
    pub atoms: Atoms,
    /// Depth of every atom below the outer CsBr plane, u.c. (0, 0.5, 1, …).
    pub depth_uc: Vec<f64>,
    /// Positions in lattice units, Pb at integer coordinates 0..n−1.
    pub lattice_units: Vec<[f64; 3]>,
    /// The surface Cs removed by `remove-cs`, lattice units.
    pub removed_cs: Vec<[f64; 3]>,
    /// Cubic cell edge, nm.
    pub cell_nm: f64,
    /// Remarks (cell smaller than the Poisson solver wants, …).
    pub warnings: Warnings,
}

/// Cell edge (nm) the study used: the SI's 5.0, 6.0, 7.0, 7.5 nm for n = 3..6;
/// otherwise the smallest multiple of 0.5 nm ≥ max(2·extent, extent + 2.5 nm).
#[must_use]
pub fn default_cell_nm(n: usize, lattice_angstrom: f64) -> f64 {
    match n {
        3 => 5.0,
        4 => 6.0,
        5 => 7.0,
        6 => 7.5,
        _ => {
            let ext = n as f64 * lattice_angstrom / 10.0;
            let need = (2.0 * ext).max(ext + 2.5);
            (need * 2.0 - 1e-9).ceil() / 2.0
        }
    }
}

/// Half-unit atom: element, (hx, hy, hz) = 2u, depth 2d.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Site {
    e: Element,
    h: [i64; 3],
    d2: i64,
}

fn depth2(h: [i64; 3], n: i64) -> i64 {
    n - h.iter().map(|&x| (x - (n - 1)).abs()).max().unwrap_or(0)
}

/// The sites of the cut, sorted by (depth, element Cs Pb Ca Br, z, y, x).
fn cut(n: i64, shell: i64) -> Vec<Site> {
    let mut sites = Vec::new();
    let mut push = |e: Element, h: [i64; 3]| {
        let d2 = depth2(h, n);
        sites.push(Site { e, h, d2 });
    };
    for k in 0..n {
        for j in 0..n {
            for i in 0..n {
                let h = [2 * i, 2 * j, 2 * k];
                // B site: Ca where the depth d < M + ½ (2d < 2M + 1).
                let e = if depth2(h, n) < 2 * shell + 1 {
                    Element::Ca
                } else {
                    Element::Pb
                };
                push(e, h);
            }
        }
    }
    // Br at Pb ± ½ along each axis, each once: odd along exactly one axis.
    for k in -1..2 * n {
        for j in -1..2 * n {
            for i in -1..2 * n {
                let h = [i, j, k];
                let odd = h.iter().filter(|x| x.rem_euclid(2) == 1).count();
                let even_in = h
                    .iter()
                    .all(|&x| x.rem_euclid(2) == 1 || (0..2 * n).contains(&x));
                let odd_in = h
                    .iter()
                    .all(|&x| x.rem_euclid(2) == 0 || (-1..2 * n).contains(&x));
                if odd == 1 && even_in && odd_in {
                    push(Element::Br, h);
                }
            }
        }
    }
    // Cs at (i−½, j−½, k−½), i, j, k ∈ 0..n, minus the 8 corners.
    for k in 0..=n {
        for j in 0..=n {
            for i in 0..=n {
                let h = [2 * i - 1, 2 * j - 1, 2 * k - 1];
                if h.iter().all(|&x| (x - (n - 1)).abs() == n) {
                    continue;
                }
                push(Element::Cs, h);
            }
        }
    }
    sites.sort_by_key(|s| (s.d2, s.e, s.h[2], s.h[1], s.h[0]));
    sites
}

/// The deterministic choice (docs/methods/structure.md) of `count` face-interior surface Cs:
/// seed nearest the +z face centre, then farthest-point sampling with ties
/// broken by smaller x, then y, then z. Returns indices into `sites`.
fn farthest_surface_cs(sites: &[Site], n: i64, count: usize) -> Vec<usize> {
    let c = n - 1;
    let cand: Vec<usize> = (0..sites.len())
        .filter(|&i| {
            let s = &sites[i];
            s.e == Element::Cs && s.h.iter().filter(|&&x| (x - c).abs() == n).count() == 1
        })
        .collect();
    let key = |i: usize| (sites[i].h[0], sites[i].h[1], sites[i].h[2]);
    let seed = cand
        .iter()
        .copied()
        .filter(|&i| sites[i].h[2] - c == n)
        .min_by_key(|&i| {
            let h = sites[i].h;
            ((h[0] - c).pow(2) + (h[1] - c).pow(2), key(i))
        });
    let Some(seed) = seed else {
        return Vec::new();
    };
    let d2 = |a: usize, b: usize| -> i64 {
        (0..3).map(|k| (sites[a].h[k] - sites[b].h[k]).pow(2)).sum()
    };
    let mut chosen = vec![seed];
    while chosen.len() < count.min(cand.len()) {
        let next = cand
            .iter()
            .copied()
            .filter(|i| !chosen.contains(i))
            .map(|i| (chosen.iter().map(|&j| d2(i, j)).min().unwrap_or(0), i))
            // Largest min-distance; among equals the smallest (x, y, z).
            .max_by(|a, b| a.0.cmp(&b.0).then(key(b.1).cmp(&key(a.1))));
        match next {
            Some((_, i)) => chosen.push(i),
            None => break,
        }
    }
    chosen
}

/// Build the quantum dot.
///
/// # Errors
/// `n < 2`, a shell leaving no core (n − 2M < 1), a lattice constant or cell
/// that is not a positive finite number, `remove-cs` with q ≤ 0, or a
/// `remove_cs_list` entry that is not a surface Cs of the `electrons` build.
pub fn build(p: &QdParams) -> Result<Qd> {
    if p.n < 2 {
        return Err(Error::param(
            "n",
            format!("must be ≥ 2 octahedra per edge, got {}", p.n),
        ));
    }
    if p.n > 40 {
        return Err(Error::param(
            "n",
            format!("{} is beyond any DFT model (max 40)", p.n),
        ));
    }
    if p.n < 2 * p.shell_uc + 1 {
        return Err(Error::param(
            "shell_uc",
            format!(
                "a {} u.c. shell leaves no core in a {}-u.c. dot (need n − 2M ≥ 1)",
                p.shell_uc, p.n
            ),
        ));
    }
    let a = p.lattice_angstrom;
    if !(a.is_finite() && a > 0.0) {
        return Err(Error::param(
            "lattice_angstrom",
            format!("must be a positive number, got {a}"),
        ));
    }
    let n = p.n as i64;
    let mut sites = cut(n, p.shell_uc as i64);
    let q = formal_charge(sites.iter().map(|s| s.e));
    let mut removed_cs = Vec::new();
    if p.balance == Balance::RemoveCs || p.remove_cs_list.is_some() {
        let drop: Vec<usize> = match &p.remove_cs_list {
            Some(list) => {
                let mut v = Vec::with_capacity(list.len());
                for &i in list {
                    let ok = i >= 1 && i <= sites.len() && {
                        let s = &sites[i - 1];
                        s.e == Element::Cs && s.d2 == 0
                    };
                    if !ok {
                        return Err(Error::param(
                            "remove_cs_list",
                            format!("atom {i} is not a surface Cs of the {}-u.c. dot", p.n),
                        ));
                    }
                    v.push(i - 1);
                }
                v
            }
            None => {
                if q <= 0 {
                    return Err(Error::param(
                        "balance",
                        format!(
                            "remove-cs needs a positive surplus charge; the {}-u.c. dot has q = {q}",
                            p.n
                        ),
                    ));
                }
                farthest_surface_cs(&sites, n, q as usize)
            }
        };
        removed_cs = drop
            .iter()
            .map(|&i| sites[i].h.map(|x| x as f64 / 2.0))
            .collect();
        let mut keep = vec![true; sites.len()];
        for &i in &drop {
            keep[i] = false;
        }
        let mut it = keep.iter();
        sites.retain(|_| *it.next().unwrap_or(&true));
    }
    let cell_nm = p.cell_nm.unwrap_or_else(|| default_cell_nm(p.n, a));
    if !(cell_nm.is_finite() && cell_nm > 0.0) {
        return Err(Error::param(
            "cell_nm",
            format!("must be a positive number, got {cell_nm}"),
        ));
    }
    let mut warnings = Warnings::default();
    let extent = p.n as f64 * a;
    let l = cell_nm * 10.0;
    if l < 2.0 * extent {
        warnings.push(format!(
            "cell {cell_nm} nm is smaller than twice the dot's extent ({:.2} nm): the Martyna–Tuckerman Poisson solver wants L ≥ 2 × extent (use WAVELET or a larger `cell_nm`)",
            2.0 * extent / 10.0
        ));
    }
    let centre = (p.n as f64 - 1.0) / 2.0;
    let lattice_units: Vec<[f64; 3]> = sites.iter().map(|s| s.h.map(|x| x as f64 / 2.0)).collect();
    let atoms = Atoms {
        species: sites.iter().map(|s| s.e).collect(),
        positions: lattice_units
            .iter()
            .map(|u| u.map(|x| (x - centre) * a + l / 2.0))
            .collect(),
        cell_angstrom: Some([l; 3]),
    };
    Ok(Qd {
        params: p.clone(),
        atoms,
        depth_uc: sites.iter().map(|s| s.d2 as f64 / 2.0).collect(),
        lattice_units,
        removed_cs,
        cell_nm,
        warnings,
    })
}

fn formal_charge(species: impl Iterator<Item = Element>) -> i64 {
    species.map(Element::formal_charge).sum()
}

/// Electron bookkeeping for one Hamiltonian (GTH pseudopotentials or GFN1-xTB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Electrons {
    /// Σ Z_val − CHARGE.
    pub count: i64,
    /// 1-based index of the highest occupied orbital (closed shell: count/2).
    pub homo_index: i64,
    /// The closed-shell ionic count (all ions in their noble-gas/6s² shells).
    pub ionic_count: i64,
}

/// Frozen atoms of a run: a contiguous 0-based index range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frozen {
    /// `shell` (depth < thickness) or `core` (depth ≥ thickness).
    pub kind: &'static str,
    /// Thickness (shell) or free-shell thickness (core), u.c.
    pub thickness_uc: f64,
    /// First frozen atom, 1-based (CP2K `LIST a..b`).
    pub first: usize,
    /// Last frozen atom, 1-based, inclusive.
    pub last: usize,
    /// Frozen atoms.
    pub frozen: usize,
    /// Free atoms.
    pub free: usize,
}

impl Frozen {
    /// 0-based range of the frozen atoms.
    #[must_use]
    pub fn range(&self) -> Range<usize> {
        self.first - 1..self.last
    }
}

impl Qd {
    /// Formal ionic charge q of the built dot (0 after `remove-cs`).
    #[must_use]
    pub fn formal_charge(&self) -> i64 {
        formal_charge(self.atoms.species.iter().copied())
    }

    /// The CP2K model name (`qd_n5`, `qd_n6_s1`, `qd_n5_neutral`).
    #[must_use]
    pub fn model_name(&self) -> String {
        let mut s = format!("qd_n{}", self.params.n);
        if self.params.shell_uc > 0 {
            s.push_str(&format!("_s{}", self.params.shell_uc));
        }
        if !self.removed_cs.is_empty() {
            s.push_str("_neutral");
        }
        s
    }

    /// Electron count, HOMO index and the closed-shell ionic count for the
    /// CP2K `CHARGE` given, with GTH (`xtb = false`) or GFN1-xTB valences.
    #[must_use]
    pub fn electrons(&self, cp2k_charge: i64, xtb: bool) -> Electrons {
        let val = |e: Element| {
            if xtb {
                e.xtb_valence()
            } else {
                e.gth_valence()
            }
        };
        let total: i64 = self.atoms.species.iter().map(|&e| val(e)).sum();
        let count = total - cp2k_charge;
        // Electrons left on each ion: valence − formal charge.
        let ionic_count: i64 = self
            .atoms
            .species
            .iter()
            .map(|&e| val(e) - e.formal_charge())
            .sum();
        Electrons {
            count,
            homo_index: (count + 1).div_euclid(2),
            ionic_count,
        }
    }

    /// Atoms with depth < `s` u.c. (a frozen shell): indices 1..N.
    ///
    /// # Errors
    /// `s` not a positive multiple of ½, or a shell that freezes every atom.
    pub fn frozen_shell(&self, s: f64) -> Result<Frozen> {
        let k = self.check_thickness("frozen_shell_uc", s)?;
        if k == 0 || k == self.atoms.len() {
            return Err(Error::param(
                "frozen_shell_uc",
                format!("{s} u.c. freezes {k} of {} atoms", self.atoms.len()),
            ));
        }
        Ok(Frozen {
            kind: "shell",
            thickness_uc: s,
            first: 1,
            last: k,
            frozen: k,
            free: self.atoms.len() - k,
        })
    }

    /// Atoms with depth ≥ `s` u.c. (a frozen core below a free shell of `s`).
    ///
    /// # Errors
    /// As [`Qd::frozen_shell`].
    pub fn frozen_core(&self, s: f64) -> Result<Frozen> {
        let k = self.check_thickness("frozen_core_uc", s)?;
        let n = self.atoms.len();
        if k == 0 || k == n {
            return Err(Error::param(
                "frozen_core_uc",
                format!("a {s} u.c. free shell leaves {} frozen of {n} atoms", n - k),
            ));
        }
        Ok(Frozen {
            kind: "core",
            thickness_uc: s,
            first: k + 1,
            last: n,
            frozen: n - k,
            free: k,
        })
    }

    /// Number of leading atoms with depth < s (atoms are sorted by depth).
    fn check_thickness(&self, flag: &str, s: f64) -> Result<usize> {
        if !(s.is_finite() && s > 0.0 && (s * 2.0 - (s * 2.0).round()).abs() < 1e-9) {
            return Err(Error::param(
                flag,
                format!("must be a positive multiple of 0.5 u.c., got {s}"),
            ));
        }
        Ok(self.depth_uc.iter().take_while(|&&d| d < s - 1e-9).count())
    }

    /// Atom counts per (depth, element), depth ascending.
    #[must_use]
    pub fn layer_counts(&self) -> Vec<(f64, Element, usize)> {
        let mut out: Vec<(f64, Element, usize)> = Vec::new();
        for (&d, &e) in self.depth_uc.iter().zip(&self.atoms.species) {
            match out.iter_mut().find(|r| r.0 == d && r.1 == e) {
                Some(r) => r.2 += 1,
                None => out.push((d, e, 1)),
            }
        }
        out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        out
    }

    /// Formula in file order, e.g. `Cs335Pb64Ca152Br756`.
    #[must_use]
    pub fn formula(&self) -> String {
        Element::ALL
            .iter()
            .filter_map(|&e| {
                let c = self.atoms.count(e);
                (c > 0).then(|| format!("{}{c}", e.symbol()))
            })
            .collect()
    }
}
