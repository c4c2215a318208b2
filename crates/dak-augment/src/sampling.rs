//! The sampling loop every mode shares: generate 3D clips in chunks, draw a
//! camera per clip, project, measure, write. Randomness is drawn per clip
//! from (seed, stream, clip id), so output does not depend on thread count
//! or chunk size.

use std::ops::Range;
use std::time::Instant;

use dak_core::{Intrinsics, Pose3};
use dak_io::{Reporter, ShardSpec};
use rayon::prelude::*;

use crate::error::Result;
use crate::item_rng;
use crate::output::{SyntheticClip, SyntheticWriter};
use crate::projection::{flatten_clip, project_clip, CameraJitter, CameraPool};
use crate::report::{ClipStatistics, StatisticsAccumulator};
use crate::source::{SourceLibrary, WindowSampler};
use crate::structure::StructureConfig;

/// Random streams, one per use, so adding a use never shifts another's numbers.
pub mod streams {
    pub const REFERENCE: u64 = 1;
    pub const STRUCTURE: u64 = 2;
    pub const CAMERA: u64 = 3;
    pub const NOISE: u64 = 4;
    pub const OFFSET: u64 = 5;
    pub const SOURCE_STATS: u64 = 6;
}

/// A synthetic 3D clip and where it came from.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Index into the library's sequences.
    pub sequence: usize,
    /// Source frame the clip corresponds to (reference start, plus the
    /// offset m for DMA).
    pub start_frame: u32,
    pub poses: Vec<Pose3>,
}

/// Makes the 3D clips of one mode.
pub trait Generator {
    fn mode(&self) -> &'static str;
    /// Clips with ids `ids`, in order.
    fn generate(&mut self, ids: Range<u64>) -> Result<Vec<Generated>>;
}

/// Projects clips to pixels (T × 17 × 2 each).
pub trait Projector {
    fn device(&self) -> String;
    fn project(&mut self, clips: &[(Intrinsics, &[Pose3])]) -> Result<Vec<Vec<f32>>>;
}

/// rayon over clips, the geometry core per joint.
pub struct CpuProjector;

impl Projector for CpuProjector {
    fn device(&self) -> String {
        "cpu".into()
    }

    fn project(&mut self, clips: &[(Intrinsics, &[Pose3])]) -> Result<Vec<Vec<f32>>> {
        Ok(clips.par_iter().map(|(k, c)| project_clip(k, c)).collect())
    }
}

/// Structure augmentation of reference windows (`--mode structure`).
pub struct StructureGenerator<'a> {
    pub windows: WindowSampler<'a>,
    pub config: StructureConfig,
    pub seed: u64,
}

impl Generator for StructureGenerator<'_> {
    fn mode(&self) -> &'static str {
        "structure"
    }

    fn generate(&mut self, ids: Range<u64>) -> Result<Vec<Generated>> {
        Ok(ids
            .into_par_iter()
            .map(|id| {
                let reference = self.windows.sample(&mut item_rng(self.seed, streams::REFERENCE, id));
                let sample = self.config.sample(&mut item_rng(self.seed, streams::STRUCTURE, id));
                let s = self.windows.sequence(&reference);
                Generated {
                    sequence: reference.sequence,
                    start_frame: s.first_frame + reference.start as u32,
                    poses: sample.apply_clip(&reference.poses),
                }
            })
            .collect())
    }
}

/// What a sampling run needs besides its generator.
pub struct SamplingRun<'a> {
    pub library: &'a SourceLibrary,
    pub cameras: &'a CameraPool,
    pub jitter: CameraJitter,
    pub clips: u64,
    pub clip_frames: usize,
    pub seed: u64,
    /// Clips generated and written per step.
    pub chunk: usize,
    /// Clips per output file: the unit shards split the work by.
    pub clips_per_file: u64,
    /// Which files this process writes.
    pub shard: ShardSpec,
}

pub struct SamplingOutcome {
    /// Statistics of the clips this process made.
    pub synthetic: ClipStatistics,
    /// Per written group (file): its statistics, in group order.
    pub groups: Vec<(usize, StatisticsAccumulator)>,
    /// Groups of the whole output.
    pub group_count: usize,
    pub seconds: f64,
}

