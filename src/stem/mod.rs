pub mod analyze;
pub mod background;
pub mod columns;
pub mod compare;
pub mod deconvolve;
pub mod denoise;
pub mod detect;
/// The 7-parameter column fits, at home in [`crate::fit`] (the simulation uses
/// them too); kept under `stem` for the callers that know them there.
pub use crate::fit::gaussian;
pub mod joint;
pub mod lattice;
pub mod limits;
pub mod mask;
pub mod peaks;
pub mod pipeline;
pub mod ratio;
pub mod reciprocal;
pub mod register;
pub mod sites;
pub mod sublattice;
pub mod synth;
pub mod testbed;
