//! SMA and DMA as `dak_augment` generators, and projection on a tch device.
//! Noise, limb scales, references and offsets are drawn per clip on the CPU
//! from (seed, stream, clip id), so a clip is the same on any device, chunk
//! size or thread count (up to the device's float arithmetic).

use std::ops::Range;

use dak_augment::sampling::{streams, Generated, Generator, Projector};
use dak_augment::source::{ReferenceClip, WindowSampler};
use dak_augment::{item_rng, DmaOffsets, StructureConfig};
use dak_core::{Intrinsics, Pose3, NUM_JOINTS};
use rand::Rng;
use rand_distr::StandardNormal;
use tch::{Device, Kind, Tensor};

use crate::device::device_name;
use crate::dma::Dma;
use crate::geometry::{clips_to_tensor, intrinsics_row, project, tensor_to_clips, NUM_BONES};
use crate::sma::{first_frame_lengths, Sma};

fn normal_noise(seed: u64, id: u64, n: usize) -> Vec<f32> {
    let mut rng = item_rng(seed, streams::NOISE, id);
    (0..n).map(|_| rng.sample::<f32, _>(StandardNormal)).collect()
}

fn references(windows: &WindowSampler<'_>, seed: u64, ids: Range<u64>) -> Vec<ReferenceClip> {
    ids.map(|id| windows.sample(&mut item_rng(seed, streams::REFERENCE, id))).collect()
}

/// `--mode sma`: the fitted SMA on reference windows of T frames, bone
/// lengths of each clip from the limb-scale distribution.
pub struct SmaGenerator<'a> {
    pub sma: &'a Sma,
    pub windows: WindowSampler<'a>,
    pub structure: StructureConfig,
    pub seed: u64,
}

impl Generator for SmaGenerator<'_> {
    fn mode(&self) -> &'static str {
        "sma"
    }

    fn generate(&mut self, ids: Range<u64>) -> dak_augment::Result<Vec<Generated>> {
        let device = self.sma.device();
        let refs = references(&self.windows, self.seed, ids.clone());
        let clips: Vec<&[Pose3]> = refs.iter().map(|r| &r.poses[..]).collect();
        let n = self.sma.config.noise_len();
        let noise: Vec<f32> = ids.clone().flat_map(|id| normal_noise(self.seed, id, n)).collect();
        let factors: Vec<f64> = ids
            .clone()
            .flat_map(|id| {
                let f =
                    self.structure.sample(&mut item_rng(self.seed, streams::STRUCTURE, id)).limb_scale.bone_factors();
                f[1..].to_vec()
            })
            .collect();
        let b = refs.len() as i64;
        let out = tch::no_grad(|| {
            let reference = clips_to_tensor(&clips, device);
            let lengths =
                first_frame_lengths(&reference) * Tensor::from_slice(&factors).view([b, NUM_BONES as i64]).to(device);
            let noise = Tensor::from_slice(&noise).view([b, n as i64]).to(device);
            let motion = self.sma.motion(&reference.to_kind(Kind::Float), &noise);
            self.sma.assemble(&motion, &lengths)
        });
        Ok(tensor_to_clips(&out)
            .into_iter()
            .zip(&refs)
            .map(|(poses, r)| Generated {
                sequence: r.sequence,
                start_frame: self.windows.sequence(r).first_frame + r.start as u32,
                poses,
            })
            .collect())
    }
}

/// `--mode dma`: predict P frames after each R-frame reference, then take
/// `X_com[m : m+T]` with m uniform in the clipped offset range.
pub struct DmaGenerator<'a> {
    pub dma: &'a Dma,
    /// Windows of the model's R reference frames.
    pub windows: WindowSampler<'a>,
    pub offsets: DmaOffsets,
    pub clip_frames: usize,
    pub seed: u64,
}

impl DmaGenerator<'_> {
    pub fn offset_range(&self) -> dak_augment::Result<std::ops::RangeInclusive<usize>> {
        self.offsets.range(self.dma.config.reference_frames, self.dma.config.predicted_frames, self.clip_frames)
    }
}

impl Generator for DmaGenerator<'_> {
    fn mode(&self) -> &'static str {
        "dma"
    }

    fn generate(&mut self, ids: Range<u64>) -> dak_augment::Result<Vec<Generated>> {
        let range = self.offset_range()?;
        let device = self.dma.device();
        let refs = references(&self.windows, self.seed, ids.clone());
        let clips: Vec<&[Pose3]> = refs.iter().map(|r| &r.poses[..]).collect();
        let n = self.dma.config.latent_dim;
        let latent: Vec<f32> = ids.clone().flat_map(|id| normal_noise(self.seed, id, n)).collect();
        let b = refs.len() as i64;
        let predicted = tch::no_grad(|| {
            let reference = clips_to_tensor(&clips, device);
            self.dma.predict(&reference, &Tensor::from_slice(&latent).view([b, n as i64]).to(device))
        });
        let predicted = tensor_to_clips(&predicted);
        let mut out = Vec::with_capacity(refs.len());
        for ((id, r), future) in ids.zip(&refs).zip(predicted) {
            let m = item_rng(self.seed, streams::OFFSET, id).random_range(range.clone());
            let combined: Vec<Pose3> = r.poses.iter().copied().chain(future).collect();
            let window = dak_augment::dma_window(&combined, m, self.clip_frames)?;
            out.push(Generated {
                sequence: r.sequence,
                start_frame: self.windows.sequence(r).first_frame + (r.start + m) as u32,
                poses: window.to_vec(),
            });
        }
        Ok(out)
    }
}

/// Projection with the tensor twin of the geometry core, in f64 on `device`.
pub struct TchProjector {
    pub device: Device,
}

impl Projector for TchProjector {
    fn device(&self) -> String {
        device_name(self.device)
    }

    fn project(&mut self, clips: &[(Intrinsics, &[Pose3])]) -> dak_augment::Result<Vec<Vec<f32>>> {
        if clips.is_empty() {
            return Ok(Vec::new());
        }
        let t = clips[0].1.len();
        let poses: Vec<&[Pose3]> = clips.iter().map(|(_, c)| *c).collect();
        let rows: Vec<f64> = clips.iter().flat_map(|(k, _)| intrinsics_row(k)).collect();
        let px = tch::no_grad(|| {
            let x = clips_to_tensor(&poses, self.device);
            let k = Tensor::from_slice(&rows).view([clips.len() as i64, 9]).to(self.device);
            project(&x, &k).to_kind(Kind::Float).to(Device::Cpu).contiguous()
        });
        let flat: Vec<f32> = Vec::try_from(px.view(-1)).map_err(crate::Error::from)?;
        Ok(flat.chunks_exact(t * NUM_JOINTS * 2).map(<[f32]>::to_vec).collect())
    }
}
