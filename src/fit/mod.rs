//! Model fitting shared by the experimental and the simulated half
//! (docs/methods/fitting.md): the image analysis fits its columns with it,
//! and the multislice series fits the simulated cell images the same way, so
//! that measured and simulated Cs : Pb/Br ratios come from one estimator.
//!
//! | module | what |
//! |---|---|
//! | [`gaussian`] | 7-parameter 2-D Gaussians (B, A, x₀, y₀, σ_x, σ_y, φ; positions and widths in px) by Levenberg–Marquardt with the analytic Jacobian, single or with neighbour sweeps |

pub mod gaussian;
