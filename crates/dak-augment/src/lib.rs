//! CPU augmentation of 3D pose clips (DESIGN.md, "Structure augmentation",
//! "Projection"): limb-scale sampling and structure augmentation, reference
//! clips drawn from source shards, cameras and projection, the statistics a
//! run reports, and writing synthetic shards. Network-based augmentors (SMA,
//! DMA) live in `dak-nn`; everything here builds and tests without libtorch.

pub mod clip;
pub mod error;
pub mod output;
pub mod projection;
pub mod report;
pub mod sampling;
pub mod source;
pub mod structure;
pub mod truncated_normal;

pub use clip::{dma_window, Clip, DmaOffsets};
pub use error::{Error, Result};
pub use output::{SyntheticClip, SyntheticWriter};
pub use projection::{CameraJitter, CameraPool, ViewCamera};
pub use report::{ClipStatistics, Report, StatisticsAccumulator};
pub use sampling::{CpuProjector, Generated, Generator, Projector, SamplingRun, StructureGenerator};
pub use source::{ReferenceClip, SourceLibrary, SourceSequence};
pub use structure::{LimbScale, StructureConfig, StructureSample};
pub use truncated_normal::TruncatedNormal;

/// An independent, reproducible random stream for work item `index` of a run
/// seeded with `seed`: outputs do not depend on how items are spread over threads.
pub fn item_rng(seed: u64, stream: u64, index: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng.set_word_pos(u128::from(index) << 20);
    rng
}
