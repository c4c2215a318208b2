//! End-to-end tests: one binary, one module per area.

mod augment;
mod cli;
mod convert;
mod errors;
mod eval;
mod infer;
mod interop;
mod pipeline;
mod reliability;
mod shard;
mod support;
mod synth;
mod train;
