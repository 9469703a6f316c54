//! Atomic structures shared by the QD builder, the phonon half (element and
//! layer of each atom) and the multislice simulation: [`Atoms`], the cubic
//! CsPbBr3 perovskite cell and the quantum-dot cut of [`qd`]
//! (docs/methods/structure.md).
//!
//! Conventions: positions in Å; the perovskite cell is B-site centred
//! (Pb at the origin, Br at ½ along each axis, Cs at (½, ½, ½)); internal
//! "lattice units" `u` are positions divided by the lattice constant `a`.

pub mod qd;

use serde::Serialize;

/// Default cubic lattice constant of CsPbBr3, Å (30 u.c. = 17.61 nm; the
/// STEM value of the study; GEO_OPT relaxes it anyway).
pub const LATTICE_ANGSTROM: f64 = 5.87;

/// The elements the project builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Element {
    /// Caesium (A site).
    Cs,
    /// Lead (B site).
    Pb,
    /// Calcium (B site of the CsCaBr3 shell).
    Ca,
    /// Bromine (X site).
    Br,
}

impl Element {
    /// All elements in the file order of the builder (Cs, Pb, Ca, Br).
    pub const ALL: [Element; 4] = [Element::Cs, Element::Pb, Element::Ca, Element::Br];

    /// Chemical symbol.
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            Element::Cs => "Cs",
            Element::Pb => "Pb",
            Element::Ca => "Ca",
            Element::Br => "Br",
        }
    }

    /// Formal ionic charge (Cs⁺, Pb²⁺, Ca²⁺, Br⁻).
    #[must_use]
    pub fn formal_charge(self) -> i64 {
        match self {
            Element::Cs => 1,
            Element::Pb | Element::Ca => 2,
            Element::Br => -1,
        }
    }

    /// Valence electrons of the GTH-PBE pseudopotential used (q9, q4, q10, q7).
    #[must_use]
    pub fn gth_valence(self) -> i64 {
        match self {
            Element::Cs => 9,
            Element::Pb => 4,
            Element::Ca => 10,
            Element::Br => 7,
        }
    }

    /// Valence electrons in GFN1-xTB (Cs 1, Pb 4, Ca 2, Br 7).
    #[must_use]
    pub fn xtb_valence(self) -> i64 {
        match self {
            Element::Cs => 1,
            Element::Pb => 4,
            Element::Ca => 2,
            Element::Br => 7,
        }
    }

    /// GTH-PBE potential name of CP2K's `GTH_POTENTIALS`.
    #[must_use]
    pub fn gth_potential(self) -> String {
        format!("GTH-PBE-q{}", self.gth_valence())
    }

    /// Atomic mass, amu (IUPAC standard atomic weights; every element the
    /// project builds has one).
    #[must_use]
    pub fn mass_amu(self) -> f64 {
        match self {
            Element::Cs => 132.905452,
            Element::Pb => 207.2,
            Element::Ca => 40.078,
            Element::Br => 79.904,
        }
    }
}

/// A set of atoms with an optional orthorhombic cell (box lengths, Å).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Atoms {
    /// Element of each atom.
    pub species: Vec<Element>,
    /// Positions, Å.
    pub positions: Vec<[f64; 3]>,
    /// Box lengths a, b, c (Å) of a rectangular cell, if any.
    pub cell_angstrom: Option<[f64; 3]>,
}

impl Atoms {
    /// Number of atoms.
    #[must_use]
    pub fn len(&self) -> usize {
        self.species.len()
    }

    /// True when there are no atoms.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.species.is_empty()
    }

    /// Count of one element.
    #[must_use]
    pub fn count(&self, e: Element) -> usize {
        self.species.iter().filter(|&&s| s == e).count()
    }

    /// Smallest interatomic distance (Å) and the pair (brute force over
    /// pairs; the builder's clusters have at most a few thousand atoms).
    #[must_use]
    pub fn min_distance(&self) -> Option<(f64, usize, usize)> {
        let mut best: Option<(f64, usize, usize)> = None;
        for i in 0..self.len() {
            for j in i + 1..self.len() {
                let d = dist(self.positions[i], self.positions[j]);
                if best.is_none_or(|b| d < b.0) {
                    best = Some((d, i, j));
                }
            }
        }
        best
    }
}