impl SamplingRun<'_> {
    pub fn run(
        &self,
        generator: &mut dyn Generator,
        projector: &mut dyn Projector,
        writer: &mut SyntheticWriter,
        reporter: &dyn Reporter,
    ) -> Result<SamplingOutcome> {
        let started = Instant::now();
        let per_file = self.clips_per_file.max(1);
        let group_count = self.clips.div_ceil(per_file) as usize;
        let owned = self.shard.owned(group_count);
        if owned.is_empty() {
            tracing::warn!(
                "shard {} of {} has no work: {} clips make {group_count} files of --clips-per-file {per_file}; \
                 fewer clips per file spread them over more shards",
                self.shard.index(),
                self.shard.count(),
                self.clips
            );
        }
        let group_range = |g: usize| g as u64 * per_file..((g as u64 + 1) * per_file).min(self.clips);
        let total: u64 = owned.iter().map(|&g| group_range(g).end - group_range(g).start).sum();
        reporter.start(&format!("{} clips", generator.mode()), total);
        let mut groups = Vec::with_capacity(owned.len());
        for &group in &owned {
            let range = group_range(group);
            let mut stats = StatisticsAccumulator::default();
            writer.start_group(group)?;
            let mut next = range.start;
            // Chunks start at the group's first clip, so every shard layout
            // batches the same clips together.
            while next < range.end {
                let ids = next..(next + self.chunk.max(1) as u64).min(range.end);
                let generated = generator.generate(ids.clone())?;
                debug_assert_eq!(generated.len() as u64, ids.end - ids.start);
                let cameras: Vec<_> = ids
                    .clone()
                    .map(|id| self.cameras.draw(&mut item_rng(self.seed, streams::CAMERA, id), &self.jitter))
                    .collect();
                let views: Vec<(Intrinsics, &[Pose3])> =
                    cameras.iter().zip(&generated).map(|(c, g)| (c.intrinsics, &g.poses[..])).collect();
                let pixels = projector.project(&views)?;
                for (((id, g), camera), px) in ids.clone().zip(&generated).zip(cameras).zip(pixels) {
                    stats.add(&g.poses);
                    let s = &self.library.sequences()[g.sequence];
                    writer.push(&SyntheticClip {
                        clip_id: id,
                        source_dataset: s.dataset.clone(),
                        source_sequence: s.name(),
                        source_start_frame: g.start_frame,
                        camera: camera.id,
                        intrinsics: camera.intrinsics,
                        joints_3d_camera_mm: flatten_clip(&g.poses),
                        joints_2d_px: px,
                    })?;
                }
                reporter.advance(ids.end - ids.start);
                next = ids.end;
            }
            writer.end_group()?;
            groups.push((group, stats));
        }
        reporter.finish();
        let synthetic = merge_in_order(groups.iter().map(|(_, a)| a)).finish();
        Ok(SamplingOutcome { synthetic, groups, group_count, seconds: started.elapsed().as_secs_f64() })
    }

    /// Statistics of up to `count` source windows of the clip length, drawn
    /// with `seed`: the baseline a report compares against, the same for
    /// every mode given the user's seed.
    pub fn source_statistics(&self, count: u64, seed: u64) -> Result<ClipStatistics> {
        let windows = self.library.windows(self.clip_frames)?;
        let per: Vec<StatisticsAccumulator> = (0..count)
            .into_par_iter()
            .map(|i| {
                let mut acc = StatisticsAccumulator::default();
                acc.add(&windows.sample(&mut item_rng(seed, streams::SOURCE_STATS, i)).poses);
                acc
            })
            .collect();
        // Merged in order, so the sums do not depend on the thread count.
        Ok(merge_in_order(&per).finish())
    }
}

/// Accumulators merged in the given order (sums are order-sensitive in floating point).
pub fn merge_in_order<'a>(parts: impl IntoIterator<Item = &'a StatisticsAccumulator>) -> StatisticsAccumulator {
    let mut total = StatisticsAccumulator::default();
    for p in parts {
        total.merge(p);
    }
    total
}
