pub mod background;
pub mod deconvolve;
pub mod denoise;
pub mod pipeline;
pub mod register;
pub mod synth;
