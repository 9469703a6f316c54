pub mod pipeline;
pub mod synth;
