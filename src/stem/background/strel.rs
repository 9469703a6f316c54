//! Flat disk structuring elements with MATLAB `strel('disk', R, n)` parity
//! (docs/methods/background.md): the radial decomposition of Adams (1993) into periodic
//! lines, plus the horizontal/vertical correction lines MATLAB adds.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the disk is built (MATLAB's `n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Decomposition {
    /// n = 0: the exact Euclidean disk `dx² + dy² ≤ R²` (also scikit-image's `disk(R)`).
    Exact,
    /// n = 4 (MATLAB default): an octagon of (2R−1)² extent for R ≥ 3.
    #[default]
    N4,
    /// n = 6.
    N6,
    /// n = 8.
    N8,
}

/// One line of a decomposition: `L(p, v) = {t·v : t = −p…p}`, `v = (dy, dx)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// Half-count p: the line has 2p+1 points.
    pub p: usize,
    /// Step (row, column).
    pub v: (i64, i64),
}

/// A flat, symmetric structuring element: its full offset set and the
/// sequence of lines whose Minkowski sum it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Footprint {
    radius: usize,
    decomposition: Decomposition,
    /// Offsets of the exact disk (empty for decomposed elements).
    offsets: Vec<(i64, i64)>,
    lines: Vec<Line>,
    periodic: Vec<usize>,
    correction: Option<usize>,
    extent: (usize, usize),
}

impl Footprint {
    /// MATLAB `strel('disk', R, n)`, by the algorithm of docs/methods/background.md (not a
    /// closed form). R < 3 forces n = 0 as MATLAB does.
    ///
    /// # Errors
    /// `Error::InvalidParameter` for R = 0.
    pub fn disk(radius_px: usize, decomposition: Decomposition) -> Result<Footprint> {
        if radius_px == 0 {
            return Err(Error::param("background radius", "must be at least 1 px"));
        }
        let r = radius_px as i64;
        let n = match decomposition {
            _ if radius_px < 3 => 0,
            Decomposition::Exact => 0,
            Decomposition::N4 => 4,
            Decomposition::N6 => 6,
            Decomposition::N8 => 8,
        };
        if n == 0 {
            let mut offsets = Vec::new();
            for dy in -r..=r {
                for dx in -r..=r {
                    if dx * dx + dy * dy <= r * r {
                        offsets.push((dy, dx));
                    }
                }
            }
            return Ok(Footprint {
                radius: radius_px,
                decomposition: Decomposition::Exact,
                offsets,
                lines: Vec::new(),
                periodic: Vec::new(),
                correction: None,
                extent: (radius_px, radius_px),
            });
        }
        let vectors: &[(i64, i64)] = match n {
            4 => &[(1, 0), (1, 1), (0, 1), (-1, 1)],
            6 => &[(1, 0), (1, 2), (2, 1), (0, 1), (-1, 2), (-2, 1)],
            _ => &[
                (1, 0),
                (2, 1),
                (1, 1),
                (1, 2),
                (0, 1),
                (-1, 2),
                (-1, 1),
                (-2, 1),
            ],
        };
        let theta = std::f64::consts::PI / (2.0 * n as f64);
        let k = 2.0 * radius_px as f64 / (1.0 / theta.tan() + 1.0 / theta.sin());
        let mut lines = Vec::new();
        let mut periodic = Vec::new();
        for &v in vectors {
            let len = ((v.0 * v.0 + v.1 * v.1) as f64).sqrt();
            let p = (k / len).floor() as usize;
            periodic.push(p);
            if p > 0 {
                lines.push(Line { p, v });
            }
        }
        // The extent of a Minkowski sum of symmetric lines is the sum of
        // their extents.
        let e: i64 = lines.iter().map(|l| l.p as i64 * l.v.0.abs()).sum();
        let d = r - e;
        let len = 2 * (d - 1) + 1;
        let correction = if len >= 3 {
            let h = ((len - 1) / 2) as usize;
            lines.push(Line { p: h, v: (0, 1) });
            lines.push(Line { p: h, v: (1, 0) });
            Some(len as usize)
        } else {
            None
        };
        // Collinear lines add up: L(p₁, v) ⊕ L(p₂, v) = L(p₁ + p₂, v). Merging
        // them (e.g. the H/V correction into the (0,1)/(1,0) periodic lines)
        // leaves the element unchanged and saves passes.
        let mut merged: Vec<Line> = Vec::new();
        for l in lines {
            match merged.iter_mut().find(|m| m.v == l.v) {
                Some(m) => m.p += l.p,
                None => merged.push(l),
            }
        }
        let lines = merged;
        let ey = lines
            .iter()
            .map(|l| l.p * l.v.0.unsigned_abs() as usize)
            .sum();
        let ex = lines
            .iter()
            .map(|l| l.p * l.v.1.unsigned_abs() as usize)
            .sum();
        Ok(Footprint {
            radius: radius_px,
            decomposition,
            offsets: Vec::new(),
            lines,
            periodic,
            correction,
            extent: (ey, ex),
        })
    }