/// Euclidean distance of two points.
#[must_use]
pub fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// The cubic CsPbBr3 unit cell (Pm-3m, B-site origin) in lattice units:
/// Pb (0,0,0); Br (½,0,0), (0,½,0), (0,0,½); Cs (½,½,½).
#[must_use]
pub fn perovskite_basis() -> [(Element, [f64; 3]); 5] {
    [
        (Element::Pb, [0.0, 0.0, 0.0]),
        (Element::Br, [0.5, 0.0, 0.0]),
        (Element::Br, [0.0, 0.5, 0.0]),
        (Element::Br, [0.0, 0.0, 0.5]),
        (Element::Cs, [0.5, 0.5, 0.5]),
    ]
}

/// The cubic cell seen along \[001\] as its two atomic planes, in the
/// A-site origin the multislice simulation scans about (Cs column at (0, 0)):
/// [`perovskite_basis`] shifted by (½, ½, ½). Plane 0 at z = 0 holds Cs (0, 0)
/// and Br (½, ½); plane 1 at z = ½ holds Pb (½, ½), Br (0, ½) and Br (½, 0).
/// Sites are fractional (y, x), ordered by element, then y, then x.
#[must_use]
pub fn perovskite_planes_001() -> [Vec<(Element, [f64; 2])>; 2] {
    let mut planes: [Vec<(Element, [f64; 2])>; 2] = [Vec::new(), Vec::new()];
    for (e, u) in perovskite_basis() {
        let [x, y, z] = u.map(|c| (c + 0.5) % 1.0);
        planes[usize::from(z > 0.0)].push((e, [y, x]));
    }
    for plane in &mut planes {
        plane.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1[0].total_cmp(&b.1[0]))
                .then(a.1[1].total_cmp(&b.1[1]))
        });
    }
    planes
}

/// A periodic `nx × ny × nz` CsPbBr3 slab with lattice constant `a` (Å),
/// cell = the slab's box (for the multislice thickness series along \[001\]).
#[must_use]
pub fn perovskite_slab(nx: usize, ny: usize, nz: usize, a: f64) -> Atoms {
    let mut atoms = Atoms {
        cell_angstrom: Some([nx as f64 * a, ny as f64 * a, nz as f64 * a]),
        ..Atoms::default()
    };
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                for (e, u) in perovskite_basis() {
                    atoms.species.push(e);
                    atoms.positions.push([
                        (i as f64 + u[0]) * a,
                        (j as f64 + u[1]) * a,
                        (k as f64 + u[2]) * a,
                    ]);
                }
            }
        }
    }
    atoms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slab_composition_and_spacing() {
        let s = perovskite_slab(2, 3, 4, 5.87);
        assert_eq!(s.len(), 5 * 24);
        assert_eq!(s.count(Element::Br), 3 * s.count(Element::Pb));
        assert_eq!(s.count(Element::Cs), 24);
        let (d, _, _) = s.min_distance().unwrap_or((0.0, 0, 0));
        assert!((d - 5.87 / 2.0).abs() < 1e-12, "{d}");
    }

    #[test]
    fn planes_001_are_the_basis_seen_from_the_a_site() {
        let [p0, p1] = perovskite_planes_001();
        assert_eq!(p0, [(Element::Cs, [0.0, 0.0]), (Element::Br, [0.5, 0.5])]);
        assert_eq!(
            p1,
            [
                (Element::Pb, [0.5, 0.5]),
                (Element::Br, [0.0, 0.5]),
                (Element::Br, [0.5, 0.0]),
            ]
        );
    }

    #[test]
    fn valences_give_neutral_formula_unit() {
        // CsPbBr3 is neutral in formal charges.
        let q: i64 = perovskite_basis()
            .iter()
            .map(|(e, _)| e.formal_charge())
            .sum();
        assert_eq!(q, 0);
        assert_eq!(Element::Cs.gth_potential(), "GTH-PBE-q9");
        assert!((Element::Br.mass_amu() - 79.904).abs() < 1e-9);
    }
}
