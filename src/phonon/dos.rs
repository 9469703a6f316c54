//! Phonon density of states (SI eq. 1; docs/methods/phonon.md), streamed.
//!
//! Classical VDOS in modes per bin from velocities (default):
//! `g_k = Σ_i Σ_α m_i P_k{v_iα} · 103.6427 / (k_B T [eV])`, so that
//! Σ_k g_k = Σ m var(v)/k_BT → 3N − 6 after rigid-body projection
//! (equipartition). Positions route: `m_i ω_k² P_k{r_iα}` with a Hann
//! window (end-point leakage × ω² would otherwise give a flat floor).
//! Partials per element sum to the total bin by bin. The eq.-1 spectrum is
//! `g_k · Q(x_k)`, `Q(x) = x/(1 − e^{−x})`, x = ħω/k_BT (Stokes-side
//! quantum correction, not area-preserving; written as its own column).
//!
//! Welch: the series are cut into consecutive segments of `segment_frames`
//! (no overlap), each transformed and accumulated, then averaged — memory is
//! atoms × 3 × segment, whatever the number of steps. Per-atom spectra are
//! summed in atom order, so the result does not depend on the thread count.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::fft::{power_per_bin, Detrend, Window};
use crate::phonon::trajectory::{self, Info, RigidMode, Source};
use crate::units::{kt_mev, AMU_A2_PER_FS2_EV, H_EV_FS, KB_EV_PER_K};

/// Which series feed the spectrum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Velocities (default, needs a velocity file).
    Velocities,
    /// Positions × ω² (fallback; Hann window by default).
    Positions,
}

/// Parameters of [`vdos`], checked by [`DosParams::validate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DosParams {
    /// Frames per Welch segment (the last incomplete segment is dropped
    /// unless it is the only one).
    pub segment_frames: usize,
    /// Window (default rect for velocities, hann for positions).
    pub window: Window,
    /// Route.
    pub route: Route,
    /// Normalisation temperature T_norm, K (thermostat target).
    pub temperature_k: f64,
}

impl Route {
    /// The window of the route when none is asked for: rect for velocities
    /// (keeps Σ P_k = σ²), Hann for positions (see the module docs).
    #[must_use]
    pub fn default_window(self) -> Window {
        match self {
            Route::Velocities => Window::Rect,
            Route::Positions => Window::Hann,
        }
    }
}

impl Default for DosParams {
    /// The defaults of `qdscope phonon dos`: 2048 frames per segment,
    /// velocities with the rect window; T_norm = 300 K (the command line has
    /// no default: it asks for the run's thermostat temperature, and so
    /// should a caller).
    fn default() -> Self {
        DosParams {
            segment_frames: 2048,
            window: Route::Velocities.default_window(),
            route: Route::Velocities,
            temperature_k: 300.0,
        }
    }
}

/// The VDOS.
#[derive(Debug, Clone, Serialize)]
pub struct Dos {
    /// ħω_k, meV.
    pub energy_mev: Vec<f64>,
    /// Bin width, meV.
    pub bin_mev: f64,
    /// Total, modes per bin.
    pub total: Vec<f64>,
    /// Per element, modes per bin.
    pub by_element: BTreeMap<String, Vec<f64>>,
    /// Not mass-weighted: Σ_i Σ_α P_k{v_iα} per bin, (Å/fs)² (velocities)
    /// or Σ ω_k² P_k{r_iα}, (rad/fs)²·Å² (positions).
    pub unweighted: Vec<f64>,
    /// Q(x_k) at the normalisation temperature.
    pub q: Vec<f64>,
    /// Segments averaged.
    pub n_segments: usize,
    /// Frames per segment used.
    pub segment_frames: usize,
    /// Σ_k g_k (expected 3N − 6 after projection, 3N_free for frozen runs).
    pub sum_modes: f64,
    /// Degrees of freedom expected from the rigid mode.
    pub expected_modes: f64,
}

/// Q(x) = x/(1 − e^{−x}), Q(0) = 1.
#[must_use]
pub fn quantum_factor(e_mev: f64, temperature_k: f64) -> f64 {
    let x = e_mev / kt_mev(temperature_k);
    if x.abs() < 1e-12 {
        1.0
    } else {
        x / (1.0 - (-x).exp())
    }
}

