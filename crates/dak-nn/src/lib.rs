//! Everything of dak-pose that runs on libtorch (tch): clip geometry on
//! tensors (bones, forward kinematics, structure augmentation, projection —
//! the same numbers as the CPU code in `dak-core`/`dak-augment`), and the two
//! network augmentors of the paper, SMA and DMA, with their fitting loops.

pub mod device;
pub mod dma;
pub mod error;
pub mod generators;
pub mod geometry;
pub mod model_dir;
pub mod sma;

pub use device::{parse_device, DeviceChoice};
pub use error::{Error, Result};

#[cfg(test)]
mod tests;
