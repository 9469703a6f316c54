pub mod background;
pub mod pipeline;
pub mod register;
pub mod synth;