struct Acc {
    species: Vec<String>,
    masses: Vec<f64>,
    buf: Vec<Vec<f64>>,   // atom*3 + α
    sums: Vec<Vec<f64>>,  // per atom
    unweighted: Vec<f64>, // Σ_i Σ_α P_k (Å²/fs² or Å² per bin)
    len: usize,
    segs: usize,
    seg_len: usize,
}

fn flush(acc: &mut Acc, p: &DosParams, dt: f64) -> Result<()> {
    let l = acc.len;
    let kt_ev = KB_EV_PER_K * p.temperature_k;
    let n_atoms = acc.masses.len();
    let omega: Vec<f64> = (0..=l / 2)
        .map(|k| std::f64::consts::TAU * k as f64 / (l as f64 * dt))
        .collect();
    let per_atom: Vec<Result<(Vec<f64>, Vec<f64>)>> = (0..n_atoms)
        .into_par_iter()
        .map(|i| {
            let mut g = vec![0.0; l / 2 + 1];
            let mut u = vec![0.0; l / 2 + 1];
            for a in 0..3 {
                let s = &acc.buf[i * 3 + a][..l];
                let pk = power_per_bin(s, p.window, Detrend::None)?;
                for (k, v) in pk.iter().enumerate() {
                    let w = match p.route {
                        Route::Velocities => 1.0,
                        Route::Positions => omega[k] * omega[k],
                    };
                    g[k] += acc.masses[i] * v * w * AMU_A2_PER_FS2_EV / kt_ev;
                    u[k] += v * w;
                }
            }
            Ok((g, u))
        })
        .collect();
    if acc.sums.is_empty() {
        acc.sums = vec![vec![0.0; l / 2 + 1]; n_atoms];
    }
    if acc.unweighted.is_empty() {
        acc.unweighted = vec![0.0; l / 2 + 1];
    }
    for (s, r) in acc.sums.iter_mut().zip(per_atom) {
        let (g, u) = r?;
        for (a, b) in s.iter_mut().zip(g) {
            *a += b;
        }
        for (a, b) in acc.unweighted.iter_mut().zip(u) {
            *a += b;
        }
    }
    acc.segs += 1;
    acc.seg_len = l;
    acc.len = 0;
    Ok(())
}

/// VDOS of a trajectory (streamed; see the module doc).
///
/// # Errors
/// Invalid parameters ([`DosParams::validate`]); no velocities for the
/// velocity route; reader errors; fewer than 4 frames; a segment shorter
/// than 4 frames.
pub fn vdos(src: &Source, rigid: Option<RigidMode>, p: &DosParams) -> Result<(Dos, Info)> {
    p.validate()?;
    if p.route == Route::Velocities && src.velocities.is_none() {
        return Err(no_velocities());
    }
    let mut acc = segment_buffers(src, p.segment_frames)?;
    let (info, dt) = accumulate(src, rigid, p, &mut acc)?;
    Ok((spectrum(&acc, dt, &info, p.temperature_k), info))
}

impl DosParams {
    /// Check the parameters before reading anything (that the velocity
    /// route has a velocity file is checked with the trajectory).
    ///
    /// # Errors
    /// A non-positive temperature, segments shorter than 4 frames.
    pub fn validate(&self) -> Result<()> {
        super::check_temperature(self.temperature_k)?;
        if self.segment_frames < 4 {
            return Err(Error::param("segment_frames", "must be at least 4"));
        }
        Ok(())
    }
}

/// The error of the velocity route without a velocity file.
pub(crate) fn no_velocities() -> Error {
    Error::param(
        "velocities",
        "the velocity route needs a velocity file (or use `route = positions`)",
    )
}

/// Empty accumulators for segments of `l` frames, sized from the first
/// frame (at most 8 GiB of segment buffers).
fn segment_buffers(src: &Source, l: usize) -> Result<Acc> {
    let first = crate::io::xyz::XyzReader::open(&src.positions)?
        .next()
        .ok_or_else(|| Error::Empty {
            what: src.positions.display().to_string(),
            reason: "no frames".into(),
        })??;
    let masses = trajectory::masses(&first.species, &src.positions)?;
    let bytes = first.species.len() as f64 * 3.0 * l as f64 * 8.0;
    if bytes > 8.0 * (1u64 << 30) as f64 {
        return Err(Error::param(
            "segment_frames",
            format!(
                "{l} frames × {} atoms needs {:.1} GiB of segment buffers; use a shorter segment",
                first.species.len(),
                bytes / (1u64 << 30) as f64
            ),
        ));
    }
    Ok(Acc {
        buf: vec![vec![0.0; l]; first.species.len() * 3],
        species: first.species,
        masses,
        sums: Vec::new(),
        unweighted: Vec::new(),
        len: 0,
        segs: 0,
        seg_len: 0,
    })
}

