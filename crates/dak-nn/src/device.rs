//! `--device cpu|cuda[:N]`.

use tch::Device;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceChoice(pub Device);

/// Parse a device name; CUDA is checked to exist so a typo or a machine
/// without a GPU fails before any work, not in the middle of it.
pub fn parse_device(name: &str) -> Result<Device> {
    let device = match name {
        "cpu" => Device::Cpu,
        "cuda" | "gpu" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => Device::Cuda(n),
            None => return Err(Error::Device(format!("unknown device `{name}`; use cpu, cuda or cuda:N"))),
        },
    };
    if let Device::Cuda(n) = device {
        let count = tch::Cuda::device_count();
        if count <= n as i64 {
            return Err(Error::Device(format!(
                "device {name} asked for, but libtorch sees {count} CUDA device(s); use --device cpu"
            )));
        }
    }
    Ok(device)
}

pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}
