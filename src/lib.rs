//! # qdscope
//!
//! ADF-STEM image analysis, multislice simulation and MD phonon analysis of
//! CsPbBr3 quantum dots, re-doing end to end the analysis of Rainò et al.,
//! "Ultra-narrow room-temperature emission from single CsPbBr3 perovskite
//! quantum dots" (Nat. Commun. 2022). Layers and methods: `docs/methods/README.md`.
//!
//! ## Module map
//! | module | what it is | equations and methods (`docs/methods/`) |
//! |---|---|---|
//! | [`error`] | the one `Error` enum; every variant names its input | — |
//! | [`units`] | CODATA 2018 constants and unit conversions | `conventions.md` |
//! | [`fft`] | the shared FFT layer: plans, 1-D/2-D transforms, convolution, correlation, psf2otf, power per bin | `conventions.md` |
//! | [`image`] | calibrated `Image` / `Stack` | `conventions.md` |
//! | [`stats`] | generic statistics both halves use: mean ± s.d. (n − 1), Welch's t-test with effect sizes, jackknife standard error | `statistics.md` |
//! | [`fit`] | model fitting both halves use: `gaussian` (7-parameter 2-D Gaussian column fits by Levenberg–Marquardt) | `fitting.md` |
//! | [`io`] | readers/writers (TIFF, NPY, MRC, DM3/DM4, Velox/Berkeley EMD (pure-Rust HDF5), TIA SER/EMI, PNG previews; CP2K `.ener`/MOLog/gap series; streaming XYZ/extended XYZ writers and readers), `signal` (multi-signal files, dtypes, unit-normalised axes, acquisition metadata), atomic writes | `structure.md` |
//! | [`multislice`] | simulated images: `potential` (Kirkland f_e, v_z; slice potentials and band-limited transmissions), `propagate` (grid, propagator, probe, annular detector — the architecture's slice/propagate/detector in one engine), `displace` (frozen-phonon displacements, per-cell random streams), `params` (`SimParams`, `Method`: multislice or PRISM), `preset` (`Quality` presets, overrides, `SimParams::default`), `work` (configurations × focal-spread nodes, wedge, shards, `Partial`), `conventional` (engine from the parameters, slices, multislice shards), `series` (the entry point: `validate`, then dispatch on `Method`), `prism` (S-matrix with interpolation f), `merge` (shards summed; source size, blur, energy spread re-evaluated at a merge), `image` (cell images, blur, resampling, column-fit ratios), `jackknife` (s.e. over configurations), `diagnostics` (sampling, warnings) | `multislice.md`, `optics.md` |
//! | [`optics`] | electron optics: λ, σ, χ, probe, radial Airy/Hankel form, deconvolution PSF | `optics.md`, `deconvolution.md` |
//! | [`phonon`] | simulated half: `cp2k_input` (CP2K inputs for the runs), `trajectory` (streamed XYZ, rigid removal), `dos` (eq. 1), `coupling` (eqs. 2–6), `dephasing` (eqs. 7–8), `histogram`, `rmsf` (eq. 9), `synth` (data with known answers), `analysis` (the five `qdscope phonon` analyses as calls: params with `Default` and `validate()`, inputs read and checked, typed results) | `phonon.md`, `structure.md` (CP2K inputs) |
//! | [`stem`] | experimental half: `register`, `background`, `denoise` (Du 2015), `deconvolve` (blind RL), `pipeline` (`prepare`), `analyze` (prepare + columns + summary as one call: `AnalyzeParams` with defaults, checks and value provenance, typed `Analysis`), `reciprocal` (the lattice measured from the image spectrum), `sites` (lattice-guided column sites), `joint` (joint fit of all columns, widths per class, a plateau under the particle, the counting-noise model of the noise check), `detect` (lattice → crystal mask → sites → joint fit → classes and refusals), `peaks` (centre-of-mass peaks), `mask` (intensity particle mask), `gaussian` (re-export of [`fit::gaussian`]), `sublattice` (labels and the assignment record), `ratio` (Cs : Pb/Br ratio statistics with bootstrap; the group statistics re-exported from [`stats`]), `compare` (groups of per-QD ratios read from `summary.json` files, Welch's test for every pair: the library behind `qdscope compare`), `lattice` (peak pairs), `columns` (the column chain behind `qdscope columns`), `synth` (synthetic stacks with ground truth), `testbed` (randomized stacks from wide ranges, independent of `synth`, for the accuracy benchmark) | `registration.md`, `background.md`, `denoise.md`, `deconvolution.md`, `columns.md`, `fitting.md`, `statistics.md` |
//! | [`structure`] | `Atoms`, the one lattice constant and the one cubic CsPbBr3 cell (basis, its \[001\] planes, slab), the QD cut (`qd`: corner-Cs removal, charge balance, core/shell, layers, frozen ranges) | `structure.md` |
//! | [`report`] | CSV/JSON outputs with units in headers; `plot`: PNG plots (plotters, embedded font); `view`: cluster picture | — |
//! //!
//! The `qdscope` binary (`src/main.rs`, with `src/cli/`: one file per
//! subcommand, args → library call → report) is not part of the library;
//! it calls the library as any program would.
//!
//! Units inside the crate: Å, fs, eV (meV where named), rad (mrad where
//! named), amu, K. Identifiers carry their unit (`pixel_size_angstrom`).

pub mod error;
pub mod fft;
pub mod fit;
pub mod image;
pub mod io;
pub mod multislice;
pub mod optics;
pub mod phonon;
pub mod report;
pub mod stats;
pub mod stem;
pub mod structure;
pub mod units;

pub use error::{Error, Result, Warnings};

/// Tell mimalloc (the binary's and the benchmarks' global allocator) to keep
/// freed memory instead of returning it to the OS. The image pipeline
/// allocates and drops many MB-sized planes per iteration (FFT outputs,
/// transposes, median buffers); handing them back and faulting them in again
/// cost more than the filters themselves (Du denoising of 1024²: 71 → 36 ms
/// per iteration). Harmless when mimalloc is linked but not the allocator.
///
/// On Linux it also turns transparent huge pages off for the process
/// (`prctl(PR_SET_THP_DISABLE)`): mimalloc advises huge pages for its
/// arenas, so with the kernel's THP in `madvise` mode every first touch of a
/// 2 MiB region was a huge-page fault, and when other processes had left
/// free memory fragmented the kernel compacted it first — the first
/// `analyze` of a 10-frame 1024² stack in a series took 7.4–8.0 s (3.2–4.0
/// s of system time) instead of about 5 s. mimalloc's own option for this
/// is read before `main` runs, so setting it here has no effect.
pub fn keep_freed_memory() {
    // Option 15 is `mi_option_purge_delay` in both the v2 and v3 headers
    // that libmimalloc-sys bundles; −1 = never purge.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: setting an option is a plain store in mimalloc's option table.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process's memory
    // map, checked by the kernel at later page faults; a failure (an old
    // kernel) leaves THP as it was, which is only slower.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
pub use image::{Calibration, Image, Stack};
