//! Synthetic trajectories and gap series with known answers, for the demo
//! and the tests: a cubic cluster of Cs/Pb/Br atoms on a simple-cubic grid
//! (a/2 spacing), each Cartesian component an independent harmonic
//! oscillator at an element-specific on-bin frequency with equipartition
//! amplitude at T, and a gap series that is a sum of on-bin modes with
//! chosen Huang–Rhys factors (SI eq. 4). Written in CP2K's formats
//! (`-pos-1.xyz` in Å, `-vel-1.xyz` in bohr/a.u.t, two-column gap in eV).

use std::fmt::Write as _;
use std::path::Path;

use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::error::Result;
use crate::io::write_text;
use crate::phonon::rigid::mass_amu;
use crate::structure::LATTICE_ANGSTROM;
use crate::units::{kt_mev, AMU_A2_PER_FS2_EV, AU_VELOCITY_ANGSTROM_PER_FS, H_EV_FS, KB_EV_PER_K};

/// Frames, step and temperature of a synthetic run.
#[derive(Debug, Clone, Copy)]
pub struct Grid {
    /// Frames N.
    pub frames: usize,
    /// Step Δt, fs.
    pub dt_fs: f64,
    /// Temperature, K.
    pub temperature_k: f64,
}

/// The grid of the test cases in docs/methods/phonon.md: N = 1000, Δt = 10 fs, T = 10 K.
pub const SPEC_GRID: Grid = Grid {
    frames: 1000,
    dt_fs: 10.0,
    temperature_k: 10.0,
};

/// [`gap_modes`] on [`SPEC_GRID`] with E₀ = 2400 meV (the test series of docs/methods/phonon.md).
#[cfg(test)]
pub(crate) fn spec_modes(list: &[(f64, f64, f64)]) -> Vec<f64> {
    gap_modes(&SPEC_GRID, 2400.0, list)
}

/// Energy of on-bin mode `k`, meV.
#[must_use]
pub fn mode_energy_mev(g: &Grid, k: f64) -> f64 {
    H_EV_FS * 1e3 * k / (g.frames as f64 * g.dt_fs)
}

/// A gap series (meV) E₀ + Σ √(4 S ħω k_BT) cos(ωt + φ) (SI eq. 4) for
/// modes (k, S, φ), k the (possibly fractional) bin index on the grid.
#[must_use]
pub fn gap_modes(g: &Grid, e0_mev: f64, modes: &[(f64, f64, f64)]) -> Vec<f64> {
    let kt = kt_mev(g.temperature_k);
    let t_tot = g.frames as f64 * g.dt_fs;
    (0..g.frames)
        .map(|i| {
            let t = i as f64 * g.dt_fs;
            e0_mev
                + modes
                    .iter()
                    .map(|&(k, s, ph)| {
                        let e = mode_energy_mev(g, k);
                        (4.0 * s * e * kt).sqrt()
                            * (std::f64::consts::TAU * k * t / t_tot + ph).cos()
                    })
                    .sum::<f64>()
        })
        .collect()
}

/// [`gap_modes`] for modes (k, S) with seeded random phases.
#[must_use]
pub fn gap_series(g: &Grid, e0_mev: f64, modes: &[(f64, f64)], seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let with_phases: Vec<(f64, f64, f64)> = modes
        .iter()
        .map(|&(k, s)| (k, s, rng.gen_range(0.0..std::f64::consts::TAU)))
        .collect();
    gap_modes(g, e0_mev, &with_phases)
}

/// Write a gap series as `time_fs gap_eV`.
///
/// # Errors
/// I/O errors.
pub fn write_gap(path: &Path, g: &Grid, gap_mev: &[f64]) -> Result<()> {
    let mut s = String::from("# time_fs gap_eV (synthetic, qdscope demo)\n");
    for (i, v) in gap_mev.iter().enumerate() {
        let _ = writeln!(s, "{:.3} {:.9}", i as f64 * g.dt_fs, v / 1e3);
    }
    write_text(path, &s)
}

/// Write a cluster of `n³` atoms (Cs/Pb/Br by site parity) oscillating
/// independently: element modes `k_of(element)` on the grid. Returns the
/// species.
///
/// # Errors
/// I/O errors.
pub fn write_cluster(
    dir: &Path,
    project: &str,
    n: usize,
    g: &Grid,
    k_of: &dyn Fn(&str) -> f64,
    seed: u64,
) -> Result<Vec<String>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let half = LATTICE_ANGSTROM / 2.0;
    let mut sites = Vec::new();
    for i in 0..n {
        for j in 0..n {
            for k in 0..n {
                let el = match (i + j + k) % 3 {
                    0 => "Cs",
                    1 => "Pb",
                    _ => "Br",
                };
                sites.push((el, [i as f64 * half, j as f64 * half, k as f64 * half]));
            }
        }
    }
    let kt_ev = KB_EV_PER_K * g.temperature_k;
    let osc: Vec<[(f64, f64, f64); 3]> = sites
        .iter()
        .map(|(el, _)| {
            let m = mass_amu(el).unwrap_or(100.0);
            let w = std::f64::consts::TAU * k_of(el) / (g.frames as f64 * g.dt_fs);
            let a = (2.0 * kt_ev / (m * w * w * AMU_A2_PER_FS2_EV)).sqrt();
            [0, 1, 2].map(|_| (a, w, rng.gen_range(0.0..std::f64::consts::TAU)))
        })
        .collect();
    let (mut p, mut v) = (String::new(), String::new());
    for f in 0..g.frames {
        let t = f as f64 * g.dt_fs;
        let head = format!(
            "{:8}\n i = {:8}, time = {:12.3}, E = {:20.10}\n",
            sites.len(),
            f,
            t,
            -1.0
        );
        p.push_str(&head);
        v.push_str(&head);
        for ((el, r), o) in sites.iter().zip(&osc) {
            let _ = write!(p, "{el:>3}");
            let _ = write!(v, "{el:>3}");
            for (c, (a, w, ph)) in o.iter().enumerate() {
                let _ = write!(p, " {:19.10}", r[c] + a * (w * t + ph).cos());
                let _ = write!(
                    v,
                    " {:19.10e}",
                    -a * w * (w * t + ph).sin() / AU_VELOCITY_ANGSTROM_PER_FS
                );
            }
            p.push('\n');
            v.push('\n');
        }
    }
    write_text(&dir.join(format!("{project}-pos-1.xyz")), &p)?;
    write_text(&dir.join(format!("{project}-vel-1.xyz")), &v)?;
    Ok(sites.iter().map(|(e, _)| (*e).to_string()).collect())
}
