pub mod background;
pub mod denoise;
pub mod pipeline;
pub mod register;
pub mod synth;
