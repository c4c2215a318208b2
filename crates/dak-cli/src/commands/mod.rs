pub mod stats;
pub mod synth;
