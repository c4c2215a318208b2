pub mod augment;
pub mod convert;
pub mod eval;
pub mod infer;
pub mod merge;
pub mod stats;
pub mod synth;
pub mod train;