/// Stream the trajectory into `acc`, one spectrum per complete segment; a
/// run shorter than one segment (but ≥ 4 frames) is one shorter segment.
/// Returns the stream's `Info` and its time step.
fn accumulate(
    src: &Source,
    rigid: Option<RigidMode>,
    p: &DosParams,
    acc: &mut Acc,
) -> Result<(Info, f64)> {
    let l = p.segment_frames;
    let mut dt_seen = None::<f64>;
    let mut t_last = None::<f64>;
    let info = trajectory::stream(src, rigid, |s| {
        let series = match p.route {
            Route::Velocities => s
                .vel
                .as_ref()
                .ok_or_else(|| Error::param("velocities", "missing velocities"))?,
            Route::Positions => &s.pos,
        };
        if let Some(t) = t_last {
            dt_seen.get_or_insert(s.t_fs - t);
        }
        t_last = Some(s.t_fs);
        for (i, v) in series.iter().enumerate() {
            for (k, c) in v.iter().enumerate() {
                acc.buf[i * 3 + k][acc.len] = *c;
            }
        }
        acc.len += 1;
        if acc.len == l {
            flush(acc, p, dt_seen.unwrap_or(1.0))?;
        }
        Ok(())
    })?;
    let too_short = |n: usize| Error::Empty {
        what: src.positions.display().to_string(),
        reason: format!("{n} frame(s): too short for a spectrum"),
    };
    if acc.segs == 0 && acc.len < 4 {
        return Err(too_short(acc.len));
    }
    // At least 4 frames: the stream knows the time step.
    let dt = info.dt_fs.ok_or_else(|| too_short(info.n_frames))?;
    if acc.segs == 0 {
        for b in acc.buf.iter_mut() {
            b.truncate(acc.len);
        }
        flush(acc, p, dt)?;
    }
    Ok((info, dt))
}

/// The segment average: total and per-element modes per bin, energies,
/// the quantum factor at `temperature_k` and the expected mode count
/// (frames every `dt` fs).
fn spectrum(acc: &Acc, dt: f64, info: &Info, temperature_k: f64) -> Dos {
    let nk = acc.sums[0].len();
    let seg_len = acc.seg_len;
    let bin = H_EV_FS * 1e3 / (seg_len as f64 * dt);
    let energy: Vec<f64> = (0..nk).map(|k| k as f64 * bin).collect();
    let mut by_element: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut total = vec![0.0; nk];
    for (i, s) in acc.sums.iter().enumerate() {
        let e = by_element
            .entry(acc.species[i].clone())
            .or_insert_with(|| vec![0.0; nk]);
        for k in 0..nk {
            let v = s[k] / acc.segs as f64;
            e[k] += v;
            total[k] += v;
        }
    }
    let free = info.n_atoms - info.frozen.len();
    let expected = match info.rigid {
        RigidMode::Project => 3.0 * info.n_atoms as f64 - 6.0,
        _ => 3.0 * free as f64,
    };
    let q = energy
        .iter()
        .map(|e| quantum_factor(*e, temperature_k))
        .collect();
    Dos {
        sum_modes: total.iter().sum(),
        energy_mev: energy,
        bin_mev: bin,
        total,
        by_element,
        unweighted: acc.unweighted.iter().map(|v| v / acc.segs as f64).collect(),
        q,
        n_segments: acc.segs,
        segment_frames: seg_len,
        expected_modes: expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantum_factor_values() {
        for (e, t, q) in [
            (2.0, 300.0, 1.0392),
            (17.0, 300.0, 1.3646),
            (7.0, 10.0, 8.1256),
            (25.0, 10.0, 29.0113),
        ] {
            assert!((quantum_factor(e, t) - q).abs() < 1e-4, "{e} {t}");
        }
    }
}
