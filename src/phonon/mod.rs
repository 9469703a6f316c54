//! Simulated-trajectory half: phonons, electron–phonon coupling and
//! linewidths from MD trajectories and gap series (docs/methods/phonon.md;
//! the study's SI eqs. 1–9).
//!
//! | module | what | equations |
//! |---|---|---|
//! | [`rigid`] | Kabsch superposition, velocity projection, masses | docs/methods/phonon.md |
//! | [`trajectory`] | streamed positions/velocities joined by step, ICP reference, rigid removal | docs/methods/phonon.md |
//! | [`dos`] | VDOS (velocities or positions), per element, Welch segments, Q(x) | eq. 1 |
//! | [`cp2k_input`] | CP2K inputs: GEO_OPT and NVT MD (DFT or GFN1-xTB), frozen layers, per-step MO print | docs/methods/structure.md |
//! | [`coupling`] | Huang–Rhys spectrum, band couplings, Λ, Γ(T) | eqs. 2–6 |
//! | [`dephasing`] | gap ACF, cumulant g(t), D(t), Gaussian-fit and exact linewidths | eqs. 7–8 |
//! | [`histogram`] | gap histograms with moment and fitted FWHM | docs/methods/phonon.md |
//! | [`rmsf`] | RMSF per atom, element and layer | eq. 9 |
//! | [`synth`] | synthetic trajectories and gap series with known answers (demo, tests) | eq. 4 |
//! | [`analysis`] | the analyses of `qdscope phonon` as calls: params with `Default` and `validate()`, inputs read and checked, typed results | eqs. 1–9 |

pub mod analysis;
pub mod coupling;
pub mod cp2k_input;
pub mod dephasing;
pub mod dos;
pub mod histogram;
pub mod rigid;
pub mod rmsf;
pub mod synth;
pub mod trajectory;

use crate::error::{Error, Result};

/// The check of a temperature of the phonon analyses (> 0 K), naming the
/// field `temperature_k`.
pub(crate) fn check_temperature(t: f64) -> Result<()> {
    if t.is_finite() && t > 0.0 {
        Ok(())
    } else {
        Err(Error::param(
            "temperature_k",
            format!("must be > 0 K, got {t}"),
        ))
    }
}
