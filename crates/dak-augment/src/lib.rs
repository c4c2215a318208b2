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
///
/// Each (stream, item) pair gets a ChaCha stream of its own (2^68 words), so
/// no consumer can run into the next item's numbers: an epoch's shuffle of
/// millions of windows draws millions of words. (Items used to share one
/// stream, 2^20 words apart, and consecutive epoch orders overlapped.)
pub fn item_rng(seed: u64, stream: u64, index: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    assert!(stream < 1 << (64 - ITEM_BITS), "random stream id {stream} out of range");
    assert!(index < 1 << ITEM_BITS, "work item {index} out of range (at most 2^{ITEM_BITS})");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream << ITEM_BITS | index);
    rng
}

/// The seed a mode's clips are drawn with: `seed` mixed with the mode's
/// name (FNV-1a). With one `--seed` for every mode, as pipelines have it,
/// SMA and DMA clip i would otherwise share their reference window and
/// camera, and training on both would see each pair twice over.
pub fn mode_seed(seed: u64, mode: &str) -> u64 {
    let name = mode.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    seed ^ name
}

/// Bits of [`item_rng`]'s ChaCha stream number given to the item index; the
/// rest name the purpose (`sampling::streams`).
const ITEM_BITS: u32 = 56;

#[cfg(test)]
mod tests {
    use super::item_rng;
    use rand::RngCore;

    #[test]
    fn item_streams_do_not_run_into_each_other() {
        // Item 0 far past where the old layout put item 1 (2^20 words on).
        let mut first = item_rng(7, 1, 0);
        let long: Vec<u32> = (0..(1 << 20) + 64).map(|_| first.next_u32()).collect();
        let mut second = item_rng(7, 1, 1);
        let head: Vec<u32> = (0..64).map(|_| second.next_u32()).collect();
        assert!(!long.windows(64).any(|w| w == head.as_slice()), "item 1's numbers appear in item 0's");
        // Other purposes and seeds differ; the same triple repeats.
        assert_ne!(item_rng(7, 2, 0).next_u64(), item_rng(7, 1, 0).next_u64());
        assert_ne!(item_rng(8, 1, 0).next_u64(), item_rng(7, 1, 0).next_u64());
        assert_eq!(item_rng(7, 1, 5).next_u64(), item_rng(7, 1, 5).next_u64());
        let modes = ["structure", "sma", "dma"].map(|m| super::mode_seed(7, m));
        assert!(modes[0] != modes[1] && modes[1] != modes[2] && modes[0] != modes[2], "{modes:?}");
        assert_eq!(super::mode_seed(7, "sma"), super::mode_seed(7, "sma"));
    }
}