    /// Every offset `(dy, dx)` of the element, sorted (computed on demand
    /// for decomposed elements: the filters never need it).
    #[must_use]
    pub fn offsets(&self) -> Vec<(i64, i64)> {
        if self.lines.is_empty() {
            self.offsets.clone()
        } else {
            minkowski(&self.lines)
        }
    }
    /// `(rows, cols)` of the bounding box.
    #[must_use]
    pub fn size(&self) -> (usize, usize) {
        (2 * self.extent.0 + 1, 2 * self.extent.1 + 1)
    }
    /// Number of members.
    #[must_use]
    pub fn len(&self) -> usize {
        self.offsets().len()
    }
    /// Always false (a disk has at least one member).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }
    /// The p_v of each decomposition vector (empty for the exact disk).
    #[must_use]
    pub fn periodic_counts(&self) -> Vec<usize> {
        self.periodic.clone()
    }
    /// Length of the H/V correction lines, if MATLAB adds them.
    #[must_use]
    pub fn correction_len(&self) -> Option<usize> {
        self.correction
    }
    /// The line sequence (empty for the exact disk).
    #[must_use]
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }
    /// Half-extent `(rows, cols)`.
    #[must_use]
    pub fn extent(&self) -> (usize, usize) {
        self.extent
    }
    /// Radius in px it was built for.
    #[must_use]
    pub fn radius(&self) -> usize {
        self.radius
    }
    /// The decomposition actually used (`Exact` for R < 3).
    #[must_use]
    pub fn decomposition(&self) -> Decomposition {
        if self.lines.is_empty() {
            Decomposition::Exact
        } else {
            self.decomposition
        }
    }
    /// For the exact disk: half-width of the chord at each row offset −R…R.
    pub(crate) fn chords(&self) -> Vec<(i64, usize)> {
        let r = self.radius as i64;
        (-r..=r)
            .map(|dy| (dy, ((r * r - dy * dy) as f64).sqrt().floor() as usize))
            .collect()
    }
}

/// Minkowski sum of lines (each containing the origin), as a sorted list
/// of offsets. Computed on a dense bitmap of the summed extent: one shifted
/// OR per line point, O(extent² · Σ(2p+1)) — about 1 ms for R = 50.
fn minkowski(lines: &[Line]) -> Vec<(i64, i64)> {
    let ey: i64 = lines.iter().map(|l| l.p as i64 * l.v.0.abs()).sum();
    let ex: i64 = lines.iter().map(|l| l.p as i64 * l.v.1.abs()).sum();
    let (h, w) = ((2 * ey + 1) as usize, (2 * ex + 1) as usize);
    let mut cur = vec![false; h * w];
    cur[(ey as usize) * w + ex as usize] = true;
    let mut next = vec![false; h * w];
    for l in lines {
        next.iter_mut().for_each(|v| *v = false);
        for t in -(l.p as i64)..=(l.p as i64) {
            let (dy, dx) = (t * l.v.0, t * l.v.1);
            for y in 0..h as i64 {
                let yy = y + dy;
                if yy < 0 || yy >= h as i64 {
                    continue;
                }
                for x in 0..w as i64 {
                    let xx = x + dx;
                    if xx >= 0 && xx < w as i64 && cur[y as usize * w + x as usize] {
                        next[yy as usize * w + xx as usize] = true;
                    }
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
    }
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            if cur[y * w + x] {
                out.push((y as i64 - ey, x as i64 - ex));
            }
        }
    }
    out
}
